import { describe, expect, it } from 'vitest';
import { and, assign, fromPromise, setup, type AnyStateMachine } from 'xstate';
import { breakerMachine } from '../../machines/breaker.js';
import { bufferMachine } from '../../machines/buffer.js';
import { deliveryMachine } from '../../machines/delivery.js';
import { limiterMachine } from '../../machines/limiter.js';
import { EmitterEvents } from '../../src/observe/events.js';
import { DEBUG_CSP, debugAppJs, debugPageHtml } from '../../src/observe/views/debug-page.js';
import { graphToMermaid, mermaidId } from '../../src/observe/views/mermaid.js';
import { machineToGraph, type StateGraph } from '../../src/observe/views/statechart.js';
import { graphToSvg } from '../../src/observe/views/svg.js';
import { DebugTimeline, debugTimes } from '../../src/observe/views/timeline.js';

/**
 * The expected graph, read independently from the machine's *config* (what the machine file
 * literally says), not from the parsed StateNode tree that machineToGraph walks.
 */
interface Expected {
  states: string[];
  initial: string;
  finals: string[];
  /** per state: [kind, event/delay, target or '', guard or ''] */
  edges: Array<[string, string, string, string, string]>;
  counts: { on: number; after: number; always: number; invoke: number };
}

type Cfg = Record<string, unknown>;
const list = (v: unknown): unknown[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
const targetOf = (t: unknown): string => {
  const raw = typeof t === 'string' ? t : (t as { target?: unknown }).target;
  return typeof raw === 'string' ? raw.replace(/^\./, '') : '';
};
const guardOf = (t: unknown): string => {
  const g = typeof t === 'object' && t !== null ? (t as { guard?: unknown }).guard : undefined;
  if (typeof g === 'string') return g;
  if (g && typeof g === 'object') return String((g as { type: string }).type);
  return g === undefined ? '' : 'fn';
};

function expectedFrom(machine: AnyStateMachine): Expected {
  const config = machine.config as Cfg;
  const states = config.states as Record<string, Cfg>;
  const edges: Expected['edges'] = [];
  const counts = { on: 0, after: 0, always: 0, invoke: 0 };
  const add = (source: string, kind: string, event: string, t: unknown) =>
    edges.push([source, kind, event, targetOf(t), guardOf(t)]);
  for (const [event, ts] of Object.entries((config.on ?? {}) as Cfg)) {
    for (const t of list(ts)) {
      counts.on += 1;
      add('', 'on', event, t);
    }
  }
  for (const [name, s] of Object.entries(states)) {
    for (const [event, ts] of Object.entries((s.on ?? {}) as Cfg)) {
      for (const t of list(ts)) {
        counts.on += 1;
        add(name, 'on', event, t);
      }
    }
    for (const [delay, ts] of Object.entries((s.after ?? {}) as Cfg)) {
      for (const t of list(ts)) {
        counts.after += 1;
        add(name, 'after', delay, t);
      }
    }
    for (const t of list(s.always)) {
      counts.always += 1;
      add(name, 'always', '', t);
    }
    for (const inv of list(s.invoke) as Cfg[]) {
      for (const key of ['onDone', 'onError'] as const) {
        for (const t of list(inv[key])) {
          counts.invoke += 1;
          add(name, key === 'onDone' ? 'done' : 'error', String(inv.id), t);
        }
      }
    }
  }
  return {
    states: Object.keys(states),
    initial: String(config.initial),
    finals: Object.entries(states)
      .filter(([, s]) => s.type === 'final')
      .map(([k]) => k),
    edges,
    counts,
  };
}

function actualEdges(graph: StateGraph): Expected['edges'] {
  return graph.transitions.map((t) => {
    const event = t.kind === 'after' ? (t.delay ?? '') : t.kind === 'always' ? '' : t.label;
    const name = t.kind === 'done' || t.kind === 'error' ? t.label.replace(/^on(Done|Error) /, '') : event;
    // a guard combinator (and/or/not) is compared by its presence only
    const guard = t.guard === undefined ? '' : t.guard.startsWith('(') ? 'fn' : t.guard.replace(/\(.*$/, '');
    return [t.source, t.kind, name, t.targets[0] ?? '', guard];
  });
}

const REAL: Array<[string, AnyStateMachine]> = [
  ['buffer', bufferMachine],
  ['delivery', deliveryMachine],
  ['breaker', breakerMachine],
  ['limiter', limiterMachine],
];

describe('machineToGraph on the real machines', () => {
  it.each(REAL)('%s: every state, the initial state and the final states', (_name, machine) => {
    const graph = machineToGraph(machine);
    const expected = expectedFrom(machine);
    expect(graph.id).toBe(machine.id);
    expect(graph.states.map((s) => s.id)).toEqual(expected.states);
    expect(graph.initial).toBe(expected.initial);
    expect(graph.states.filter((s) => s.type === 'final').map((s) => s.id)).toEqual(expected.finals);
    expect(graph.states.every((s) => s.parent === null)).toBe(true);
  });

  it.each(REAL)('%s: every transition, with its event, target and guard', (_name, machine) => {
    const graph = machineToGraph(machine);
    const expected = expectedFrom(machine);
    const kinds = (k: string) => graph.transitions.filter((t) => t.kind === k).length;
    expect(kinds('on')).toBe(expected.counts.on);
    expect(kinds('after')).toBe(expected.counts.after);
    expect(kinds('always')).toBe(expected.counts.always);
    expect(kinds('done') + kinds('error')).toBe(expected.counts.invoke);
    expect(graph.transitions).toHaveLength(
      expected.counts.on + expected.counts.after + expected.counts.always + expected.counts.invoke,
    );
    const sort = (e: Expected['edges']) => [...e].map((x) => x.join('|')).sort();
    expect(sort(actualEdges(graph))).toEqual(sort(expected.edges));
  });

  it('counts what the machine files say (a guard against the expectations reading nothing)', () => {
    const c = (m: AnyStateMachine) => expectedFrom(m).counts;
    expect(c(bufferMachine)).toEqual({ on: 5, after: 1, always: 0, invoke: 0 });
    expect(c(deliveryMachine)).toEqual({ on: 1, after: 1, always: 7, invoke: 2 });
    expect(c(breakerMachine)).toEqual({ on: 7, after: 2, always: 0, invoke: 0 });
    expect(c(limiterMachine)).toEqual({ on: 8, after: 0, always: 2, invoke: 0 });
  });

  it('names guards, parameterised guards, guard combinators, delays and actions', () => {
    const delivery = machineToGraph(deliveryMachine);
    const settling = delivery.transitions.filter((t) => t.source === 'settling');
    expect(settling.map((t) => t.guard)).toEqual([
      'lastOutcomeIs(kind=success)',
      'lastOutcomeIs(kind=split)',
      'lastOutcomeIs(kind=permanent)',
      'budgetSpent',
      undefined,
    ]);
    expect(settling.map((t) => t.order)).toEqual([0, 1, 2, 3, 4]);
    expect(delivery.transitions.find((t) => t.kind === 'after')).toMatchObject({
      source: 'backoff',
      targets: ['waiting'],
      delay: 'retryDelay',
      label: 'after retryDelay',
      event: 'xstate.after.retryDelay.delivery.backoff',
    });
    expect(delivery.transitions.filter((t) => t.kind === 'done' || t.kind === 'error')).toMatchObject([
      { source: 'sending', label: 'onDone send', targets: ['settling'] },
      { source: 'sending', label: 'onError send', targets: ['settling'] },
    ]);
    expect(delivery.states.find((s) => s.id === 'sending')).toMatchObject({
      entry: ['emitSending'],
      invoke: ['send'],
    });

    const breaker = machineToGraph(breakerMachine);
    expect(breaker.transitions.filter((t) => t.source === '').map((t) => t.event)).toEqual([
      'THROTTLED',
      'FAILURE',
      'SUCCESS',
    ]);
    expect(
      breaker.transitions.find((t) => t.source === 'halfOpen' && t.targets[0] === 'open' && t.kind === 'on')
        ?.guard,
    ).toBe('isProbe');
    const limiter = machineToGraph(limiterMachine);
    expect(limiter.transitions.filter((t) => t.source === '').map((t) => t.event)).toEqual([
      'ACQUIRE',
      'CANCEL',
      'RELEASE',
      'RTT',
      'CIRCUIT',
      'CIRCUIT',
      'CIRCUIT',
    ]);
    expect(limiter.transitions.find((t) => t.source === 'flowing' && t.kind === 'always')).toMatchObject({
      guard: 'hasRoom',
      targets: [],
      actions: ['grantUpToLimit'],
    });

    const buffer = machineToGraph(bufferMachine);
    const interval = buffer.transitions.find((t) => t.kind === 'after');
    expect(interval).toMatchObject({ targets: ['empty'], actions: ['seal(trigger=interval)'] });
    // the internal timer actions xstate adds for `after` are not the machine's entry actions
    expect(buffer.states.find((s) => s.id === 'filling')?.entry).toEqual([]);
    // the graph is plain data
    expect(JSON.parse(JSON.stringify(buffer))).toEqual(buffer);
  });

  it('handles nested states, literal delays and guard combinators of a made-up machine', async () => {
    const machine = setup({
      guards: { a: () => true, b: () => false },
      actors: { job: fromPromise(async () => 1) },
      actions: { note: assign({}) },
    }).createMachine({
      id: 'nested',
      initial: 'idle',
      states: {
        idle: { on: { GO: { target: 'busy', guard: and(['a', 'b']) } } },
        busy: {
          initial: 'one',
          invoke: { src: 'job', onDone: 'idle' },
          states: {
            one: { after: { 250: 'two' } },
            two: { type: 'final' },
          },
          onDone: { target: 'idle', actions: 'note' },
        },
      },
    });
    const graph = machineToGraph(machine);
    expect(graph.states.map((s) => [s.id, s.parent, s.type])).toEqual([
      ['idle', null, 'atomic'],
      ['busy', null, 'compound'],
      ['busy.one', 'busy', 'atomic'],
      ['busy.two', 'busy', 'final'],
    ]);
    expect(graph.states[1]?.initial).toBe('busy.one');
    expect(graph.transitions.find((t) => t.kind === 'after')).toMatchObject({
      source: 'busy.one',
      delay: '250ms',
      targets: ['busy.two'],
    });
    expect(graph.transitions.find((t) => t.kind === 'doneState')).toMatchObject({
      source: 'busy',
      targets: ['idle'],
      actions: ['note'],
    });
    expect(graph.transitions.find((t) => t.event === 'GO')?.guard).toBe('(a && b)');
    const mermaid = graphToMermaid(graph);
    expect(mermaid).toContain('state busy {');
    expect(mermaid).toContain('[*] --> busy__one');
    expect(mermaid).toContain('busy__two --> [*]');
    expect(mermaid).toContain('busy__one --> busy__two : after 250ms');
    expect(await graphToSvg(graph)).toContain('data-state="busy.two"');
  });
});

describe('graphToMermaid', () => {
  it.each(REAL)('%s: a plausible stateDiagram-v2', (_name, machine) => {
    const graph = machineToGraph(machine);
    const text = graphToMermaid(graph);
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('stateDiagram-v2');
    expect(lines).toContain(`  [*] --> ${graph.initial}`);
    for (const state of graph.states) expect(text).toMatch(new RegExp(`\\b${mermaidId(state.id)}\\b`));
    for (const final of graph.states.filter((s) => s.type === 'final')) {
      expect(lines).toContain(`  ${final.id} --> [*]`);
    }
    // one arrow line per transition of a state (targetless ones as self-loops), plus [*] lines
    const arrows = lines.filter((l) => /^\s+\w+ --> \w+ : /.test(l));
    expect(arrows).toHaveLength(graph.transitions.filter((t) => t.source !== '').length);
    for (const line of arrows) {
      const [, from, to] = /^\s+(\w+) --> (\w+) : (.+)$/.exec(line) ?? [];
      const ids = graph.states.map((s) => s.id);
      expect(ids).toContain(from);
      expect(ids).toContain(to);
    }
    // nothing that ends a Mermaid statement early
    for (const line of lines.slice(1)) expect(line).not.toMatch(/[;#]/);
    for (const line of arrows) expect(line.split(' : ')[1]).not.toContain(':');
    // every `after` and `always` is labelled as such
    for (const t of graph.transitions.filter((x) => x.kind === 'after')) {
      expect(text).toContain(`: after ${t.delay}`);
    }
    expect((text.match(/ : always/g) ?? []).length).toBe(
      graph.transitions.filter((t) => t.kind === 'always').length,
    );
  });

  it('titles with front matter, and shows the root handlers in a note', () => {
    const text = graphToMermaid(machineToGraph(breakerMachine), { title: 'breaker — permits' });
    expect(text.startsWith('---\ntitle: breaker — permits\n---\nstateDiagram-v2\n')).toBe(true);
    expect(text).toContain('note right of closed');
    expect(text).toContain('FAILURE / countFailure (internal)');
    expect(text).toContain('end note');
    expect(text).toContain('closed --> open : FAILURE [reachesThreshold] / countFailure');
    expect(graphToMermaid(machineToGraph(bufferMachine), { actions: false })).toContain(
      'filling --> empty : FLUSH\n',
    );
  });
});

describe('graphToSvg and the debug page', () => {
  it.each(REAL)(
    '%s: one box per state, one arrow per pair of states, no style attributes',
    async (_n, machine) => {
      const graph = machineToGraph(machine);
      const svg = await graphToSvg(graph);
      expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
      expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
      expect(svg).toContain(`data-machine="${graph.id}"`);
      for (const s of graph.states) expect(svg).toContain(`<g class="state ${s.type}" data-state="${s.id}">`);
      const pairs = new Set(
        graph.transitions
          .filter((t) => t.source !== '')
          .flatMap((t) => t.targets.filter((x) => x !== t.source).map((x) => `${t.source}>${x}`)),
      );
      for (const pair of pairs) {
        const [from, to] = pair.split('>');
        expect(svg).toContain(`data-source="${from}" data-target="${to}"`);
      }
      expect(svg).not.toMatch(/\sstyle=/);
      expect(svg).not.toMatch(/<script/i);
      const viewBox = /viewBox="0 0 (\d+) (\d+)"/.exec(svg);
      expect(Number(viewBox?.[1])).toBeGreaterThan(100);
      expect(Number(viewBox?.[2])).toBeGreaterThan(100);
    },
  );

  it('escapes text and keeps the page free of inline script and style', async () => {
    const html = await debugPageHtml('1.2.3');
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect((html.match(/<svg /g) ?? []).length).toBe(4);
    expect(html).toContain('<script src="debug/app.js" defer></script>');
    expect(html).not.toMatch(/<script>|<style|\sstyle=|\son\w+=/i);
    expect(DEBUG_CSP).toContain("default-src 'none'");
    expect(DEBUG_CSP).not.toMatch(/unsafe|https?:|\*/);
    // the client script is plain JavaScript that parses
    expect(() => new Function(debugAppJs())).not.toThrow();
    expect(debugAppJs()).toContain("fetch('debug/machines?view=live'");
  });
});

describe('debug timeline', () => {
  it('knows when a delivery retries and when the breaker tries again', () => {
    const events = new EmitterEvents();
    let now = 1_000_000;
    const timeline = new DebugTimeline(events, () => now, 2);
    const retry = { kind: 'retryable', reason: 'http_503', status: 503 } as const;
    events.emit('attempt', { batchId: 'a', attempt: 1, outcome: retry, durationMs: 5, nextDelayMs: 2000 });
    events.emit('attempt', { batchId: 'b', attempt: 1, outcome: retry, durationMs: 5, nextDelayMs: 500 });
    now += 100;
    events.emit('breaker', { origin: 'https://x', from: 'closed', to: 'open' });
    const live = {
      deliveries: {
        listed: [
          { batchId: 'a', state: 'backoff' },
          { batchId: 'b', state: 'waiting' },
        ],
      },
      breaker: { state: 'open', resetTimeoutMs: 60_000 },
    };
    expect(debugTimes(live, timeline.snapshot())).toEqual({
      nextRetryAt: { a: new Date(1_002_000).toISOString() },
      breaker: { since: new Date(1_000_100).toISOString(), reopenAt: new Date(1_060_100).toISOString() },
    });
    // bounded, and forgotten once sending or finished
    events.emit('attempt', { batchId: 'c', attempt: 1, outcome: retry, durationMs: 5, nextDelayMs: 1 });
    expect(Object.keys(timeline.snapshot().retryAt)).toEqual(['b', 'c']);
    events.emit('sending', { batchId: 'b', attempt: 2 });
    events.emit('finished', { batchId: 'c', result: 'delivered', attempts: 2, createdAtMs: 0, items: 1 });
    expect(timeline.snapshot().retryAt).toEqual({});
    // paused: the Retry-After of the attempt that paused it
    events.emit('attempt', {
      batchId: 'd',
      attempt: 1,
      outcome: { kind: 'retryable', reason: 'http_429', status: 429, retryAfterMs: 7000 },
      durationMs: 5,
      nextDelayMs: 7000,
    });
    events.emit('breaker', { origin: 'https://x', from: 'open', to: 'paused' });
    expect(
      debugTimes({ breaker: { state: 'paused', resetTimeoutMs: 1 } }, timeline.snapshot()).breaker,
    ).toEqual({
      since: new Date(now).toISOString(),
      reopenAt: new Date(now + 7000).toISOString(),
    });
    // a breaker state the timeline did not see change: no times
    expect(
      debugTimes({ breaker: { state: 'closed', resetTimeoutMs: 1 } }, timeline.snapshot()).breaker,
    ).toEqual({
      since: null,
      reopenAt: null,
    });
    timeline.close();
    expect(events.listenerCount('attempt')).toBe(0);
  });
});
