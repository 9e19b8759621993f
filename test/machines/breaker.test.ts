import { describe, expect, it } from 'vitest';
import { createActor, SimulatedClock, type SnapshotFrom } from 'xstate';
import { adjacencyMapToArray, getAdjacencyMap, getShortestPaths, getSimplePaths } from 'xstate/graph';
import {
  breakerEventOf,
  breakerMachine,
  type BreakerEvent,
  type BreakerInput,
  type BreakerStateName,
} from '../../machines/breaker.js';
import type { Outcome } from '../../machines/outcome.js';

const OK: Outcome = { kind: 'success', status: 200 };
const FAIL: Outcome = { kind: 'retryable', status: 500, reason: 'http_500' };
const REFUSED: Outcome = { kind: 'retryable', reason: 'ECONNREFUSED' };
const BAD: Outcome = { kind: 'permanent', status: 400, reason: 'http_400' };
const TOO_BIG: Outcome = { kind: 'split', status: 413 };
const throttled = (status: 429 | 503, retryAfterMs?: number): Outcome => ({
  kind: 'retryable',
  status,
  reason: `http_${status}`,
  ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
});

const INPUT: BreakerInput = {
  origin: 'https://ingest.example',
  failureThreshold: 3,
  resetTimeoutMs: 1_000,
  maxResetTimeoutMs: 4_000,
};

function startBreaker(overrides: Partial<BreakerInput> = {}) {
  const clock = new SimulatedClock();
  const actor = createActor(breakerMachine, { input: { ...INPUT, ...overrides }, clock });
  const changes: Array<[BreakerStateName, BreakerStateName]> = [];
  let last: BreakerStateName = 'closed';
  actor.subscribe((s) => {
    if (s.value !== last) changes.push([last, s.value]);
    last = s.value;
  });
  actor.start();
  /** an attempt's outcome; `probe`: it was the half-open probe */
  const report = (outcome: Outcome, probe = false) => actor.send(breakerEventOf(outcome, probe));
  const state = () => actor.getSnapshot().value;
  const ctx = () => actor.getSnapshot().context;
  return { actor, clock, changes, report, state, ctx };
}

/** Opens a fresh breaker: `threshold` attempts fail in a row. */
function openBreaker(overrides: Partial<BreakerInput> = {}) {
  const b = startBreaker(overrides);
  for (let i = 0; i < b.ctx().failureThreshold; i++) b.report(FAIL);
  expect(b.state()).toBe('open');
  return b;
}

describe('breakerEventOf', () => {
  it('sorts outcomes into what the breaker distinguishes', () => {
    expect(breakerEventOf(OK, true)).toEqual({ type: 'SUCCESS', probe: true });
    expect(breakerEventOf(FAIL, false)).toEqual({ type: 'FAILURE', probe: false });
    expect(breakerEventOf(BAD, false)).toEqual({ type: 'ANSWERED', probe: false });
    expect(breakerEventOf(TOO_BIG, true)).toEqual({ type: 'ANSWERED', probe: true });
    expect(breakerEventOf(throttled(429, 2_000), true)).toEqual({ type: 'THROTTLED', retryAfterMs: 2_000 });
  });

  it('a 429/503 without Retry-After, or a 500 with one, is an ordinary failure', () => {
    for (const outcome of [
      throttled(429),
      throttled(503, 0),
      { kind: 'retryable', status: 500, reason: 'http_500', retryAfterMs: 5_000 } as Outcome,
    ]) {
      expect(breakerEventOf(outcome, false).type).toBe('FAILURE');
    }
  });
});

describe('breaker: closed', () => {
  it('starts closed with no failures and the initial reset timeout', () => {
    const { state, ctx, changes } = startBreaker();
    expect(state()).toBe('closed');
    expect(ctx()).toMatchObject({ origin: INPUT.origin, consecutiveFailures: 0, resetTimeoutMs: 1_000 });
    expect(changes).toEqual([]);
  });

  it('holds no permits, queues or mirrored state: only what decides whether the origin may be tried', () => {
    expect(Object.keys(startBreaker().ctx()).sort()).toEqual([
      'consecutiveFailures',
      'failureThreshold',
      'initialResetTimeoutMs',
      'maxResetTimeoutMs',
      'origin',
      'pauseMs',
      'resetTimeoutMs',
    ]);
  });

  it('opens after failureThreshold consecutive retryable outcomes', () => {
    const b = startBreaker();
    b.report(FAIL);
    b.report(REFUSED);
    expect(b.state()).toBe('closed');
    expect(b.ctx().consecutiveFailures).toBe(2);
    b.report(FAIL);
    expect(b.state()).toBe('open');
    expect(b.ctx().consecutiveFailures).toBe(3);
    expect(b.changes).toEqual([['closed', 'open']]);
  });

  it('permanent and split outcomes neither count nor reset the streak; success resets it', () => {
    const b = startBreaker();
    b.report(FAIL);
    b.report(FAIL);
    b.report(BAD);
    b.report(TOO_BIG);
    expect(b.ctx().consecutiveFailures).toBe(2);
    b.report(OK);
    expect(b.ctx().consecutiveFailures).toBe(0);
    b.report(FAIL);
    expect(b.state()).toBe('closed');
    expect(b.ctx().consecutiveFailures).toBe(1);
  });
});

