import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../hosts/shared/config.js';

describe('loadConfig', () => {
  it('has the documented defaults', () => {
    const c = loadConfig('devices', {});
    expect(c.port).toBe(30080);
    expect(c.mentorApiUrl).toBeUndefined();
    expect(c.forward).toMatchObject({ timeoutMs: 10_000, maxRetries: 3, backoffBaseMs: 1000 });
    expect(Object.values(c.forward.toggles).every(Boolean)).toBe(true);
    expect(c.databaseUrl).toMatch(/^sqlite:.*devices\.sqlite$/);
    expect(loadConfig('mentor', {}).port).toBe(30081);
    expect(c.bodyLimit).toBe(1024 * 1024);
    expect(c.retentionDays).toBe(30);
    expect(c.http).toEqual({ headersTimeoutMs: 10_000, requestTimeoutMs: 60_000, keepAliveTimeoutMs: 5_000 });
    expect(c.deviceRateLimit).toBeUndefined();
  });

  it('takes the HTTP timeouts in seconds and refuses headers allowed longer than the whole request', () => {
    const c = loadConfig('devices', {
      HTTP_HEADERS_TIMEOUT: '2',
      HTTP_REQUEST_TIMEOUT: '3.5',
      HTTP_KEEP_ALIVE_TIMEOUT: '1',
      DEVICE_RATE_LIMIT: '0.5',
    });
    expect(c.http).toEqual({ headersTimeoutMs: 2000, requestTimeoutMs: 3500, keepAliveTimeoutMs: 1000 });
    expect(c.deviceRateLimit).toBe(0.5);
    expect(() => loadConfig('devices', { HTTP_HEADERS_TIMEOUT: '30', HTTP_REQUEST_TIMEOUT: '20' })).toThrow('HTTP_HEADERS_TIMEOUT');
  });

  it('takes decimal seconds and 1/0 toggles', () => {
    const c = loadConfig('devices', {
      FORWARD_TIMEOUT: '0.05',
      FORWARD_BACKOFF_BASE: '0.5',
      FORWARD_PROCESSES: '0',
      FORWARD_METRICS: 'TRUE',
    });
    expect(c.forward.timeoutMs).toBe(50);
    expect(c.forward.backoffBaseMs).toBe(500);
    expect(c.forward.toggles['process.snapshot']).toBe(false);
    expect(c.forward.toggles['metric.submitted']).toBe(true);
  });

  it.each([
    ['FORWARD_TIMEOUT', 'abc'],
    ['FORWARD_MAX_RETRIES', '-1'],
    ['FORWARD_PROCESSES', 'maybe'],
    ['MENTOR_API_URL', 'ftp://x'],
    ['PORT', '70000'],
    ['BODY_LIMIT', 'lots'],
    ['LOG_LEVEL', 'loud'],
    ['HTTP_HEADERS_TIMEOUT', '0'],
    ['HTTP_REQUEST_TIMEOUT', 'soon'],
    ['HTTP_KEEP_ALIVE_TIMEOUT', '-1'],
    ['DEVICE_RATE_LIMIT', '0'],
    ['DEVICE_RATE_LIMIT', 'many'],
  ])('names %s when it is invalid', (name, value) => {
    expect(() => loadConfig('devices', { [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig('devices', { [name]: value })).toThrow(name);
  });

  it('never echoes a secret value', () => {
    try {
      loadConfig('devices', { DATABASE_URL: 'mysql://user:hunter2@db/x' });
      expect.unreachable();
    } catch (err) {
      expect(String(err)).toContain('DATABASE_URL');
      expect(String(err)).not.toContain('hunter2');
    }
  });
});
