/** What every part of a bench run starts from: the build, temp dirs, nats-server, the sink, machine facts. */
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { serverVersion, startNats, type NatsServerHandle } from '../../harness/nats.js';
import { GZIP_LEVEL } from '../../src/spool/batch-codec.js';
import { buildEmitter } from './build.js';
import { fmt, natsServerVersion, OUT_DIR, progress, REPO, say, tempDir } from './context.js';
import { emitterCommand, useBuild } from './emitter.js';
import { EVENT_BYTES } from './payload.js';
import { loadAverage, machineInfo, type MachineInfo } from './proc.js';
import { ONLY, QUICK, S } from './settings.js';
import { Sink } from './sink-client.js';

export interface Setup {
  /** temp parent of the spools on disk, and of logs/ */
  root: string;
  /** temp parent of the spools on tmpfs */
  shmParent: string;
  logDir: string;
  loadStart: [number, number, number];
  machine: MachineInfo;
  natsVersion: string;
  /** the single nats-server (none for --only scale: it starts its own cluster) */
  nats?: NatsServerHandle;
  sink: Sink;
}

export const loads = (xs: number[]): string => xs.map((v) => v.toFixed(2)).join(' ');

function banner(s: Omit<Setup, 'sink'>): void {
  if (ONLY !== undefined)
    say(`batch-emitter bench${QUICK ? ' --quick' : ''} --only ${ONLY}; emitter: ${emitterCommand().what}`);
  else
    say(
      `batch-emitter bench${QUICK ? ' --quick' : ''}: ${fmt(S.events)} events of ~${EVENT_BYTES} B, batch ${S.batchSize}, gzip ${GZIP_LEVEL}, ` +
        `concurrency ${S.concurrency}, synced LevelDB spool, loopback sink; emitter: ${emitterCommand().what}`,
    );
  const m = s.machine;
  say(
    `machine: ${m.nproc} x ${m.model}, ${m.memGB} GB, Linux ${m.kernel}, Node ${m.node}, nats-server ${s.natsVersion}; ` +
      `load average at start ${loads(s.loadStart)}`,
  );
}

export async function setUp(): Promise<Setup> {
  mkdirSync(OUT_DIR, { recursive: true });
  useBuild(await buildEmitter(REPO, join(OUT_DIR, 'build')));
  const loadStart = loadAverage();
  const root = tempDir(tmpdir(), 'batch-emitter-bench-');
  const shmParent = tempDir('/dev/shm', 'batch-emitter-bench-');
  const logDir = join(root, 'logs');
  mkdirSync(logDir);
  const nats = ONLY === 'scale' ? undefined : await startNats({ readyTimeoutMs: 10_000 });
  const natsVersion = nats ? serverVersion(nats.logs()) : natsServerVersion();
  const machine = machineInfo(natsVersion, root);
  const partial = { root, shmParent, logDir, loadStart, machine, natsVersion, nats };
  banner(partial);
  return { ...partial, sink: await Sink.start() };
}

/** Stops the progress line, the publisher connection, the sink and nats-server; the load average at the end. */
export async function tearDown(b: Setup, nc?: NatsConnection): Promise<[number, number, number]> {
  progress.stop();
  await nc?.close();
  await b.sink.close();
  await b.nats?.stop();
  return loadAverage();
}
