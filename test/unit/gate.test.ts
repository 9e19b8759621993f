import { describe, expect, it } from 'vitest';
import { createActor, fromTransition, SimulatedClock } from 'xstate';
import type { Outcome } from '../../machines/outcome.js';
import { Gate, limiterInputOf, maxConcurrencyOf, type CircuitChange } from '../../src/delivery/gate.js';

const OK: Outcome = { kind: 'success', status: 200 };
const FAIL: Outcome = { kind: 'retryable', status: 500, reason: 'http_500' };

const clientLogic = fromTransition(
  (permits: number, event: { type: string }) => (event.type === 'PERMIT' ? permits + 1 : permits),
  0,
);
const newClient = () => createActor(clientLogic).start();

function startGate(failureThreshold = 1, concurrency: number | 'adaptive' = 2) {
  const clock = new SimulatedClock();
  const changes: CircuitChange[] = [];
  const gate = new Gate({
    breaker: {
      origin: 'https://o.example',
      failureThreshold,
      resetTimeoutMs: 1_000,
      maxResetTimeoutMs: 4_000,
    },
    concurrency,
    clock,
    onCircuitChange: (c) => changes.push(c),
  });
  return { gate, clock, changes };
}

describe('gate: breaker and limiter wired together', () => {
  it('maps TRANSMITTER_CONCURRENCY to the limiter: a number is fixed, adaptive is bounded by 64', () => {
    expect(limiterInputOf(3)).toEqual({ mode: 'fixed', maxConcurrency: 3 });
    expect(limiterInputOf('adaptive')).toEqual({ mode: 'adaptive', maxConcurrency: 64 });
    expect(maxConcurrencyOf('adaptive')).toBe(64);
  });

  it('the failure that opens the circuit frees its permit without handing it to a waiter', () => {
    const { gate, changes } = startGate(1, 1);
    const [a, b] = [newClient(), newClient()];
    gate.permits.send({ type: 'ACQUIRE', ref: a });
    gate.permits.send({ type: 'ACQUIRE', ref: b });
    gate.permits.send({ type: 'RELEASE', ref: a, outcome: FAIL });
    expect(gate.state).toBe('open');
    expect(b.getSnapshot().context).toBe(0);
    expect(gate.status()).toMatchObject({ state: 'open', inFlight: 0, waiting: 1, consecutiveFailures: 1 });
    expect(changes).toEqual([{ origin: 'https://o.example', from: 'closed', to: 'open' }]);
    gate.stop();
  });

  it('a duplicate RELEASE counts once; the probe decides; recovery restarts at one permit', () => {
    const { gate, clock, changes } = startGate(2, 2);
    const [a, b, c] = [newClient(), newClient(), newClient()];
    for (const ref of [a, b, c]) gate.permits.send({ type: 'ACQUIRE', ref });
    gate.permits.send({ type: 'RELEASE', ref: a, outcome: FAIL });
    gate.permits.send({ type: 'RELEASE', ref: a, outcome: FAIL });
    expect(gate.status().consecutiveFailures).toBe(1);
    gate.permits.send({ type: 'RELEASE', ref: b, outcome: FAIL });
    expect(gate.state).toBe('open');
    clock.increment(1_000);
    expect(gate.state).toBe('halfOpen');
    // c still holds a permit from before; its answer does not decide, the probe's does
    const probe = newClient();
    gate.permits.send({ type: 'ACQUIRE', ref: probe });
    expect(probe.getSnapshot().context).toBe(1);
    gate.permits.send({ type: 'RELEASE', ref: c, outcome: OK });
    expect(gate.state).toBe('halfOpen');
    gate.permits.send({ type: 'RELEASE', ref: probe, outcome: OK });
    expect(gate.state).toBe('closed');
    expect(gate.status()).toMatchObject({ allowed: 1 });
    expect(changes.map((x) => x.to)).toEqual(['open', 'halfOpen', 'closed']);
    gate.stop();
  });

  it('round trips reach the limiter only for accepted requests', () => {
    const { gate } = startGate(5, 'adaptive');
    const a = newClient();
    gate.permits.send({ type: 'ACQUIRE', ref: a });
    gate.report(FAIL, 500);
    gate.report(OK, 20);
    gate.permits.send({ type: 'RELEASE', ref: a, outcome: OK });
    // limit 1: that one request was a whole window, its 20 ms the first baseline
    expect(gate.limiter.getSnapshot().context.baseline?.meanMs).toBe(20);
    gate.stop();
  });
});
