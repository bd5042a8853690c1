/** given(events).when(command).then(events | error): decider tests that read as specifications. */
import type { ExecutionContext } from 'ava';
import type { Decider, DomainEvent } from '../../domain/shared/decider.ts';

export function deciderSpec<Command, Event extends DomainEvent, State>(decider: Decider<Command, Event, State>) {
  return (t: ExecutionContext) => ({
    given: (...history: Event[]) => ({
      when: (command: Command) => {
        const run = () => decider.decide(command, history.reduce(decider.evolve, decider.initialState));
        return {
          then: (expected: Event[]) => t.deepEqual(run(), expected),
          thenNothing: () => t.deepEqual(run(), []),
          thenThrows: (code: string, message?: RegExp) => {
            const error = t.throws(run) as { code?: string; message: string } | undefined;
            t.is(error?.code, code);
            if (message) t.regex(error?.message ?? '', message);
          },
        };
      },
    }),
  });
}
