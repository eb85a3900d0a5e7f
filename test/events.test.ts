import { describe, expect, it } from 'vitest';
import { createEvent, matchesEventType, newEventId } from '../lib/events.js';

describe('events', () => {
  it('ids are unique, dot-free and time-ordered', () => {
    const a = newEventId(1_000);
    const b = newEventId(2_000);
    expect(a).toMatch(/^evt_[0-9A-Z]{26}$/);
    expect(a < b).toBe(true);
    expect(new Set(Array.from({ length: 1000 }, () => newEventId())).size).toBe(1000);
  });

  it('refuses an id with a dot', () => {
    expect(() => createEvent({ type: 'x.y', id: 'a.b', data: {} })).toThrow('must not contain');
  });

  it.each([
    [['*'], 'metric.submitted', true],
    [['metric.*'], 'metric.submitted', true],
    [['metric.*'], 'alert.submitted', false],
    [['alert.submitted'], 'alert.submitted', true],
    [['alert.submitted'], 'alert.submittedx', false],
    [[], 'alert.submitted', false],
  ])('subscription %j matches %s: %s', (patterns, type, expected) => {
    expect(matchesEventType(patterns, type)).toBe(expected);
  });
});
