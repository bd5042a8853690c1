/**
 * Twilio's Messages API over fetch (no SDK): POST /2010-04-01/Accounts/<sid>/Messages.json with basic auth.
 * `From` is a number or, starting with MG, a Messaging Service SID.
 */
import type { SmsSender } from '../../domain/ports/sms.ts';

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
      const response = await fetch(url, {
        method: 'POST',
        headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
        body: form,
        signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
      });
      if (!response.ok) {
        // Twilio's error body names the problem (code, message); it holds no secret.
        const detail = await response.text().catch(() => '');
        throw new Error(`Twilio refused the message: ${response.status} ${detail.slice(0, 300)}`);
      }
    },
  };
}
