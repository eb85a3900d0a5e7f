/**
 * Address ranges a webhook must not reach, and the small IP arithmetic behind them. Addresses are parsed
 * into a bigint so IPv4 and IPv6 prefixes are matched the same way; IPv6 forms that embed an IPv4 address
 * (mapped, compatible, 6to4, NAT64) are judged by the IPv4 inside them.
 */
import { isIP } from 'node:net';

interface Parsed {
  family: 4 | 6;
  value: bigint;
}

export interface Cidr extends Parsed {
  prefix: number;
}

function parseV4(ip: string): bigint | null {
  const parts = ip.split('.');
  if (parts.length !== 4) return null;
  let v = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return null;
    v = (v << 8n) | BigInt(Number(p));
  }
  return v;
}

function parseV6(input: string): bigint | null {
  let ip = input.replace(/%.*$/, '');
  // A dotted IPv4 tail (`::ffff:1.2.3.4`) becomes two hextets.
  const tail = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(ip);
  if (tail) {
    const v4 = parseV4(tail[2]!);
    if (v4 === null) return null;
    ip = `${tail[1]}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = ip.split('::');
  if (halves.length > 2) return null;
  const head = halves[0] ? halves[0].split(':') : [];
  const rest = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...rest];
  let v = 0n;
  for (const g of groups) {
    if (!/^[0-9a-f]{1,4}$/i.test(g)) return null;
    v = (v << 16n) | BigInt(parseInt(g, 16));
  }
  return v;
}

export function parseIp(ip: string): Parsed | null {
  const host = ip.replace(/^\[(.*)\]$/, '$1');
  const kind = isIP(host);
  if (kind === 4) {
    const v = parseV4(host);
    return v === null ? null : { family: 4, value: v };
  }
  if (kind === 6) {
    const v = parseV6(host);
    return v === null ? null : { family: 6, value: v };
  }
  return null;
}

/** `10.0.0.0/8`, `fc00::/7`; null when not a CIDR block. */
export function parseCidr(text: string): Cidr | null {
  const m = /^(.+)\/(\d{1,3})$/.exec(text);
  if (!m) return null;
  const base = parseIp(m[1]!);
  const prefix = Number(m[2]);
  if (!base || prefix > (base.family === 4 ? 32 : 128)) return null;
  return { ...base, prefix };
}

function matches(a: Parsed, c: Cidr): boolean {
  if (a.family !== c.family) return false;
  const bits = BigInt((c.family === 4 ? 32 : 128) - c.prefix);
  return a.value >> bits === c.value >> bits;
}

export function inCidr(ip: string, block: Cidr): boolean {
  const a = parseIp(ip);
  return a !== null && matches(a, block);
}

const table = (rows: Array<[string, string]>) => rows.map(([cidr, kind]) => ({ block: parseCidr(cidr)!, kind }));

// Order matters: the first match names the class (metadata before link-local).
const V4 = table([
  ['169.254.169.254/32', 'cloud metadata'],
  ['169.254.170.2/32', 'cloud metadata'],
  ['100.100.100.200/32', 'cloud metadata'],
  ['0.0.0.0/8', '"this network" (0.0.0.0/8)'],
  ['10.0.0.0/8', 'private (RFC 1918)'],
  ['100.64.0.0/10', 'carrier-grade NAT (RFC 6598)'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local'],
  ['172.16.0.0/12', 'private (RFC 1918)'],
  ['192.0.0.0/24', 'reserved (IETF protocol assignments)'],
  ['192.0.2.0/24', 'documentation'],
  ['192.88.99.0/24', 'reserved (6to4 relay)'],
  ['192.168.0.0/16', 'private (RFC 1918)'],
  ['198.18.0.0/15', 'reserved (benchmarking)'],
  ['198.51.100.0/24', 'documentation'],
  ['203.0.113.0/24', 'documentation'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved'],
]);

const V6 = table([
  ['fd00:ec2::254/128', 'cloud metadata'],
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['64:ff9b:1::/48', 'reserved (local-use NAT64)'],
  ['100::/64', 'reserved (discard)'],
  ['2001::/32', 'reserved (Teredo)'],
  ['2001:db8::/32', 'documentation'],
  ['fc00::/7', 'unique-local IPv6'],
  ['fe80::/10', 'link-local'],
  ['fec0::/10', 'site-local IPv6'],
  ['ff00::/8', 'multicast'],
]);

const EMBEDDED_V4 = table([
  ['::ffff:0:0/96', 'IPv4-mapped'],
  ['64:ff9b::/96', 'NAT64'],
  ['::/96', 'IPv4-compatible'],
]);
const SIX_TO_FOUR = parseCidr('2002::/16')!;

function classifyV4(value: bigint): string | null {
  const a: Parsed = { family: 4, value };
  return V4.find((r) => matches(a, r.block))?.kind ?? null;
}

/**
 * The class of a non-public address (`loopback`, `private (RFC 1918)`, `cloud metadata`, ...), or null for a
 * public unicast address. Anything that is not an IP address is `invalid`.
 */
export function classifyAddress(ip: string): string | null {
  const a = parseIp(ip);
  if (!a) return 'invalid';
  if (a.family === 4) return classifyV4(a.value);
  const v6 = V6.find((r) => matches(a, r.block));
  if (v6) return v6.kind;
  const embedded = EMBEDDED_V4.find((r) => matches(a, r.block));
  if (embedded) {
    const inner = classifyV4(a.value & 0xffffffffn);
    // The deprecated compatible form is never a legitimate destination, whatever it embeds.
    if (embedded.kind === 'IPv4-compatible') return `IPv4-compatible IPv6 (${inner ?? 'deprecated'})`;
    return inner === null ? null : `${embedded.kind} IPv6 of a ${inner}`;
  }
  if (matches(a, SIX_TO_FOUR)) {
    const inner = classifyV4((a.value >> 80n) & 0xffffffffn);
    return inner === null ? null : `6to4 IPv6 of a ${inner}`;
  }
  return null;
}
