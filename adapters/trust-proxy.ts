/** The `TRUST_PROXY` setting: which proxies in front of the service report the client address (http/client-address.ts applies it). */
import { isIP } from 'node:net';

export type TrustProxy = { kind: 'none' } | { kind: 'hops'; hops: number } | { kind: 'cidrs'; ranges: readonly string[] };

/** Parses TRUST_PROXY: `false`/`0`, `true` (one proxy), a number of proxies, or comma-separated CIDRs/addresses. */
export function parseTrustProxy(value: string): TrustProxy | string {
  const v = value.trim();
  if (v === '' || v === 'false' || v === '0') return { kind: 'none' };
  if (v === 'true') return { kind: 'hops', hops: 1 };
  if (/^\d+$/.test(v)) {
    const hops = Number(v);
    return hops <= 20 ? { kind: 'hops', hops } : 'a number of trusted proxies must be 0–20';
  }
  const ranges = v.split(',').map((r) => r.trim()).filter(Boolean);
  for (const range of ranges) {
    const [address, prefix, extra] = range.split('/');
    const family = isIP(address ?? '');
    const max = family === 6 ? 128 : 32;
    if (!family || extra !== undefined || (prefix !== undefined && !(/^\d+$/.test(prefix) && Number(prefix) <= max))) {
      return `"${range}" is not an address or CIDR (e.g. 10.0.0.0/8)`;
    }
  }
  return { kind: 'cidrs', ranges };
}
