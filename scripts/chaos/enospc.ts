import { execFileSync } from 'node:child_process';
import { closeSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { atProcessEnd } from '../../harness/cleanup.js';
import { startNats } from '../../harness/nats.js';
import { sampleMessages } from '../../harness/workload.js';
import {
  chaosEnv,
  consumerState,
  drained,
  eventually,
  getJson,
  logMessages,
  Publisher,
  resultFrom,
  skippedResult,
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
 * Scenario 4: the spool's disk is full (ENOSPC). The spool lives on an 8 MB tmpfs; a filler file
 * takes every free byte, so the emitter's synced spool writes fail.
 * Phase 1 (one process): while full, intake must pause: /ready 503 with intake paused
 * (spool_write_failing), and nothing of what was published during the outage is acknowledged in
 * JetStream (ack pending / pending stay up for longer than the consumer's ack_wait). Then the
 * filler is deleted: intake resumes (/ready 200) and everything is delivered.
 * Phase 2: full again, wait past ack_wait, kill -9, free the disk, start again: what was
 * published during the outage must still be delivered (it may only have been acknowledged if it
 * was durable).
 * Phase 3 (a full disk that clears while running): the destination answers 503;
 * publish some, fill the disk, publish more, free the space; once JetStream shows everything
 * acknowledged, SIGTERM (exit 0), restart with the destination up: everything must arrive. A
 * spool that kept appending on the handle that failed would lose what came after the failure.
 * Needs root and `mount -t tmpfs`; skipped (with the reason) when the mount fails.
 */

export interface EnospcParams {
  warmup: number;
  duringOutage: number;
  /** phase 3: published before the disk fills, and while it is full (the issue: 500 and 2,000) */
  clearing: { before: number; during: number };
  ackWaitS: number;
  drainTimeoutMs: number;
}

const NAME = '4 spool disk full (ENOSPC)';

/** Mount a tmpfs of `size` at `dir`: undefined when mounted, else why not (not root, no mount). */
export function tryMount(dir: string, size = '8m'): string | undefined {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { stdio: 'pipe' });
    return undefined;
  } catch (error) {
    const e = error as { stderr?: Buffer; message: string };
    return (e.stderr?.toString().trim() || e.message).split('\n')[0];
  }
}

export function unmount(dir: string): void {
  try {
    execFileSync('umount', [dir], { stdio: 'pipe' });
  } catch {
    try {
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
    } catch {
      // not mounted
    }
  }
}

/** Write zeros until the file system refuses: ENOSPC for everyone else. */
export function fill(path: string): number {
  const fd = openSync(path, 'a');
  let written = 0;
  try {
    for (const size of [1 << 20, 64 << 10, 4 << 10, 512, 64, 1]) {
      const chunk = Buffer.alloc(size);
      for (;;) {
        try {
          written += writeSync(fd, chunk);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw error;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return written;
}

interface Ready {
  failing?: string[];
  reasons?: Array<string | undefined>;
}

async function ready(proc: EmitterProc): Promise<{ status: number; body: Ready } | undefined> {
  if (!proc.httpUrl) return undefined;
  const r = await getJson(`${proc.httpUrl}/ready`).catch(() => undefined);
  return r ? { status: r.status, body: (r.body ?? {}) as Ready } : undefined;
}

export async function enospcScenario(p: EnospcParams): Promise<ScenarioResult> {
  const started = Date.now();
  const mnt = await tempDir('enospc');
  const why = tryMount(mnt.path);
  if (why !== undefined) {
    await mnt.remove();
    return skippedResult(NAME, `mount -t tmpfs failed (${why})`, started);
  }
  atProcessEnd(() => unmount(mnt.path));
  const spoolDir = join(mnt.path, 'spool');
  const filler = join(mnt.path, 'filler');
  const [nats, sink] = await Promise.all([startNats(), startChaosSink()]);
  const nc = await connect({ servers: nats.url });
  const notes: string[] = [];
  const failures: string[] = [];
  const env = chaosEnv({
    natsUrl: nats.url,
    sinkUrl: sink.url,
    spoolDir,
    extra: { TRANSMITTER_NATS_ACK_WAIT_S: String(p.ackWaitS), TRANSMITTER_BATCH_SIZE: '500' },
  });
  let proc = startEmitter(env);
  let pub: Publisher | undefined;
  try {
    await proc.running;
    pub = await Publisher.connect([nats.url]);
    // warm-up: the emitter works on this disk
    // one workload, sliced: sampleMessages keys (ip, cert) depend on the index, not the prefix
    const phase3 = p.clearing.before + p.clearing.during;
    const all = toRaw(sampleMessages(p.warmup + 2 * p.duringOutage + phase3, 'enospc'));
    await pub.publish(all.slice(0, p.warmup));
    if (!(await drained(pub.published, sink, 20_000))) failures.push('warm-up not delivered');

    // ---- phase 1: full disk, the same process recovers
    const filled = fill(filler);
    const free = statfsSync(mnt.path);
    notes.push(`filler ${(filled / 1048576).toFixed(1)} MB, ${free.bavail * free.bsize} bytes left`);
    const outage1 = all.slice(p.warmup, p.warmup + p.duringOutage);
    await pub.publish(outage1);
    const paused = await eventually(async () => {
      const r = await ready(proc);
      return r?.status === 503 && (r.body.failing ?? []).includes('intake_running');
    }, 15_000);
    const r1 = await ready(proc);
    notes.push(`phase 1 /ready ${r1?.status} ${JSON.stringify(r1?.body.reasons ?? [])}`);
    if (!paused) failures.push('disk full: /ready did not answer 503 with intake paused');
    // nothing of outage1 may be acknowledged while it cannot be durable: watch past ack_wait
    let minUnacked = Infinity;
    const watchUntil = Date.now() + p.ackWaitS * 2500 + 1000;
    while (Date.now() < watchUntil) {
      const st = await consumerState(nc, 'APPROVED', 'chaos');
      if (st) minUnacked = Math.min(minUnacked, st.ackPending + st.pending);
      await sleep(200);
    }
    const st1 = await consumerState(nc, 'APPROVED', 'chaos');
    const deliveredEarly = tally(
      outage1.map((m) => m.key as string),
      sink.stored,
    ).deliveredUnique;
    notes.push(
      `phase 1 over ${(p.ackWaitS * 2.5 + 1).toFixed(1)} s (ack_wait ${p.ackWaitS} s): min unacked ${minUnacked}, ` +
        `now ack pending ${st1?.ackPending} pending ${st1?.pending} redelivered ${st1?.redelivered}; ${deliveredEarly} delivered while full`,
    );
    const mustStayUnacked = p.duringOutage - deliveredEarly;
    if (minUnacked < mustStayUnacked) {
      failures.push(
        `disk full: JetStream saw ${mustStayUnacked - minUnacked} messages acknowledged that were never durable ` +
          `(unacked fell to ${minUnacked} of ${mustStayUnacked} after redelivery)`,
      );
    }
    rmSync(filler);
    const resumed = await eventually(async () => (await ready(proc))?.status === 200, 20_000);
    if (!resumed)
      failures.push(
        `filler deleted: /ready still ${JSON.stringify((await ready(proc))?.body.reasons)} after 20 s`,
      );
    if (!(await drained(pub.published, sink, p.drainTimeoutMs)))
      failures.push(
        `phase 1: not everything delivered within ${p.drainTimeoutMs} ms after the disk was freed`,
      );
    const errors1 = logMessages(proc.logs());

    // ---- phase 2: full disk, crash, free, restart
    fill(filler);
    const outage2 = all.slice(p.warmup + p.duringOutage, p.warmup + 2 * p.duringOutage);
    await pub.publish(outage2);
    await waitUntil(
      async () => (await ready(proc))?.status === 503,
      15_000,
      'phase 2: /ready 503 with the disk full',
    ).catch((e: Error) => failures.push(e.message));
    await sleep(p.ackWaitS * 2000 + 500);
    const st2 = await consumerState(nc, 'APPROVED', 'chaos');
    proc.kill('SIGKILL');
    await proc.exited;
    notes.push(
      `phase 2: kill -9 after ${p.ackWaitS * 2 + 0.5} s full (ack pending ${st2?.ackPending}, pending ${st2?.pending}), freed, restarted`,
    );
    rmSync(filler);
    proc = startEmitter(env);
    await proc.running;
    if (!(await drained(pub.published, sink, p.drainTimeoutMs)))
      failures.push(`phase 2: not everything delivered within ${p.drainTimeoutMs} ms after the restart`);
    const errors2 = logMessages(proc.logs());

    // ---- phase 3: destination 503, the disk fills and clears under the running emitter, SIGTERM, restart
    const clearing = all.slice(p.warmup + 2 * p.duringOutage);
    sink.setPolicy(() => ({ kind: 'status', status: 503 }));
    await pub.publish(clearing.slice(0, p.clearing.before));
    const allAcked = async () => {
      const st = await consumerState(nc, 'APPROVED', 'chaos');
      return st !== undefined && st.pending === 0 && st.ackPending === 0;
    };
    await waitUntil(allAcked, 20_000, 'phase 3: the first events spooled').catch((e: Error) =>
      failures.push(e.message),
    );
    fill(filler);
    await pub.publish(clearing.slice(p.clearing.before));
    await waitUntil(
      () => proc.logs().includes('spool write failed'),
      15_000,
      'phase 3: a spool write to fail with the disk full',
    ).catch((e: Error) => failures.push(e.message));
    rmSync(filler);
    await waitUntil(allAcked, 30_000, 'phase 3: every event acknowledged after the disk was freed').catch(
      (e: Error) => failures.push(e.message),
    );
    const reopened = proc.logs().split('spool reopened and re-read').length - 1;
    const code3 = await proc.stop();
    if (code3 !== 0) failures.push(`phase 3: emitter exited ${code3} on SIGTERM`);
    sink.setPolicy(undefined);
    proc = startEmitter(env);
    await proc.running;
    const clearedKeys = new Set(clearing.map((m) => m.key as string));
    const ok3 = await drained(clearedKeys, sink, p.drainTimeoutMs);
    const arrived3 = tally(clearedKeys, sink.stored).deliveredUnique;
    notes.push(
      `phase 3 (503, ${p.clearing.before} + ${p.clearing.during} with the disk full, freed, SIGTERM ${code3}, restart): ` +
        `${arrived3}/${clearing.length} arrived, ${reopened} spool reopen(s)`,
    );
    if (!ok3) failures.push(`phase 3: ${clearing.length - arrived3} events missing after the restart`);
    await sleep(300);
    const code = await proc.stop();
    if (code !== 0) failures.push(`emitter exited ${code} on SIGTERM`);
    const errors = [...new Set([...errors1, ...errors2, ...logMessages(proc.logs())])];
    if (errors.length > 0) notes.push(`logged errors: ${errors.slice(0, 3).join('; ')}`);
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
    unmount(mnt.path);
    await mnt.remove();
  }
}
