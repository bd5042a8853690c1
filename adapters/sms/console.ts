import type { Logger } from 'pino';
import type { SmsSender } from '../../domain/ports/sms.ts';

/** Development only: the message goes to the log instead of a phone (refused in production by the config). */
export function consoleSms(log: Logger): SmsSender {
  return {
    async send(to, text) {
      log.info({ to, text }, 'sms (console adapter)');
    },
  };
}
