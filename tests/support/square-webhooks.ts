/** Signs and sends Square webhooks the way Square does, from its own example payloads. */
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export function squarePayload(name: string): any {
  return JSON.parse(readFileSync(fileURLToPath(new URL(`../fixtures/square/${name}`, import.meta.url)), 'utf8'));
}

export function squareSignature(key: string, notificationUrl: string, body: string): string {
  return createHmac('sha256', key).update(notificationUrl + body).digest('base64');
}

export function webhookSender(baseUrl: string, key: string, notificationUrl: string) {
  return async (payload: unknown, options: { signature?: string | null; raw?: string } = {}) => {
    const body = options.raw ?? JSON.stringify(payload);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    const signature = options.signature === undefined ? squareSignature(key, notificationUrl, body) : options.signature;
    if (signature !== null) headers['x-square-hmacsha256-signature'] = signature;
    const response = await fetch(`${baseUrl}/api/v1/webhooks/square`, { method: 'POST', headers, body });
    const text = await response.text();
    let json: any = text;
    try {
      json = JSON.parse(text);
    } catch {
      // keep text
    }
    return { status: response.status, body: json };
  };
}

/** A Square `payment.updated` for our merchant, built on Square's example (synthetic variant with a customer). */
export function paymentWebhook(options: {
  eventId: string;
  merchantId: string;
  paymentId: string;
  amount: number;
  tip?: number;
  status?: string;
  customerId?: string | null;
  updatedAt?: string;
  /** When the customer paid; defaults to `updatedAt`. */
  createdAt?: string;
  locationId?: string;
  currency?: string;
  orderId?: string;
  /** `buyer_email_address` (a Square Online checkout). */
  buyerEmail?: string;
}): any {
  const payload = squarePayload('synthetic/payment.updated.completed-with-customer_id.json');
  const payment = payload.data.object.payment;
  payload.event_id = options.eventId;
  payload.merchant_id = options.merchantId;
  payload.data.id = options.paymentId;
  payment.id = options.paymentId;
  payment.status = options.status ?? 'COMPLETED';
  const currency = options.currency ?? 'USD';
  payment.amount_money = { amount: options.amount, currency };
  payment.tip_money = options.tip ? { amount: options.tip, currency } : undefined;
  payment.total_money = { amount: options.amount + (options.tip ?? 0), currency };
  // Square's example names one order for every payment: each payment is its own order unless told otherwise.
  payment.order_id = options.orderId ?? `order-${options.paymentId}`;
  if (options.buyerEmail) payment.buyer_email_address = options.buyerEmail;
  if (options.customerId === null) delete payment.customer_id;
  else if (options.customerId) payment.customer_id = options.customerId;
  // Square's example is from 2020; a payment today is what a merchant's webhook carries (claims look back 90 days).
  payment.updated_at = options.updatedAt ?? new Date().toISOString();
  payment.created_at = options.createdAt ?? payment.updated_at;
  if (options.locationId) payment.location_id = options.locationId;
  return payload;
}

export function refundWebhook(options: { eventId: string; merchantId: string; refundId: string; paymentId: string; amount: number; status?: string; currency?: string }): any {
  const payload = squarePayload('refund.updated.json');
  const refund = payload.data.object.refund;
  payload.event_id = options.eventId;
  payload.merchant_id = options.merchantId;
  payload.data.id = options.refundId;
  refund.id = options.refundId;
  refund.payment_id = options.paymentId;
  refund.amount_money = { amount: options.amount, currency: options.currency ?? 'USD' };
  refund.status = options.status ?? 'COMPLETED';
  return payload;
}
