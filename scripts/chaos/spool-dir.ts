import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { startNats } from '../../harness/nats.js';
import { sampleMessages } from '../../harness/workload.js';
import {
  chaosEnv,
  consumerState,
  drained,
  getJson,
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
 * Scenario 6: the spool directory deleted under the running emitter. Events flow at a
 * steady rate; mid-stream `rm -rf` takes the spool directory. The emitter must notice (before it
 * acknowledges anything more), stop acknowledging, fail /ready (spool_in_place) and log why; the
 * messages published after the deletion stay in JetStream. SIGTERM (exit 1: not everything it
 * took was made durable), restart (a fresh spool in the same place): everything must arrive.
 * Batches acknowledged before the deletion and not yet delivered would be gone with the directory;
 * the emitter goes on delivering those it can still read from its open handle.
 */

export interface SpoolDirParams {
  before: number;
  after: number;
  ratePerS: number;
  drainTimeoutMs: number;
}

const NAME = '6 spool directory deleted while running';

interface Ready {
  failing?: string[];
  reasons?: string[];
}

export async function spoolDirScenario(p: SpoolDirParams): Promise<ScenarioResult> {
  const started = Date.now();
  const [nats, sink, dir] = await Promise.all([startNats(), startChaosSink(), tempDir('spool-dir')]);
  const spoolDir = join(dir.path, 'spool');
  const nc = await connect({ servers: nats.url });
  const notes: string[] = [];
  const failures: string[] = [];
  const env = chaosEnv({ natsUrl: nats.url, sinkUrl: sink.url, spoolDir });
  let proc: EmitterProc = startEmitter(env);
  let pub: Publisher | undefined;
  try {
    const http = await proc.running;
    pub = await Publisher.connect([nats.url]);
    const all = toRaw(sampleMessages(p.before + p.after, 'spooldir'));
    // the deletion lands in the middle of a steady stream, not in a quiet moment
    const publishing = pub.publish(all, { ratePerS: p.ratePerS, window: 50 });
    await waitUntil(
      () => sink.stored.length > 0 && pub!.published.size >= p.before,
      60_000,
      'the first events',
    );
    await rm(spoolDir, { recursive: true, force: true });
    const deletedAt = pub.published.size;
    await publishing;
    const ready = async () =>
      (await getJson(`${http}/ready`).catch(() => undefined)) as { status: number; body: Ready } | undefined;
    await waitUntil(
      async () => (await ready())?.body.failing?.includes('spool_in_place') ?? false,
      15_000,
      '/ready to name spool_in_place',
    ).catch((e: Error) => failures.push(e.message));
    const r = await ready();
    notes.push(
      `deleted after ${deletedAt} published; /ready ${r?.status} ${JSON.stringify(r?.body.reasons ?? [])}`,
    );
    if (!proc.logs().includes('spool directory was deleted or replaced'))
      failures.push('no log line says the spool directory was deleted');
    await sleep(1000);
    const st = await consumerState(nc, 'APPROVED', 'chaos');
    const unacked = (st?.pending ?? 0) + (st?.ackPending ?? 0);
    const deliveredBefore = tally(pub.published, sink.stored).deliveredUnique;
    notes.push(
      `${unacked} unacknowledged in JetStream, ${deliveredBefore} delivered before the restart ` +
        '(a batch written as the directory went is still sent from the open handle, unacknowledged: ' +
        'its messages come back from JetStream in another batch)',
    );
    const code1 = await proc.stop();
    notes.push(`SIGTERM: exit ${code1}`);
    if (code1 === 0) failures.push('exit 0 after the spool directory was deleted (expected non-zero)');
    proc = startEmitter(env);
    await proc.running;
    if (!(await drained(pub.published, sink, p.drainTimeoutMs)))
      failures.push(`not everything delivered within ${p.drainTimeoutMs} ms after the restart`);
    const code2 = await proc.stop();
    if (code2 !== 0) failures.push(`restarted emitter exited ${code2} on SIGTERM`);
    const t = tally(pub.published, sink.stored);
    if (t.duplicates > 0)
      notes.push(`duplicates: ${t.dupSameKey} same idempotency-key, ${t.dupDiffKey} in two batches`);
    return resultFrom(NAME, t, started, notes, failures);
  } finally {
    proc.kill('SIGKILL');
    await proc.exited;
    await pub?.close();
    await nc.close().catch(() => undefined);
    await Promise.all([nats.stop(), sink.close()]);
    await dir.remove();
  }
}
