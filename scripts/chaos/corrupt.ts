import { randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { connect } from '@nats-io/transport-node';
import { Level } from 'level';
import { startNats } from '../../harness/nats.js';
import type { SinkRequest } from '../../harness/sink.js';
import { runCli } from '../../harness/cli-process.js';
import { deliveredKeys, sampleMessages } from '../../harness/workload.js';
import {
  chaosEnv,
  consumerState,
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
  waitUntil,
  type EmitterProc,
  type ScenarioResult,
} from './common.js';

/**
 * Scenario 5: a corrupt spool. With the sink down, batches stay spooled; the emitter is stopped;
 * one batch's state record is overwritten with garbage and another batch's body with random
 * bytes (straight into the LevelDB: states are `!s!<id>`, bodies `!b!<id>`). Started again with
 * the sink up, the emitter must come up (no crash loop), set the corrupt records aside
 * (quarantine: reported by `batch-emitter spool verify` and /api/v1/stats) and deliver the rest.
 * The items of the two corrupted batches are counted as quarantined, not lost.
 */

export interface CorruptParams {
  messages: number;
  batchSize: number;
  drainTimeoutMs: number;
}

const NAME = '5 corrupt spool records';

function keysOfBody(body: Buffer): string[] {
  let raw = body;
  try {
    raw = gunzipSync(body);
  } catch {
    // identity encoding
  }
  return deliveredKeys([{ body: JSON.parse(raw.toString('utf8')) as unknown } as SinkRequest]);
}

/** Every value named `quarantined` (or `quarantine`) in a JSON document, with its path. */
function findQuarantine(value: unknown, path = ''): string[] {
  if (!value || typeof value !== 'object') return [];
  const out: string[] = [];
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const here = path ? `${path}.${k}` : k;
    if (/quarantin/i.test(k)) out.push(`${here}=${JSON.stringify(v)}`);
    out.push(...findQuarantine(v, here));
  }
  return out;
}

