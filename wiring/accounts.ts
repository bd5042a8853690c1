/** Users and accounts: registration, approval, phone verification, and who is calling. */
import { randomInt } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../adapters/config.ts';
import { createIdentityHasher } from '../adapters/identity/hasher.ts';
import { adminSuspensionLock } from '../adapters/postgres/admin-suspension-lock.ts';
import { postgresPersonalData } from '../adapters/postgres/personal-data.ts';
import { postgresPhoneVerifications } from '../adapters/postgres/phone-verifications.ts';
import type { WebhookInbox } from '../adapters/postgres/webhook-inbox.ts';
import { consoleSms } from '../adapters/sms/console.ts';
import { twilioSms } from '../adapters/sms/twilio.ts';
import type { SmsSender } from '../domain/ports/sms.ts';
import { accountsService } from '../domain/users/service.ts';
import { phoneSearchDigits } from '../domain/identity/normalise.ts';
import { phoneVerificationService } from '../domain/users/phone-verification.ts';
import { callerView, learnOnAppend } from '../projections/caller-view.ts';
import { adminWithEmail, identityOwner, suspendedUserWithEmail } from '../projections/read/accounts.ts';
import { accountRoutes } from '../http/routes/accounts.ts';
import type { Infrastructure } from './infrastructure.ts';
import type { Cleanups } from './lifecycle.ts';
import { tenantIdFor } from './ids.ts';

/** The SMS port for one-time phone codes: Twilio when configured, the log in development, none otherwise. */
function provideSms(config: Config, log: Logger): SmsSender | undefined {
  const provider = config.SMS_PROVIDER ?? (config.NODE_ENV === 'production' ? 'none' : 'console');
  if (provider === 'console') return consoleSms(log.child({ component: 'sms' }));
  if (provider === 'twilio' && config.TWILIO_ACCOUNT_SID && config.TWILIO_AUTH_TOKEN && config.TWILIO_FROM) {
    return twilioSms({ accountSid: config.TWILIO_ACCOUNT_SID, authToken: config.TWILIO_AUTH_TOKEN, from: config.TWILIO_FROM, baseUrl: config.TWILIO_BASE_URL });
  }
  return undefined;
}

export function provideAccounts({ config, log, pool, databaseUrl, store, runtime, commands }: Infrastructure, inbox: WebhookInbox, cleanups: Cleanups) {
  const hasher = createIdentityHasher(config.IDENTITY_HASH_KEY);
  // Callers' role, status and tenant in memory, current from the feed (projections/caller-view.ts).
  const callers = callerView(store, { onError: (error, consequence) => log.warn({ err: error }, `caller view: ${consequence}`) });
  callers.start();
  cleanups.add(() => callers.stop());
  // Every writer of user streams in this process brings the caller it changed up to date (or drops it) before it answers.
  const userStore = learnOnAppend(store, callers);
  const personalData = postgresPersonalData(pool);
  const accounts = accountsService({
    store: userStore,
    personalData,
    hasher,
    runtime,
    commands,
    adminEmails: config.ADMIN_EMAILS,
    storedMessages: {
      eraseMentions: async ({ emails, phones }) => {
        // A phone as merchants type it: with or without its country code or trunk prefix, any punctuation.
        const digits = [...new Set(phones.flatMap((phone) => phoneSearchDigits(phone)))];
        const { emptied, pending } = await inbox.redactMentioning({ emails, phoneDigits: digits });
        log.info({ redacted: emptied, pending }, 'erasure: raw webhook bodies naming the person emptied (pending: emptied once processed)');
      },
    },
    suspendedUserWithEmail: (emailHash) => suspendedUserWithEmail(pool, emailHash),
    adminWithEmail: (emailHash) => adminWithEmail(pool, emailHash),
    tenantIdFor,
    identityOwner: (hash) => identityOwner(pool, hash),
    oneAdminSuspensionAtATime: adminSuspensionLock(databaseUrl),
  });
  const phoneVerification = phoneVerificationService({
    store: userStore,
    commands,
    personalData,
    codes: postgresPhoneVerifications(pool),
    hasher,
    runtime,
    sms: provideSms(config, log),
    newCode: () => String(randomInt(0, 1_000_000)).padStart(6, '0'),
    loadUser: (userId) => accounts.load(userId),
    identityOwner: (hash) => identityOwner(pool, hash),
  });
  return { hasher, callers, accounts, routes: accountRoutes({ accounts, phoneVerification, store, pool }) };
}
