/** Sends a text message to a phone (E.164). Adapters: adapters/sms/console.ts (development), adapters/sms/twilio.ts. */
export interface SmsSender {
  send(to: string, text: string): Promise<void>;
}
