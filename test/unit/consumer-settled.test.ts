import { describe, expect, it } from 'vitest';
import { consumerSettled } from '../../src/ingress/jetstream-resources.js';

const follower = (current: boolean) => ({ name: 'n2', current, active: 0, offline: !current, lag: 0 });

describe('consumerSettled', () => {
  it('takes a single server (no cluster info) as settled', () => {
    expect(consumerSettled(undefined)).toBe(true);
  });

  it('waits for a leader', () => {
    expect(consumerSettled({ name: 'c', leader: '', replicas: [follower(true), follower(true)] })).toBe(
      false,
    );
  });

  it('needs a current quorum, not every follower (a node may be down)', () => {
    const group = (...current: boolean[]) => ({ name: 'c', leader: 'n1', replicas: current.map(follower) });
    expect(consumerSettled(group(true, true))).toBe(true);
    expect(consumerSettled(group(true, false))).toBe(true);
    expect(consumerSettled(group(false, false))).toBe(false);
    expect(consumerSettled(group())).toBe(true);
  });
});