export async function corruptScenario(p: CorruptParams): Promise<ScenarioResult> {
  const started = Date.now();
  const [nats, sink, spool] = await Promise.all([startNats(), startChaosSink(), tempDir('corrupt')]);
  const notes: string[] = [];
  const failures: string[] = [];
  const env = chaosEnv({
    natsUrl: nats.url,
    sinkUrl: sink.url,
    spoolDir: spool.path,
    extra: { TRANSMITTER_BATCH_SIZE: String(p.batchSize), TRANSMITTER_SHUTDOWN_TIMEOUT_S: '2' },
  });
  const cliEnv = { TRANSMITTER_SPOOL_DIR: spool.path };
  let proc: EmitterProc | undefined;
  let pub: Publisher | undefined;
  const nc = await connect({ servers: nats.url });
  try {
    // ---- spool some batches with the sink down, then stop
    await sink.down();
    proc = startEmitter(env);
    await proc.running;
    pub = await Publisher.connect([nats.url]);
    await pub.publish(toRaw(sampleMessages(p.messages, 'corrupt')));
    await waitUntil(
      async () => {
        const st = await consumerState(nc, 'APPROVED', 'chaos');
        return st !== undefined && st.ackPending === 0 && st.pending === 0;
      },
      30_000,
      'every message acknowledged (spooled) with the sink down',
    );
    const code1 = await proc.stop();
    if (code1 !== 0) failures.push(`first emitter exited ${code1} on SIGTERM`);

    // ---- corrupt one state record and another batch's body
    const db = new Level<string, string>(spool.path, { valueEncoding: 'utf8' });
    await db.open();
    const ids = (await db.keys({ gt: '!s!', lt: '!s!\xff' }).all()).map((k) => k.slice(3));
    if (ids.length < 3) throw new Error(`expected at least 3 spooled batches, found ${ids.length}`);
    const badState = ids[1] as string;
    const badBody = ids[ids.length - 2] as string;
    const quarantined = new Set<string>();
    for (const id of [badState, badBody]) {
      const body = await db.get<string, Buffer>(`!b!${id}`, { valueEncoding: 'buffer' });
      if (body) for (const k of keysOfBody(body)) quarantined.add(k);
    }
    await db.put(`!s!${badState}`, '{"v":1,"id":"garbage", truncated');
    await db.put<string, Buffer>(`!b!${badBody}`, randomBytes(512), { valueEncoding: 'buffer' });
    await db.close();
    notes.push(
      `${ids.length} batches spooled; garbage state record in ${badState.slice(-6)}, garbage body in ${badBody.slice(-6)} ` +
        `(${quarantined.size} items)`,
    );
    const before = await runCli(cliEnv, ['spool', 'verify']);
    const listsBoth = before.stdout.includes(badState) && before.stdout.includes(badBody);
    notes.push(
      `verify before start: exit ${before.code}, ${listsBoth ? 'reports both' : 'does NOT report both'}`,
    );
    if (before.code !== 3 || !listsBoth)
      failures.push(
        `spool verify before start: exit ${before.code}, output ${before.stdout.trim().slice(0, 300)}`,
      );

    // ---- start again with the sink up: no crash loop, the rest delivered
    await sink.up();
    let starts = 0;
    const supervise = async (): Promise<EmitterProc> => {
      for (;;) {
        starts += 1;
        const p2 = startEmitter(env);
        const outcome = await Promise.race([
          p2.running.then(() => 'running'),
          p2.exited.then(() => 'exited'),
        ]);
        if (outcome === 'running' || starts >= 3) return p2;
        failures.push(`start ${starts} exited before running: ${p2.logs().slice(-400)}`);
      }
    };
    proc = await supervise();
    const http = proc.httpUrl;
    const ok = await drained(pub.published, sink, p.drainTimeoutMs, quarantined);
    if (!ok) failures.push(`not every uncorrupted item delivered within ${p.drainTimeoutMs} ms`);
    if (proc.hasExited) failures.push(`the emitter exited during the run (${await proc.exited})`);
    await sleep(500);
    const stats = http ? await getJson(`${http}/api/v1/stats`).catch(() => undefined) : undefined;
    const q = findQuarantine(stats?.body);
    const counted = (stats?.body as { batches?: { deadLettered?: number } } | undefined)?.batches
      ?.deadLettered;
    notes.push(`/api/v1/stats: ${q.length > 0 ? q.join(', ') : 'no quarantine figure'}`);
    if (q.length === 0) failures.push('/api/v1/stats does not report the quarantined records');
    const code2 = await proc.stop();
    if (code2 !== 0) failures.push(`emitter exited ${code2} on SIGTERM`);
    const errors = logMessages(proc.logs(), 40).filter((m) => !/delivery attempt failed|breaker/.test(m));
    if (errors.length > 0) notes.push(`warnings: ${[...new Set(errors)].slice(0, 3).join('; ')}`);

    const after = await runCli(cliEnv, ['spool', 'verify']);
    const reported = [badState, badBody].filter((id) => after.stdout.includes(id));
    notes.push(`verify after: exit ${after.code}, reports ${reported.length}/2 corrupt batches`);
    if (reported.length < 2)
      failures.push(
        `spool verify after the run reports ${reported.length}/2: ${after.stdout.trim().slice(0, 300)}`,
      );
    const dlq = await runCli(cliEnv, ['dlq', 'list', '--json']);
    let held = -1;
    try {
      held = (JSON.parse(dlq.stdout) as unknown[]).length;
    } catch {
      notes.push(`dlq list --json: exit ${dlq.code} ${dlq.stderr.trim().slice(0, 100)}`);
    }
    notes.push(`stats batches.deadLettered ${counted}, dlq list holds ${held}`);
    if (counted !== undefined && held >= 0 && counted !== held)
      failures.push(
        `/api/v1/stats counts ${counted} dead-lettered batches but the dead letters hold ${held}`,
      );
    for (const id of [badState, badBody]) {
      if (dlq.stdout.includes(id)) notes.push(`${id.slice(-6)} was dead-lettered (not quarantined)`);
    }
    if (sink.undecodable.length > 0) {
      failures.push(
        `${sink.undecodable.length} request(s) with a body that does not decode reached the receiver ` +
          `(idempotency-key ${String(sink.undecodable[0]?.headers['idempotency-key']).slice(-6)})`,
      );
    }
    notes.push(`${starts} start(s) after the corruption`);
    const t = tally(pub.published, sink.stored, quarantined);
    if (t.duplicates > 0)
      notes.push(`duplicates: ${t.dupSameKey} same idempotency-key, ${t.dupDiffKey} in two batches`);
    return resultFrom(NAME, t, started, notes, failures);
  } finally {
    proc?.kill('SIGKILL');
    await pub?.close();
    await nc.close().catch(() => undefined);
    await Promise.all([nats.stop(), sink.close()]);
    await spool.remove();
  }
}
