import type { Projection } from './projection.ts';

/** Every read model the service maintains. */
export function allProjections(): Projection[] {
  return [];
}
