import { z } from 'zod';

/**
 * A whole number from `min` to `max`, for a field of a request: each message names the field (`what`) and says
 * what to send. `required` replaces the message for a missing value or one that is not a number; `unit` is named in
 * the one for a fraction (`a whole number of points`); `belowMin` replaces the one for a value under `min`.
 */
export function wholeNumber(what: string, min: number, max: number, say: { required?: string; unit?: string; belowMin?: string } = {}) {
  return z
    .number({ error: say.required ?? `${what} must be a number` })
    .int(`${what} must be a whole number${say.unit ? ` of ${say.unit}` : ''}`)
    .min(min, say.belowMin ?? `${what} must be at least ${min}`)
    .max(max, `${what} must be at most ${max}`);
}
