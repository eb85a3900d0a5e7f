import { describe, expect, it } from 'vitest';
import type { LookupAddress } from 'node:dns';
import {
  checkLiteralDestination,
  checkWebhookUrl,
  classifyAddress,
  createGuardedLookup,
  isPrivateAddress,
} from '../plugins/webhooks/ssrf.js';
import type { Resolver, SsrfPolicy } from '../plugins/webhooks/ssrf.js';

const PUBLIC_IP = '93.184.216.34';
const strict: SsrfPolicy = { allowPrivateNetworks: false, allowedHosts: [] };
/** A fake DNS: every name resolves to `map[name]` (or fails like an unknown name). */
const dns =
  (map: Record<string, string[]>): Resolver =>
  async (hostname) => {
    const found = map[hostname];
    if (!found) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    return found.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };

/** One address of every refused class, with the class name the guard reports. */
const REFUSED: Array<[string, RegExp]> = [
  ['127.0.0.1', /loopback/],
  ['127.255.0.9', /loopback/],
  ['10.0.0.1', /RFC 1918/],
  ['172.16.5.4', /RFC 1918/],
  ['172.31.255.255', /RFC 1918/],
  ['192.168.1.1', /RFC 1918/],
  ['169.254.10.10', /link-local/],
  ['169.254.169.254', /cloud metadata/],
  ['100.64.0.1', /carrier-grade NAT/],
  ['100.127.255.254', /carrier-grade NAT/],
  ['0.0.0.0', /this network/],
  ['224.0.0.1', /multicast/],
  ['::1', /loopback/],
  ['::', /unspecified/],
  ['fd00::1', /unique-local/],
  ['fc12:3456::1', /unique-local/],
  ['fe80::1', /link-local/],
  ['fd00:ec2::254', /cloud metadata/],
  ['::ffff:127.0.0.1', /IPv4-mapped IPv6 of a loopback/],
  ['::ffff:a00:1', /IPv4-mapped IPv6 of a private/],
  ['::ffff:169.254.169.254', /IPv4-mapped IPv6 of a cloud metadata/],
  ['2002:c0a8:101::1', /6to4 IPv6 of a private/],
  ['64:ff9b::7f00:1', /NAT64 IPv6 of a loopback/],
];

