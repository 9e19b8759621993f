import { describe, expect, it } from 'vitest';
import { consumerSettled } from '../../src/source/jetstream.js';

describe('consumerSettled', () => {
  it('takes a single server (no cluster info) as settled', () => {
    expect(consumerSettled(undefined)).toBe(true);
  });

  it('waits for a leader and every follower current', () => {
    const follower = (current: boolean) => ({ name: 'n2', current, active: 0, offline: false, lag: 0 });
    expect(consumerSettled({ name: 'c', leader: '', replicas: [] })).toBe(false);
    expect(consumerSettled({ name: 'c', leader: 'n1', replicas: [follower(true), follower(false)] })).toBe(
      false,
    );
    expect(consumerSettled({ name: 'c', leader: 'n1', replicas: [follower(true), follower(true)] })).toBe(
      true,
    );
  });
});
