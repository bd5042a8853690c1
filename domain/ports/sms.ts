/** Sends a text message to a phone (E.164). Adapters: adapters/sms/console.ts (development), adapters/sms/twilio.ts. */
export interface SmsSender {
  /** Throws `SmsNotSent` when the provider answered that it will not send it; anything else is unexpected. */
  send(to: string, text: string): Promise<void>;
}

/**
 * The message was not sent. `rejected`: the provider refused this number (not a valid or reachable mobile number):
 * the person should check it. `unavailable`: the provider could not be reached, timed out, throttled us, failed, or
 * refused our credentials: retrying later may work; the operator sees `detail` in the log.
 */
export class SmsNotSent extends Error {
  constructor(
    readonly kind: 'rejected' | 'unavailable',
    readonly detail: string,
  ) {
    super(`SMS not sent (${kind}): ${detail}`);
    this.name = 'SmsNotSent';
  }
}
