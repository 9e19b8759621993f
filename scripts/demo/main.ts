/**
 * The demo itself (started by scripts/demo.ts in its own node process): NATS, a fresh stream, the
 * loopback sink and an in-process Emitter; publishes sample traffic, waits for every item at the
 * sink, prints a summary and undoes everything it created. It writes only to its own stream.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { atProcessEnd } from '../../harness/cleanup.js';
import { loadConfig } from '../../src/config/index.js';
import { Emitter } from '../../src/emitter.js';
import { createLogger } from '../../src/util/logger.js';
import { Progress } from '../progress.js';
import { cleanUpOnSignals, cleanup, interrupted, onCleanup } from './cleanup.js';
import { demoNats, NoNatsError } from './nats.js';
import { SECTIONS, startDemoSink, type DemoSink, type Section } from './sink.js';
import { printSummary, problems } from './summary.js';
import { sampleTraffic, type Sample } from './traffic.js';

const EVENTS = 20_000;
const PUBLISH_WINDOW = 500;
const DELIVERY_TIMEOUT_MS = 60_000;
const SINK_FAILURES = 2;

const fmt = (n: number) => n.toLocaleString('en-US');
// A closed pipe (`npm run demo | head`) must not crash the demo before it has cleaned up.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
const say = (line = '') => process.stdout.write(`${line}\n`);
const progress = new Progress({ intervalMs: 100, indent: '  ' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Place {
  natsUrl: string;
  /** the demo started this nats-server */
  own: boolean;
  prefix: string;
  stream: string;
  durable: string;
  spoolDir: string;
  stamp: string;
}

/** NATS, and a stream of the demo's own; on a shared server, a private subject prefix as well. */
async function placeFor(root: string): Promise<Place> {
  const stamp = `${new Date().toISOString().replace(/\D/g, '').slice(0, 14)}_${randomBytes(2).toString('hex')}`;
  const nats = await demoNats(process.env.TRANSMITTER_NATS_URL || 'nats://127.0.0.1:4222', say);
  // On a shared server an APPROVED stream may already own approved.>; routing uses the second
  // token, so demo-<stamp>.domain goes to nodes_domain just like approved.domain.
  const prefix = nats.own ? 'approved' : `demo-${stamp.replace('_', '-')}`;
  const stream = nats.own ? `APPROVED_DEMO_${stamp}` : `DEMO_${stamp}`;
  const durable = `demo_${stamp}`;
  say(
    `  stream   ${stream} (subjects ${prefix}.>, durable consumer ${durable})${nats.own ? '' : ', deleted at the end'}`,
  );
  return { natsUrl: nats.url, own: nats.own, prefix, stream, durable, spoolDir: join(root, 'spool'), stamp };
}

async function publisher(place: Place): Promise<NatsConnection> {
  const nc = await connect({
    servers: place.natsUrl,
    noAsyncTraces: true,
    name: 'batch-emitter-demo-publisher',
  });
  onCleanup('close publisher connection', () => nc.close());
  if (!place.own)
    onCleanup(`delete stream ${place.stream}`, async () => {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.delete(place.stream).catch((error: unknown) => {
        if (!/not found/i.test((error as Error).message)) throw error;
      });
    });
  return nc;
}

async function demoSink(): Promise<DemoSink> {
  const sink = await startDemoSink({ failFirst: SINK_FAILURES });
  onCleanup('close sink', () => sink.close());
  say(`  sink     ${sink.url} (loopback, node:http; answers 503 to its first ${SINK_FAILURES} requests)`);
  say('           TRANSMITTER_ALLOW_INSECURE_HTTP=true only because this demo posts to itself over');
  say('           loopback; a real destination is https://');
  return sink;
}

/** A warn-level logger that prints each line as `[emitter] msg {fields}` and counts them. */
function emitterLogger(warnings: string[]) {
  return createLogger('warn', {
    write(line: string) {
      let text = line.trim();
      try {
        const rec = JSON.parse(text) as { msg?: string; level?: number } & Record<string, unknown>;
        const { msg, level: _level, time: _time, name: _name, pid: _pid, hostname: _host, ...rest } = rec;
        text = `${msg ?? ''} ${JSON.stringify(rest)}`;
      } catch {
        // not JSON: print as is
      }
      warnings.push(text);
      progress.clear();
      process.stderr.write(`  [emitter] ${text}\n`);
    },
  });
}

async function startEmitter(place: Place, sinkUrl: string, warnings: string[]): Promise<Emitter> {
  const config = loadConfig({
    TRANSMITTER_DESTINATION_URL: sinkUrl,
    TRANSMITTER_ALLOW_INSECURE_HTTP: 'true',
    TRANSMITTER_SPOOL_DIR: place.spoolDir,
    TRANSMITTER_BATCH_SIZE: '500',
    TRANSMITTER_BATCH_INTERVAL_S: '0.5',
    TRANSMITTER_RETRY_INITIAL_DELAY_S: '0.2',
    TRANSMITTER_LOG_LEVEL: 'warn',
    TRANSMITTER_NATS_URL: place.natsUrl,
    TRANSMITTER_NATS_STREAM: place.stream,
    TRANSMITTER_NATS_SUBJECTS: `${place.prefix}.>`,
    TRANSMITTER_NATS_DURABLE: place.durable,
    TRANSMITTER_NATS_ACK_WAIT_S: '10',
    TRANSMITTER_SHUTDOWN_TIMEOUT_S: '5',
    TRANSMITTER_PROBE_ID: 'demo-probe',
    TRANSMITTER_RUN_ID: `demo-${place.stamp}`,
  });
  const emitter = new Emitter(config, { logger: emitterLogger(warnings) });
  onCleanup('close emitter', () => emitter.close());
  await emitter.start();
  say(`  emitter  batches of 500 items or 0.5 s, gzip, retry from 0.2 s (x2), log level warn`);
  say(`           spool ${place.spoolDir}`);
  say();
  return emitter;
}

