/** The code the development SMS adapter (adapters/sms/console.ts) last logged for a phone, read from the service's log lines. */
export function codeSentTo(logs: readonly string[], phone: string): string {
  const line = logs
    .map((l) => JSON.parse(l) as { msg?: string; to?: string; text?: string })
    .filter((l) => l.msg === 'sms (console adapter)' && l.to === phone)
    .at(-1);
  const code = /\b(\d{6})\b/.exec(String(line?.text ?? ''))?.[1];
  if (!code) throw new Error(`no code was logged for ${phone}`);
  return code;
}