describe('breaker: open', () => {
  it('stays open until the reset timeout, then goes half-open', () => {
    const b = openBreaker();
    b.clock.increment(999);
    expect(b.state()).toBe('open');
    b.clock.increment(1);
    expect(b.state()).toBe('halfOpen');
    expect(b.changes).toEqual([
      ['closed', 'open'],
      ['open', 'halfOpen'],
    ]);
  });

  it('counts outcomes of attempts started before it opened, and stays open', () => {
    const b = startBreaker({ failureThreshold: 2 });
    b.report(FAIL);
    b.report(FAIL);
    b.report(FAIL);
    b.report(OK);
    expect(b.state()).toBe('open');
    expect(b.ctx().consecutiveFailures).toBe(0);
  });
});

describe('breaker: half-open', () => {
  it('a successful probe closes it and resets the streak and the reset timeout', () => {
    const b = openBreaker();
    b.clock.increment(1_000);
    b.report(OK, true);
    expect(b.state()).toBe('closed');
    expect(b.ctx()).toMatchObject({ consecutiveFailures: 0, resetTimeoutMs: 1_000 });
  });

  it('a failed probe reopens it and doubles the reset timeout up to maxResetTimeoutMs', () => {
    const b = openBreaker();
    const timeouts: number[] = [];
    for (let i = 0; i < 4; i++) {
      b.clock.increment(b.ctx().resetTimeoutMs - 1);
      expect(b.state()).toBe('open');
      b.clock.increment(1);
      expect(b.state()).toBe('halfOpen');
      b.report(FAIL, true);
      expect(b.state()).toBe('open');
      timeouts.push(b.ctx().resetTimeoutMs);
    }
    expect(timeouts).toEqual([2_000, 4_000, 4_000, 4_000]);
    b.clock.increment(4_000);
    b.report(OK, true);
    expect(b.state()).toBe('closed');
    expect(b.ctx().resetTimeoutMs).toBe(1_000);
  });

  it('a permanent or split answer to the probe counts as reachable: closed', () => {
    for (const outcome of [BAD, TOO_BIG]) {
      const b = openBreaker();
      b.clock.increment(1_000);
      b.report(outcome, true);
      expect(b.state()).toBe('closed');
    }
  });

  it('outcomes of older attempts are counted but do not decide; the probe does', () => {
    const b = openBreaker();
    b.clock.increment(1_000);
    b.report(OK);
    b.report(FAIL);
    b.report(BAD);
    expect(b.state()).toBe('halfOpen');
    b.report(OK, true);
    expect(b.state()).toBe('closed');
  });
});

describe('breaker: Retry-After pauses the whole origin', () => {
  it.each([429, 503] as const)('%i with Retry-After in closed -> paused, then half-open', (status) => {
    const b = startBreaker();
    b.report(throttled(status, 2_500));
    expect(b.state()).toBe('paused');
    expect(b.ctx()).toMatchObject({ pauseMs: 2_500, consecutiveFailures: 1 });
    b.report(OK);
    b.clock.increment(2_499);
    expect(b.state()).toBe('paused');
    b.clock.increment(1);
    expect(b.state()).toBe('halfOpen');
    expect(b.changes).toEqual([
      ['closed', 'paused'],
      ['paused', 'halfOpen'],
    ]);
  });

  it('caps the pause at maxResetTimeoutMs', () => {
    const b = startBreaker();
    b.report(throttled(429, 3_600_000));
    expect(b.ctx().pauseMs).toBe(4_000);
    b.clock.increment(4_000);
    expect(b.state()).toBe('halfOpen');
  });

  it('pauses from open and from half-open too', () => {
    const fromOpen = startBreaker({ failureThreshold: 1 });
    fromOpen.report(FAIL);
    expect(fromOpen.state()).toBe('open');
    fromOpen.report(throttled(503, 1_500));
    expect(fromOpen.state()).toBe('paused');

    const fromHalfOpen = openBreaker();
    fromHalfOpen.clock.increment(1_000);
    fromHalfOpen.report(throttled(429, 1_500), true);
    expect(fromHalfOpen.state()).toBe('paused');
    fromHalfOpen.clock.increment(1_500);
    expect(fromHalfOpen.state()).toBe('halfOpen');
  });

  it('a newer Retry-After while paused restarts the pause with the new value', () => {
    const b = startBreaker();
    b.report(throttled(429, 1_000));
    b.clock.increment(900);
    b.report(throttled(429, 1_000));
    b.clock.increment(500);
    expect(b.state()).toBe('paused');
    b.clock.increment(500);
    expect(b.state()).toBe('halfOpen');
    expect(b.changes).toEqual([
      ['closed', 'paused'],
      ['paused', 'halfOpen'],
    ]);
  });

  it('other outcomes while paused are only counted', () => {
    const b = startBreaker();
    b.report(throttled(429, 1_000));
    b.report(FAIL);
    expect(b.state()).toBe('paused');
    expect(b.ctx().consecutiveFailures).toBe(2);
  });
});

