/**
 * SSRF guard for webhook URLs. A webhook URL is chosen by whoever holds the admin token, and the relay then
 * sends requests to it from inside the network, so every destination is checked twice:
 *
 * - at registration (`checkWebhookUrl`): scheme, credentials, literal IPs and every address the host
 *   resolves to, so a mistake is refused with a clear 422 at once;
 * - at connect time (`createGuardedLookup`, used as the socket's DNS lookup): the name is resolved again and
 *   the socket connects only to the addresses that passed the check. DNS answers can change after
 *   registration (DNS rebinding); checking the address the socket actually uses leaves no gap between the
 *   check and the connection.
 *
 * Refused: loopback, RFC 1918, link-local, CGNAT, unique-local and site-local IPv6, multicast, reserved and
 * documentation ranges, IPv4 embedded in IPv6 (mapped, compatible, 6to4, NAT64) when the IPv4 is refused,
 * and cloud metadata addresses and hostnames. `allowPrivateNetworks` lifts all of that except cloud
 * metadata, which only an explicit `allowedHosts` entry opens.
 */
import { promises as dnsPromises } from 'node:dns';
import type { LookupAddress, LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import { classifyAddress, inCidr, parseCidr } from './ssrf/ranges.js';

export { classifyAddress } from './ssrf/ranges.js';

/** A webhook URL refused at registration; `reason` says why and how to allow it. */
export class WebhookUrlError extends Error {
  override readonly name = 'WebhookUrlError';
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** One address a hostname resolved to. */
export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolve a hostname to all its addresses (injectable for tests; default `dns.lookup` with `all: true`). */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

/** Which destinations webhooks may reach. */
export interface SsrfPolicy {
  /** `WEBHOOK_ALLOW_PRIVATE_NETWORKS`: allow private, loopback and link-local destinations (not metadata). */
  allowPrivateNetworks: boolean;
  /**
   * `WEBHOOK_ALLOWED_HOSTS`: hostnames (`hooks.internal`), wildcard suffixes (`*.svc.local`), IP addresses
   * or CIDR blocks (`10.1.0.0/16`) that are always allowed. An IP or CIDR entry also allows any hostname
   * that resolves into it.
   */
  allowedHosts: readonly string[];
  resolve?: Resolver;
}

/** The result of checking a webhook URL: allowed, or refused with a reason. */
export type UrlCheck = { ok: true; url: URL } | { ok: false; reason: string };

/** Hostnames of cloud instance-metadata services, refused whatever they resolve to. */
export const METADATA_HOSTNAMES: readonly string[] = [
  'metadata',
  'metadata.google.internal',
  'metadata.goog',
  'instance-data',
  'instance-data.ec2.internal',
  'metadata.tencentyun.com',
];

const HOW_TO_ALLOW = 'set WEBHOOK_ALLOW_PRIVATE_NETWORKS=true or add the host to WEBHOOK_ALLOWED_HOSTS to allow it';

/** Is this address one a webhook must not reach (anything but public unicast)? Invalid input counts as private. */
export function isPrivateAddress(ip: string): boolean {
  return classifyAddress(ip) !== null;
}

/** `[::1]` -> `::1`, `Example.COM.` -> `example.com`. */
export function normaliseHostname(hostname: string): string {
  return hostname
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/\.$/, '')
    .toLowerCase();
}

const defaultResolver: Resolver = async (hostname) => {
  const found = await dnsPromises.lookup(hostname, { all: true, verbatim: true });
  return found.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

/** The allow-list as a predicate over a hostname and, once resolved, an address. */
function allowList(entries: readonly string[]): (hostname: string, address?: string) => boolean {
  const names = new Set<string>();
  const suffixes: string[] = [];
  const blocks: Array<NonNullable<ReturnType<typeof parseCidr>>> = [];
  for (const raw of entries) {
    const e = normaliseHostname(raw.trim());
    if (!e) continue;
    const block = parseCidr(e.includes('/') ? e : isIP(e) ? `${e}/${isIP(e) === 4 ? 32 : 128}` : '');
    if (block) blocks.push(block);
    else if (e.startsWith('*.')) suffixes.push(e.slice(1));
    else names.add(e);
  }
  return (hostname, address) => {
    if (names.has(hostname) || suffixes.some((s) => hostname.endsWith(s))) return true;
    const ip = address ?? (isIP(hostname) ? hostname : undefined);
    return ip !== undefined && blocks.some((b) => inCidr(ip, b));
  };
}

/** Why a destination is refused, or null when it is allowed. `address` is the resolved (or literal) IP. */
function refusal(policy: SsrfPolicy, allowed: ReturnType<typeof allowList>, hostname: string, address: string): string | null {
  if (allowed(hostname, address)) return null;
  const kind = classifyAddress(address);
  if (kind === null) return null;
  if (policy.allowPrivateNetworks && kind !== 'cloud metadata') return null;
  const via = hostname === address ? `${address} is` : `${hostname} resolves to ${address},`;
  const how = kind === 'cloud metadata' ? 'only an explicit WEBHOOK_ALLOWED_HOSTS entry allows it' : HOW_TO_ALLOW;
  return `${via} not a public address (${kind}); ${how}`;
}

function metadataRefusal(allowed: ReturnType<typeof allowList>, hostname: string): string | null {
  if (!METADATA_HOSTNAMES.includes(hostname) || allowed(hostname)) return null;
  return `${hostname} is a cloud metadata service; add it to WEBHOOK_ALLOWED_HOSTS to allow it`;
}

/**
 * Registration check: `http(s)` only, no credentials in the URL, and neither the literal address nor any
 * address the host resolves to may be refused by the policy.
 */
export async function checkWebhookUrl(input: string, policy: SsrfPolicy): Promise<UrlCheck> {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    return { ok: false, reason: 'url must be an absolute http or https URL' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return { ok: false, reason: `only http and https URLs are allowed (got ${url.protocol})` };
  if (url.username || url.password)
    return { ok: false, reason: 'url must not contain credentials; authenticate receivers with the signature' };
  // Port 0 is no port: connecting to it fails on some systems and means "any" on others.
  if (url.port === '0') return { ok: false, reason: 'url must not use port 0' };
  const hostname = normaliseHostname(url.hostname);
  if (!hostname) return { ok: false, reason: 'url must have a host' };
  const allowed = allowList(policy.allowedHosts);
  const meta = metadataRefusal(allowed, hostname);
  if (meta) return { ok: false, reason: meta };
  if (isIP(hostname)) {
    const why = refusal(policy, allowed, hostname, hostname);
    return why ? { ok: false, reason: why } : { ok: true, url };
  }
  if (allowed(hostname)) return { ok: true, url };
  let addresses: ResolvedAddress[];
  try {
    addresses = await (policy.resolve ?? defaultResolver)(hostname);
  } catch (err) {
    const code = (err as { code?: string }).code;
    return { ok: false, reason: `could not resolve ${hostname}${code ? ` (${code})` : ''}` };
  }
  if (addresses.length === 0) return { ok: false, reason: `could not resolve ${hostname}` };
  for (const a of addresses) {
    const why = refusal(policy, allowed, hostname, a.address);
    if (why) return { ok: false, reason: why };
  }
  return { ok: true, url };
}

/** The error a refused connection fails with (its message goes to the attempt log). */
export function refusedError(reason: string): Error {
  return Object.assign(new Error(`refused to connect: ${reason}`), { code: 'ERR_WEBHOOK_ADDRESS_REFUSED' });
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A `net.connect` `lookup` function: resolves, checks every address, and hands the socket only checked ones. */
export type GuardedLookup = (hostname: string, options: LookupOptions, callback: LookupCallback) => void;

/** A DNS lookup that refuses private addresses at connect time and pins the address it checked. */
export function createGuardedLookup(policy: SsrfPolicy): GuardedLookup {
  const allowed = allowList(policy.allowedHosts);
  const resolve = policy.resolve ?? defaultResolver;
  return (rawHostname, options, callback) => {
    const hostname = normaliseHostname(rawHostname);
    const fail = (err: Error) => callback(err as NodeJS.ErrnoException, '', 0);
    const meta = metadataRefusal(allowed, hostname);
    if (meta) return fail(refusedError(meta));
    resolve(hostname).then(
      (found) => {
        const family = options.family === 4 || options.family === 6 ? options.family : 0;
        const addresses = family ? found.filter((a) => a.family === family) : found;
        if (addresses.length === 0) return fail(Object.assign(new Error(`could not resolve ${hostname}`), { code: 'ENOTFOUND' }));
        // One refused answer refuses them all: a mixed answer is what a rebinding attack looks like.
        for (const a of addresses) {
          const why = refusal(policy, allowed, hostname, a.address);
          if (why) return fail(refusedError(why));
        }
        if (options.all) callback(null, addresses);
        else callback(null, addresses[0]!.address, addresses[0]!.family);
      },
      (err: unknown) => fail(err instanceof Error ? err : new Error(String(err))),
    );
  };
}

/**
 * Connect-time check of a literal IP destination (`net.connect` skips `lookup` for those). Returns the
 * error to fail the connection with, or null.
 */
export function checkLiteralDestination(hostname: string, policy: SsrfPolicy): Error | null {
  const host = normaliseHostname(hostname);
  if (!isIP(host)) return null;
  const why = refusal(policy, allowList(policy.allowedHosts), host, host);
  return why ? refusedError(why) : null;
}
