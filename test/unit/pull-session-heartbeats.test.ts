import type { Msg, NatsConnection } from '@nats-io/transport-node';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PullSession, type SessionTrouble } from '../../src/ingress/pull-session.js';

/**
 * The heartbeat check of a pull session, on a stub connection and a fake clock: the server sends
 * an idle heartbeat every `idle_heartbeat` while a pull waits, and only two whole periods without a
 * word mean the pull is lost. A heartbeat a hair late is not a lost pull: pulling afresh then
 * would leave the old pull alive besides the new one (twice what may be asked for).
 */

afterEach(() => {
  vi.useRealTimers();
});

function stubConnection() {
  let deliver: ((msg: Msg) => void) | undefined;
  let inbox = '';
  const pulls: string[] = [];
  const nc = {
    subscribe: (subject: string, opts: { callback: (err: Error | null, msg: Msg) => void }) => {
      inbox = subject;
      deliver = (msg) => opts.callback(null, msg);
      return { unsubscribe: () => undefined };
    },
    publish: (subject: string, data: string) => {
      if (subject.startsWith('$JS.API.CONSUMER.MSG.NEXT.')) pulls.push(data);
    },
    closed: () => new Promise(() => undefined),
    isClosed: () => false,
  } as unknown as NatsConnection;
  const heartbeat = () =>
    deliver?.({
      subject: inbox,
      headers: { code: 100, description: 'Idle Heartbeat', get: () => '' },
    } as unknown as Msg);
  return { nc, pulls, heartbeat };
}

describe('pull session heartbeat check', () => {
  it('a heartbeat 2 ms late is not a lost pull; two silent periods are', async () => {
    vi.useFakeTimers();
    const { nc, pulls, heartbeat } = stubConnection();
    const troubles: Array<{ trouble: SessionTrouble; at: number }> = [];
    const start = Date.now();
    const session = new PullSession(
      nc,
      { stream: 'S', consumer: 'C', maxMessages: 10, expiresMs: 2_000 },
      {
        handle: () => undefined,
        letGo: () => undefined,
        troubled: (trouble) => troubles.push({ trouble, at: Date.now() - start }),
      },
    );
    session.start(); // heartbeats every 1000 ms (half the pull's life)
    expect(pulls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(999);
    heartbeat(); // at 999, just before the session's check at 1000
    await vi.advanceTimersByTimeAsync(1_002);
    heartbeat(); // at 2001: the next one, 2 ms late
    expect(troubles).toEqual([]);
    expect(pulls).toHaveLength(1);
    // then silence: missed once two whole periods have passed without a word (from 4001 on)
    await vi.advanceTimersByTimeAsync(4_000);
    expect(troubles.map((t) => t.trouble)).toEqual(['heartbeats_missed']);
    expect(troubles[0]?.at).toBeGreaterThanOrEqual(2_001 + 2_000);
    expect(pulls).toHaveLength(2);
    session.stop();
  });
});