describe('breaker: path coverage (xstate/graph)', () => {
  const graphInput: BreakerInput = {
    origin: 'https://graph.example',
    failureThreshold: 2,
    resetTimeoutMs: 1_000,
    maxResetTimeoutMs: 2_000,
  };
  const afterEvents = Object.values(breakerMachine.root.states).flatMap((node) =>
    node.after.map((t) => ({ type: t.eventType })),
  );
  const events = [
    ...afterEvents,
    ...[true, false].flatMap((probe) => [OK, FAIL, BAD].map((outcome) => breakerEventOf(outcome, probe))),
    breakerEventOf(throttled(429, 1_500), false),
  ] as BreakerEvent[];
  type BreakerSnapshot = SnapshotFrom<typeof breakerMachine>;
  const serializeState = (snapshot: BreakerSnapshot) => {
    const c = snapshot.context;
    return JSON.stringify([
      snapshot.value,
      // past the threshold the count only matters as a statistic; capping it keeps the graph finite
      Math.min(c.consecutiveFailures, graphInput.failureThreshold),
      c.resetTimeoutMs,
      c.pauseMs,
    ]);
  };
  const options = { input: graphInput, events, serializeState };

  it('lists the after events itself', () => {
    expect(afterEvents.map((e) => e.type).sort()).toEqual([
      'xstate.after.pauseTimeout.breaker.paused',
      'xstate.after.resetTimeout.breaker.open',
    ]);
  });

  const shortest = getShortestPaths(breakerMachine, options);

  it('reaches every state', () => {
    const reached = new Set(shortest.map((p) => p.state.value));
    expect(reached).toEqual(new Set(Object.keys(breakerMachine.root.states)));
  });

  it('simple paths (threshold 1, a few events) reach every state too, recovery included', () => {
    const tinyInput = { ...graphInput, failureThreshold: 1, maxResetTimeoutMs: 1_000 };
    // simple paths are enumerated exhaustively: keep that graph tiny
    const tinyEvents = [
      ...afterEvents,
      breakerEventOf(FAIL, false),
      breakerEventOf(FAIL, true),
      breakerEventOf(OK, true),
      breakerEventOf(throttled(429, 1_500), false),
    ] as BreakerEvent[];
    // with threshold 1 the streak never decides after the first failure; pauseMs tells a closed
    // breaker that recovered from a pause from the initial one
    const tinySerialize = (s: BreakerSnapshot) => JSON.stringify([s.value, s.context.pauseMs]);
    const simple = getSimplePaths(breakerMachine, {
      input: tinyInput,
      events: tinyEvents,
      serializeState: tinySerialize,
    });
    expect(new Set(simple.map((p) => p.state.value))).toEqual(
      new Set(Object.keys(breakerMachine.root.states)),
    );
    const recovered = simple.filter(
      (p) => p.state.value === 'closed' && p.steps.some((step) => step.state.value === 'halfOpen'),
    );
    expect(recovered.length).toBeGreaterThan(0);
    for (const path of simple) replay(path, tinyInput, tinySerialize);
  });

  it('takes every transition of the machine somewhere in the state graph', () => {
    const all = [breakerMachine.root, ...Object.values(breakerMachine.root.states)].flatMap((node) => [
      ...[...node.transitions.values()].flat(),
      ...(node.always ?? []),
    ]);
    expect(all).toHaveLength(9);
    const adjacency = getAdjacencyMap<BreakerSnapshot, BreakerEvent, BreakerInput>(breakerMachine, options);
    const taken = new Set(
      adjacencyMapToArray(adjacency).flatMap(({ state, event }) =>
        breakerMachine.getTransitionData(state, event),
      ),
    );
    const missed = all
      .filter((t) => !taken.has(t))
      .map((t) => `${t.source.key} --${t.eventType}--> ${t.target?.[0]?.key ?? '(self)'}`);
    expect(missed).toEqual([]);
  });

  function replay(path: (typeof shortest)[number], input: BreakerInput, serialize = serializeState) {
    const clock = new SimulatedClock();
    const actor = createActor(breakerMachine, { input, clock }).start();
    for (const step of path.steps) {
      const ctx = actor.getSnapshot().context;
      if (step.event.type.startsWith('xstate.after.resetTimeout')) clock.increment(ctx.resetTimeoutMs);
      else if (step.event.type.startsWith('xstate.after.pauseTimeout')) clock.increment(ctx.pauseMs);
      else if ((step.event.type as string) !== 'xstate.init') actor.send(step.event);
      expect(serialize(actor.getSnapshot())).toBe(serialize(step.state));
    }
    actor.stop();
  }

  it('replays every shortest path on a real actor with a simulated clock', () => {
    for (const path of shortest) replay(path, graphInput);
  });
});
