/**
 * One rule for text entering the service, wherever it comes from (JSON bodies, query strings, path
 * parameters, signed webhooks, token subjects): no NUL character and no unpaired UTF-16 surrogate. PostgreSQL
 * refuses both in text and jsonb, so without this rule they would surface as 500s deep inside a write.
 */
const FORBIDDEN = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function isStorableText(text: string): boolean {
  return !FORBIDDEN.test(text);
}

interface Step {
  parent: Step | undefined;
  key: string;
}

const pathOf = (step: Step | undefined): string => {
  const keys: string[] = [];
  for (let s = step; s; s = s.parent) keys.push(s.key);
  return keys.reverse().join('').replace(/^\./, '') || '(value)';
};

const holdsText = (value: unknown) => typeof value === 'string' || (typeof value === 'object' && value !== null);

/**
 * The path (`body.a.b[2]`) of the first string or key in `value` that breaks the rule, or undefined.
 * Iterative, and the path is built only when something is found: a signed webhook may nest thousands deep.
 */
export function unstorableTextAt(value: unknown, root = ''): string | undefined {
  const pending: [unknown, Step | undefined][] = [[value, root ? { parent: undefined, key: root } : undefined]];
  while (pending.length) {
    const [current, step] = pending.pop()!;
    if (typeof current === 'string') {
      if (!isStorableText(current)) return pathOf(step);
    } else if (Array.isArray(current)) {
      // Numbers, booleans and nulls hold no text: they are not visited.
      for (let i = current.length - 1; i >= 0; i--) if (holdsText(current[i])) pending.push([current[i], { parent: step, key: `[${i}]` }]);
    } else if (current && typeof current === 'object') {
      for (const [key, child] of Object.entries(current).reverse()) {
        const next = { parent: step, key: `.${key}` };
        if (!isStorableText(key)) return pathOf(next);
        if (holdsText(child)) pending.push([child, next]);
      }
    }
  }
  return undefined;
}

export const UNSTORABLE_TEXT_MESSAGE = 'must not contain NUL characters or unpaired UTF-16 surrogates';

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The text of UTF-8 bytes (a leading byte-order mark dropped), or undefined when they are not UTF-8. Never decoded
 * leniently: bytes that are not UTF-8 would become U+FFFD, and two different keys (idempotency keys, references) read
 * as the same one.
 */
export function utf8Text(bytes: Uint8Array): string | undefined {
  try {
    return UTF8.decode(bytes);
  } catch {
    return undefined;
  }
}
