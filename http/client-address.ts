/**
 * The client's address, for per-address limits and logs. Behind reverse proxies it is the rightmost address in
 * `X-Forwarded-For` that no trusted proxy accounts for: entries to its left were written by the client and
 * prove nothing. `TRUST_PROXY` says which hops are trusted: a number of proxies in front of the service, or
 * the CIDRs (or addresses) of the proxies.
 */
import { BlockList, isIP } from 'node:net';
import type { TrustProxy } from '../adapters/trust-proxy.ts';

export type { TrustProxy };

/** The address without an IPv4-mapped IPv6 prefix (`::ffff:10.0.0.1` is `10.0.0.1`). */
const plain = (address: string) => (address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address);

export function clientAddressResolver(trust: TrustProxy): (socketAddress: string, forwardedFor: string) => string {
  if (trust.kind === 'none') return (socketAddress) => plain(socketAddress);
  const trusted = new BlockList();
  if (trust.kind === 'cidrs') {
    for (const range of trust.ranges) {
      const [address, prefix] = range.split('/');
      const family = isIP(address ?? '') === 6 ? 'ipv6' : 'ipv4';
      if (prefix === undefined) trusted.addAddress(address!, family);
      else trusted.addSubnet(address!, Number(prefix), family);
    }
  }
  const isTrusted = (address: string) => {
    const family = isIP(address);
    return family !== 0 && trusted.check(address, family === 6 ? 'ipv6' : 'ipv4');
  };
  return (socketAddress, forwardedFor) => {
    // Nearest hop last: what each proxy appended, then the peer we see.
    const chain = [
      ...forwardedFor
        .split(',')
        .map((entry) => plain(entry.trim()))
        .filter(Boolean),
      plain(socketAddress),
    ];
    if (trust.kind === 'hops') return chain[Math.max(0, chain.length - 1 - trust.hops)]!;
    for (let i = chain.length - 1; i >= 0; i--) if (!isTrusted(chain[i]!)) return chain[i]!;
    return chain[0]!;
  };
}
