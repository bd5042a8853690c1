import type { Projection } from './projection.ts';
import { rewardRulesProjection, usersProjection, workspacesProjection } from './accounts.ts';

/** Every read model the service maintains. */
export function allProjections(): Projection[] {
  return [usersProjection, workspacesProjection, rewardRulesProjection];
}
