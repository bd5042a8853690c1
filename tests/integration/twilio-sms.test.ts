/** The Twilio SMS adapter against a local server speaking Twilio's Messages API (no request leaves the machine). */
import test from 'ava';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { twilioSms } from '../../adapters/sms/twilio.ts';

const SID = `AC${'0123456789abcdef'.repeat(2)}`;

async function twilioStandIn(answer: { status: number; body: string }) {
  const requests: { path: string; authorization: string; form: URLSearchParams }[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      requests.push({ path: req.url ?? '', authorization: req.headers.authorization ?? '', form: new URLSearchParams(body) });
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(answer.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

test('a message is POSTed as a form to the account’s Messages resource, with basic auth', async (t) => {
  const stand = await twilioStandIn({ status: 201, body: '{"sid":"SM1","status":"queued"}' });
  t.teardown(stand.close);
  await twilioSms({ accountSid: SID, authToken: 'token-1', from: '+15005550006', baseUrl: stand.url }).send('+12125550100', 'Your code is 123456');
  const [request] = stand.requests;
  t.is(request?.path, `/2010-04-01/Accounts/${SID}/Messages.json`);
  t.is(request?.authorization, `Basic ${Buffer.from(`${SID}:token-1`).toString('base64')}`);
  t.deepEqual(Object.fromEntries(request!.form), { To: '+12125550100', Body: 'Your code is 123456', From: '+15005550006' });
  await twilioSms({ accountSid: SID, authToken: 'token-1', from: `MG${'a'.repeat(32)}`, baseUrl: stand.url }).send('+12125550100', 'x');
  t.is(stand.requests[1]?.form.get('MessagingServiceSid'), `MG${'a'.repeat(32)}`);
});

test('a refusal is an error naming Twilio’s status and error code, never the auth token nor the number Twilio quotes', async (t) => {
  const stand = await twilioStandIn({ status: 400, body: '{"code":21211,"message":"The \'To\' number +14155550123 is not a valid phone number."}' });
  t.teardown(stand.close);
  const error = await t.throwsAsync(twilioSms({ accountSid: SID, authToken: 'secret-token', from: '+15005550006', baseUrl: stand.url }).send('+14155550123', 'x'));
  t.regex(error!.message, /400 \(Twilio error 21211\)/);
  t.false(error!.message.includes('secret-token'));
  t.false(`${error!.message} ${error!.stack}`.includes('4155550123'), 'the phone number is personal data: not in the error, so not in the log');
  t.like(error, { name: 'SmsNotSent', kind: 'rejected' }, 'a 400 is about the number');
});

test('Twilio failing, throttling, refusing our credentials or not listening: the message is not sent, and it is no fault of the number', async (t) => {
  for (const status of [401, 429, 500, 503]) {
    const stand = await twilioStandIn({ status, body: '{"message":"no"}' });
    const error = await t.throwsAsync(twilioSms({ accountSid: SID, authToken: 'secret-token', from: '+15005550006', baseUrl: stand.url }).send('+12125550100', 'x'));
    t.like(error, { name: 'SmsNotSent', kind: 'unavailable' }, String(status));
    await stand.close();
  }
  const gone = await twilioStandIn({ status: 201, body: '{}' });
  await gone.close();
  const error = await t.throwsAsync(twilioSms({ accountSid: SID, authToken: 'secret-token', from: '+15005550006', baseUrl: gone.url }).send('+12125550100', 'x'));
  t.like(error, { name: 'SmsNotSent', kind: 'unavailable' }, 'nothing listening');
});