function expectedItems(samples: Sample[]): Record<Section, Set<string>> {
  const expected = Object.fromEntries(SECTIONS.map((s) => [s, new Set<string>()])) as Record<
    Section,
    Set<string>
  >;
  for (const s of samples) expected[s.section].add(s.key);
  return expected;
}

/** Publishes with PUBLISH_WINDOW publishes in flight; `onPublished` counts them. */
async function publishAll(nc: NatsConnection, samples: Sample[], onPublished: () => void): Promise<void> {
  const js = jetstream(nc);
  for (let i = 0; i < samples.length && !interrupted(); i += PUBLISH_WINDOW)
    await Promise.all(
      samples.slice(i, i + PUBLISH_WINDOW).map(async (s) => {
        await js.publish(s.subject, s.payload);
        onPublished();
      }),
    );
}

async function waitForEveryItem(sink: DemoSink, expected: Record<Section, Set<string>>): Promise<void> {
  const deadline = Date.now() + DELIVERY_TIMEOUT_MS;
  const complete = () => SECTIONS.every((s) => sink.distinct[s].size >= expected[s].size);
  while (!complete() && Date.now() < deadline && !interrupted() && sink.stats.badBodies === 0)
    await sleep(20);
}

async function main(): Promise<number> {
  say('batch-emitter demo: NATS JetStream -> batch + spool + ack -> gzip POST with retry -> HTTP sink');
  say();
  const root = mkdtempSync(join(tmpdir(), 'batch-emitter-demo-'));
  onCleanup('remove temp dir', () => rmSync(root, { recursive: true, force: true }));
  atProcessEnd(() => rmSync(root, { recursive: true, force: true }));
  const place = await placeFor(root);
  const nc = await publisher(place);
  const sink = await demoSink();
  const warnings: string[] = [];
  const emitter = await startEmitter(place, sink.url, warnings);
  let sealed = 0;
  emitter.events.on('sealed', () => (sealed += 1));

  const samples = sampleTraffic(EVENTS, place.prefix);
  const expected = expectedItems(samples);
  const expectedTotal = SECTIONS.reduce((n, s) => n + expected[s].size, 0);
  const duplicates = samples.filter((s) => s.duplicate).length;
  say(
    `publishing ${fmt(samples.length)} events: ${fmt(expectedTotal)} distinct items + ${fmt(duplicates)} duplicates ` +
      `(${PUBLISH_WINDOW} publishes in flight)`,
  );
  let published = 0;
  progress.follow(() => [
    { label: 'published', done: published, total: samples.length },
    { label: 'delivered', done: sink.distinctTotal(), total: expectedTotal },
  ]);
  const t0 = performance.now();
  await publishAll(nc, samples, () => (published += 1));
  const publishS = (performance.now() - t0) / 1000;
  await waitForEveryItem(sink, expected);
  const elapsedS = (performance.now() - t0) / 1000;
  progress.stop(true);
  if (interrupted()) return 130;

  await emitter.flush();
  await emitter.wait();
  const deadLetters = (await emitter.deadLetters()).length;
  const stats = emitter.stats;
  await emitter.close();
  const consumer = await (await jetstreamManager(nc)).consumers.info(place.stream, place.durable);
  const outcome = {
    samples,
    expected,
    prefix: place.prefix,
    durable: place.durable,
    spoolDir: place.spoolDir,
    publishS,
    elapsedS,
    sealed,
    deadLetters,
    rejected: stats.rejected,
    spool: stats.spool,
    consumer,
    warnings: warnings.length,
    sink,
    sinkFailures: SINK_FAILURES,
    deliveryTimeoutS: DELIVERY_TIMEOUT_MS / 1000,
  };
  printSummary(outcome);
  const found = problems(outcome);
  for (const p of found) process.stderr.write(`demo FAILED: ${p}\n`);
  if (found.length === 0) say('demo OK: cleaning up (stream, nats-server if started, sink, temp dirs)');
  return found.length === 0 ? 0 : 1;
}

cleanUpOnSignals(() => progress.stop());
main().then(
  async (code) => {
    if (interrupted()) return; // the signal handler cleans up and exits
    await cleanup();
    process.exit(code);
  },
  async (error: unknown) => {
    if (interrupted()) return;
    progress.stop();
    const message =
      error instanceof NoNatsError
        ? error.message
        : `demo FAILED: ${(error as Error).message ?? String(error)}`;
    process.stderr.write(`${message}\n`);
    await cleanup();
    process.exit(1);
  },
);
