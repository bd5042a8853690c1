/**
 * Twilio's Messages API over fetch (no SDK): POST /2010-04-01/Accounts/<sid>/Messages.json with basic auth.
 * `From` is a number or, starting with MG, a Messaging Service SID.
 */
import { SmsNotSent, type SmsSender } from '../../domain/ports/sms.ts';

export interface TwilioOptions {
  accountSid: string;
  authToken: string;
  from: string;
  /** Overrides https://api.twilio.com (a mirror or a test server). */
  baseUrl?: string | undefined;
  timeoutMs?: number;
}

export function twilioSms(options: TwilioOptions): SmsSender {
  const base = (options.baseUrl ?? 'https://api.twilio.com').replace(/\/+$/, '');
  const url = `${base}/2010-04-01/Accounts/${encodeURIComponent(options.accountSid)}/Messages.json`;
  const authorization = `Basic ${Buffer.from(`${options.accountSid}:${options.authToken}`).toString('base64')}`;
  return {
    async send(to, text) {
      const form = new URLSearchParams({ To: to, Body: text, ...(options.from.startsWith('MG') ? { MessagingServiceSid: options.from } : { From: options.from }) });
      let response: Response;
      try {
        response = await fetch(url, {
          method: 'POST',
          headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
          body: form,
          signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
        });
      } catch (error) {
        throw new SmsNotSent('unavailable', `Twilio could not be reached: ${error instanceof Error ? error.message : String(error)}`);
      }
      if (!response.ok) {
        // A 400 is about the message (for a one-time code: the number, e.g. 21211 invalid, 21614 not a mobile); 401
        // and 403 are our credentials, 429 and 5xx Twilio's state: the person can do nothing about those but retry
        // later. Only Twilio's error code goes to the log: its message quotes the phone number.
        const detail = `Twilio answered ${response.status}${await twilioCode(response)}`;
        throw new SmsNotSent(response.status === 400 || response.status === 404 ? 'rejected' : 'unavailable', detail);
      }
    },
  };
}

/** ` (Twilio error 21211)`, from an error answer's body, or nothing: never the body's text, which names the number. */
async function twilioCode(response: Response): Promise<string> {
  try {
    const code = ((await response.json()) as { code?: unknown }).code;
    return typeof code === 'number' && Number.isInteger(code) ? ` (Twilio error ${code})` : '';
  } catch {
    return '';
  }
}
