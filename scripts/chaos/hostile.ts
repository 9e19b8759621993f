import { startNats } from '../../harness/nats.js';
import { sampleMessages } from '../../harness/workload.js';
import {
  chaosEnv,
  drained,
  getJson,
  logMessages,
  Publisher,
  resultFrom,
  sleep,
  startChaosSink,
  startEmitter,
  tally,
  tempDir,
  toRaw,
  type RawPublished,
  type ScenarioResult,
} from './common.js';

/**
 * Scenario 6 (brief; test/integration/hostile-input.test.ts is the thorough one): a handful of
 * bad messages among good ones, through the real process. Good ones must all be delivered, every
 * bad one counted as rejected in /api/v1/stats, and the process must stay up.
 */

export interface HostileParams {
  good: number;
}

const MAX_BYTES = 64 * 1024;
const T = '2026-01-01T00:00:00Z';

function hostile(): Array<{ name: string; subject: string; payload: Uint8Array }> {
  const utf8 = (s: string) => new TextEncoder().encode(s);
  return [
    { name: 'invalid JSON', subject: 'approved.domain', payload: utf8('{"host": 42') },
    {
      name: 'invalid UTF-8',
      subject: 'approved.finding',
      payload: Uint8Array.from([0x7b, 0x22, 0x69, 0x64, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
    },
    { name: 'top-level array', subject: 'approved.finding', payload: utf8('[1,2,3]') },
    {
      name: 'wrong type',
      subject: 'approved.ip',
      payload: utf8(JSON.stringify({ ip: 42, first_seen: T, last_seen: T })),
    },
    {
      name: 'edge type not in the enum',
      subject: 'approved.edge',
      payload: utf8(
        JSON.stringify({
          type: 'OWNS',
          source: 'a',
          target: 'b',
          observed_at: T,
          probe_id: 'p',
          run_id: 'r',
        }),
      ),
    },
    { name: 'empty body', subject: 'approved.cert', payload: new Uint8Array(0) },
    {
      name: 'item over TRANSMITTER_BATCH_MAX_BYTES',
      subject: 'approved.finding',
      payload: utf8(JSON.stringify({ id: 'too-big', blob: 'x'.repeat(MAX_BYTES * 2) })),
    },
    {
      name: 'nested 10,000 deep',
      subject: 'approved.finding',
      payload: utf8(`{"id":"deep","d":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}}`),
    },
  ];
}

export async function hostileScenario(p: HostileParams): Promise<ScenarioResult> {
  const started = Date.now();
  const [nats, sink, spool] = await Promise.all([startNats(), startChaosSink(), tempDir('hostile')]);
  const notes: string[] = [];
  const failures: string[] = [];
  const proc = startEmitter(
    chaosEnv({
      natsUrl: nats.url,
      sinkUrl: sink.url,
      spoolDir: spool.path,
      extra: { TRANSMITTER_BATCH_MAX_BYTES: String(MAX_BYTES), TRANSMITTER_BATCH_SIZE: '100' },
    }),
  );
  let pub: Publisher | undefined;
  try {
    const http = await proc.running;
    pub = await Publisher.connect([nats.url]);
    const good = toRaw(sampleMessages(p.good, 'hostile'));
    const bad = hostile();
    const every = Math.max(1, Math.floor(good.length / (bad.length + 1)));
    const mixed: RawPublished[] = [];
    good.forEach((g, i) => {
      mixed.push(g);
      const b = i % every === every - 1 ? bad[Math.floor(i / every)] : undefined;
      if (b) mixed.push({ subject: b.subject, payload: b.payload, msgId: `bad-${b.name}` });
    });
    await pub.publish(mixed, { window: 1 }); // in order
    const ok = await drained(pub.published, sink, 30_000);
    if (!ok) failures.push('not every good message delivered within 30 s');
    let rejected = -1;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const stats = await getJson(`${http}/api/v1/stats`).catch(() => undefined);
      rejected = (stats?.body as { items?: { rejected?: number } } | undefined)?.items?.rejected ?? -1;
      if (rejected >= bad.length) break;
      await sleep(200);
    }
    notes.push(
      `${bad.length} hostile messages among ${p.good} good ones; /api/v1/stats items.rejected = ${rejected}`,
    );
    if (rejected !== bad.length) failures.push(`items.rejected is ${rejected}, expected ${bad.length}`);
    if (proc.hasExited) failures.push(`the emitter exited (${await proc.exited})`);
    const code = await proc.stop();
    if (code !== 0) failures.push(`emitter exited ${code} on SIGTERM`);
    const errors = logMessages(proc.logs());
    if (errors.length > 0) notes.push(`logged errors: ${[...new Set(errors)].slice(0, 3).join('; ')}`);
    const t = tally(pub.published, sink.stored);
    if (t.duplicates > 0)
      notes.push(`duplicates: ${t.dupSameKey} same idempotency-key, ${t.dupDiffKey} in two batches`);
    return resultFrom('6 hostile input', t, started, notes, failures);
  } finally {
    proc.kill('SIGKILL');
    await pub?.close();
    await Promise.all([nats.stop(), sink.close()]);
    await spool.remove();
  }
}