describe('isPrivateAddress / classifyAddress', () => {
  it.each(REFUSED)('refuses %s', (ip, kind) => {
    expect(isPrivateAddress(ip)).toBe(true);
    expect(classifyAddress(ip)).toMatch(kind);
  });

  it.each(['8.8.8.8', PUBLIC_IP, '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '2002:808:808::1'])(
    'allows public %s',
    (ip) => {
      expect(isPrivateAddress(ip)).toBe(false);
    },
  );

  it('counts what is not an IP address as refused', () => {
    expect(isPrivateAddress('example.com')).toBe(true);
    expect(isPrivateAddress('1::2::3')).toBe(true);
  });
});

describe('checkWebhookUrl (registration)', () => {
  it.each(REFUSED)('refuses a literal %s', async (ip, kind) => {
    const host = ip.includes(':') ? `[${ip}]` : ip;
    const r = await checkWebhookUrl(`https://${host}/hook`, strict);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(kind);
  });

  it.each(REFUSED)('refuses a hostname resolving to %s', async (ip, kind) => {
    const r = await checkWebhookUrl('https://hooks.example.test/x', { ...strict, resolve: dns({ 'hooks.example.test': [PUBLIC_IP, ip] }) });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(new RegExp(`hooks.example.test resolves to ${ip.replace(/[.:]/g, '\\$&')}.*${kind.source}`));
  });

  it('refuses IPv4 written in other notations (the URL parser normalises them)', async () => {
    for (const u of ['http://2130706433/', 'http://0x7f.1/', 'http://017700000001/', 'http://[::ffff:7f00:1]/']) {
      expect((await checkWebhookUrl(u, strict)).ok, u).toBe(false);
    }
  });

  it('refuses other schemes, credentials, metadata hostnames and names that do not resolve', async () => {
    const resolve = dns({ 'metadata.google.internal': [PUBLIC_IP] });
    const reason = async (u: string) => {
      const r = await checkWebhookUrl(u, { ...strict, resolve });
      return r.ok ? null : r.reason;
    };
    expect(await reason('ftp://example.test/')).toMatch(/only http and https/);
    expect(await reason('file:///etc/passwd')).toMatch(/only http and https/);
    expect(await reason('not a url')).toMatch(/absolute http or https URL/);
    expect(await reason('https://user:pw@hooks.example.test/')).toMatch(/credentials/);
    expect(await reason('http://metadata.google.internal/computeMetadata/v1/')).toMatch(/cloud metadata service/);
    expect(await reason('http://Metadata.Google.Internal./')).toMatch(/cloud metadata service/);
    expect(await reason('https://nowhere.example.test/')).toMatch(/could not resolve nowhere.example.test \(ENOTFOUND\)/);
  });

  it('accepts a public destination', async () => {
    const r = await checkWebhookUrl('https://hooks.example.test/x?y=1', { ...strict, resolve: dns({ 'hooks.example.test': [PUBLIC_IP] }) });
    expect(r.ok).toBe(true);
  });

  it('allows private networks when configured, but never cloud metadata', async () => {
    const open: SsrfPolicy = { allowPrivateNetworks: true, allowedHosts: [] };
    expect((await checkWebhookUrl('http://127.0.0.1:8080/', open)).ok).toBe(true);
    expect((await checkWebhookUrl('http://[fd00::1]/', open)).ok).toBe(true);
    expect((await checkWebhookUrl('http://10.1.2.3/', open)).ok).toBe(true);
    const meta = await checkWebhookUrl('http://169.254.169.254/latest/meta-data/', open);
    expect(meta.ok).toBe(false);
    if (!meta.ok) expect(meta.reason).toMatch(/only an explicit WEBHOOK_ALLOWED_HOSTS entry/);
  });

  it('allows hosts on the allow-list: names, wildcards, IPs (also as resolved) and CIDR blocks', async () => {
    const resolve = dns({
      'hooks.internal': ['10.0.0.5'],
      'a.svc.local': ['10.9.0.1'],
      'other.internal': ['10.0.0.6'],
      localhost: ['127.0.0.1'],
    });
    const policy: SsrfPolicy = {
      allowPrivateNetworks: false,
      allowedHosts: ['hooks.internal', '*.svc.local', '127.0.0.1', '192.168.0.0/16', '169.254.169.254'],
      resolve,
    };
    for (const u of [
      'http://hooks.internal/',
      'http://a.svc.local/',
      'http://127.0.0.1:9/',
      'http://localhost:9/',
      'http://192.168.4.4/',
      'http://169.254.169.254/',
    ]) {
      expect((await checkWebhookUrl(u, policy)).ok, u).toBe(true);
    }
    expect((await checkWebhookUrl('http://other.internal/', policy)).ok).toBe(false);
    expect((await checkWebhookUrl('http://10.0.0.1/', policy)).ok).toBe(false);
  });
});

describe('createGuardedLookup (connect time)', () => {
  const run = (policy: SsrfPolicy, hostname: string, options: { all?: boolean; family?: number } = { all: true }) =>
    new Promise<{ err: NodeJS.ErrnoException | null; address: string | LookupAddress[] }>((resolve) => {
      createGuardedLookup(policy)(hostname, options, (err, address) => resolve({ err, address }));
    });

  it('refuses localhost, which the real DNS resolves to loopback', async () => {
    const { err } = await run(strict, 'localhost');
    expect(err?.code).toBe('ERR_WEBHOOK_ADDRESS_REFUSED');
    expect(err?.message).toMatch(/localhost resolves to (127\.0\.0\.1|::1), not a public address \(loopback\)/);
  });

  it('refuses a mixed answer outright (a rebinding attempt)', async () => {
    const { err } = await run({ ...strict, resolve: dns({ 'mixed.test': [PUBLIC_IP, '10.0.0.1'] }) }, 'mixed.test');
    expect(err?.message).toMatch(/10\.0\.0\.1/);
  });

  it('hands the socket exactly the checked addresses', async () => {
    const policy = { ...strict, resolve: dns({ 'ok.test': [PUBLIC_IP, '2606:4700::1'] }) };
    expect((await run(policy, 'ok.test')).address).toEqual([
      { address: PUBLIC_IP, family: 4 },
      { address: '2606:4700::1', family: 6 },
    ]);
    expect((await run(policy, 'ok.test', { family: 6 })).address).toBe('2606:4700::1');
  });

  it('allows loopback when configured', async () => {
    const { err, address } = await run({ allowPrivateNetworks: false, allowedHosts: ['localhost'] }, 'localhost');
    expect(err).toBeNull();
    expect((address as LookupAddress[]).length).toBeGreaterThan(0);
  });

  it('checks literal IP destinations, which net.connect never looks up', () => {
    expect(checkLiteralDestination('127.0.0.1', strict)?.message).toMatch(/loopback/);
    expect(checkLiteralDestination('[::1]', strict)?.message).toMatch(/loopback/);
    expect(checkLiteralDestination(PUBLIC_IP, strict)).toBeNull();
    expect(checkLiteralDestination('hooks.example.test', strict)).toBeNull();
    expect(checkLiteralDestination('127.0.0.1', { allowPrivateNetworks: true, allowedHosts: [] })).toBeNull();
  });
});
