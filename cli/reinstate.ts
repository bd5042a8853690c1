/**
 * `npm run reinstate -- <userId>`: reinstates a suspended user to the status they had, as the operator: the way back
 * when no administrator is left to do it (README, Security). Written through the users' decider and the event store
 * like an admin's reinstatement, its actor `system:operator` in the event and the audit trail; the running service
 * learns it from the feed. Exits 0 when reinstated or not suspended, 1 when there is no such user, 2 when it could
 * not run (usage, configuration, database, migrations pending): then nothing was written.
 */
import { v4 as uuid } from 'uuid';
import { openOperations } from '../main.ts';
import { NotFound } from '../domain/shared/errors.ts';
import { OPERATOR_ACTOR, reinstateUser } from '../domain/users/service.ts';
import { commandArguments, exitWith } from './arguments.ts';

const USAGE = 'Usage: npm run reinstate -- <user id> (reinstates a suspended user, an administrator say, to the status they had; exit 1: no such user; 2: it could not run)';

async function main(): Promise<number> {
  const { positionals } = commandArguments(USAGE, {}, true);
  if (positionals.length !== 1 || !positionals[0]) {
    process.stderr.write(`${positionals.length ? `Expected one user id, got ${positionals.length}\n` : ''}${USAGE}\n`);
    return 2;
  }
  const userId = positionals[0];
  const ops = await openOperations();
  try {
    const metadata = { correlationId: `reinstate:${uuid()}`, actor: OPERATOR_ACTOR };
    const result = await reinstateUser(ops, userId, OPERATOR_ACTOR, metadata).catch((error: unknown) => {
      if (error instanceof NotFound) return undefined;
      throw error;
    });
    if (!result || result.state.status === 'unregistered') {
      process.stderr.write(`No user ${userId}: nothing reinstated (the id is the token's subject, as GET /api/v1/admin/users lists it).\n`);
      return 1;
    }
    const { role, status } = result.state;
    process.stdout.write(
      result.events.length
        ? `Reinstated user ${userId} (${role}): ${status} again.\n`
        : `User ${userId} (${role}) is not suspended (${status}): nothing to do.\n`,
    );
    return 0;
  } finally {
    await ops.close();
  }
}

exitWith(main, 'Reinstating failed');
