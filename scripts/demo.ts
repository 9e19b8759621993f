/**
 * `npm run demo`: the main job end to end on this machine.
 *
 *   publisher --JetStream--> Emitter (batch, spool, ack, gzip POST, retry) --> loopback HTTP sink
 *
 * Uses the NATS server at TRANSMITTER_NATS_URL (default nats://127.0.0.1:4222) when one answers,
 * otherwise starts its own `nats-server -c nats.conf` on a free port with a temp store. Everything
 * the demo creates (stream, temp dirs, its nats-server, the sink) is removed at the end, also on
 * Ctrl-C (exit 130).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { constants as osConstants, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NatsConnection } from '@nats-io/transport-node';
import { SECTIONS, startDemoSink, type DemoSink, type Section } from './demo-sink.js';

/** The heavy modules, loaded only in the process that runs the demo (see the end of the file). */
async function loadLibraries() {
  const [transport, js, config, emitter, logger] = await Promise.all([
    import('@nats-io/transport-node'),
    import('@nats-io/jetstream'),
    import('../src/config/index.js'),
    import('../src/emitter.js'),
    import('../src/util/logger.js'),
  ]);
  return {
    connect: transport.connect,
    jetstream: js.jetstream,
    jetstreamManager: js.jetstreamManager,
    loadConfig: config.loadConfig,
    Emitter: emitter.Emitter,
    createLogger: logger.createLogger,
  };
}
type Libraries = Awaited<ReturnType<typeof loadLibraries>>;

const EVENTS = 20_000;
const PUBLISH_WINDOW = 500;
const DELIVERY_TIMEOUT_MS = 60_000;
const SINK_FAILURES = 2;
const REPO = fileURLToPath(new URL('..', import.meta.url));

// ---------------------------------------------------------------------------------------------
// output

const fmt = (n: number) => n.toLocaleString('en-US');
// A closed pipe (`npm run demo | head`) must not crash the demo before it has cleaned up.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
const say = (line = '') => process.stdout.write(`${line}\n`);
const interactive =
  Boolean(process.stdout.isTTY && process.stderr.isTTY) && (!process.env.CI || process.env.CI === 'false');

/** One status line on stderr: redrawn with \r on a terminal, a line per 25 % otherwise. */
class Progress {
  private timer?: NodeJS.Timeout;
  private drawn = false;
  private readonly printed = new Map<string, number>();

  constructor(private readonly read: () => { label: string; done: number; total: number }[]) {}

  start(): void {
    this.timer = setInterval(() => this.draw(), 100);
  }

  private static bar(done: number, total: number, width = 20): string {
    const filled = total === 0 ? width : Math.min(width, Math.floor((done / total) * width));
    return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
  }

  draw(): void {
    const parts = this.read();
    if (!interactive) {
      for (const p of parts) {
        const quarter = Math.floor((p.done / Math.max(1, p.total)) * 4);
        if (quarter > (this.printed.get(p.label) ?? 0)) {
          this.printed.set(p.label, quarter);
          process.stderr.write(`  ${p.label} ${quarter * 25}% (${fmt(p.done)}/${fmt(p.total)})\n`);
        }
      }
      return;
    }
    const line = parts
      .map((p) => {
        const pct = Math.floor((p.done / Math.max(1, p.total)) * 100);
        return `${p.label} ${Progress.bar(p.done, p.total)} ${String(pct).padStart(3)}%`;
      })
      .join('  ');
    process.stderr.write(`\r  ${line}\x1b[K`);
    this.drawn = true;
  }

  /** Clear the status line so another line can be printed; the next draw puts it back. */
  clear(): void {
    if (this.drawn) process.stderr.write('\r\x1b[K');
    this.drawn = false;
  }

  stop(): void {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.draw();
    if (this.drawn) process.stderr.write('\n');
    this.drawn = false;
  }
}

// ---------------------------------------------------------------------------------------------
// cleanup and signals

const cleanups: { what: string; run: () => unknown }[] = [];
const onCleanup = (what: string, run: () => unknown) => cleanups.push({ what, run });
let cleaning: Promise<void> | undefined;
let interrupted = false;
let progress: Progress | undefined;

/** Undo everything in reverse order of creation; bounded, never throws. */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    const deadline = new Promise<void>((r) => setTimeout(r, 15_000).unref());
    const all = (async () => {
      for (const step of cleanups.reverse()) {
        try {
          await step.run();
        } catch (error) {
          process.stderr.write(`  cleanup: ${step.what} failed: ${(error as Error).message}\n`);
        }
      }
    })();
    await Promise.race([all, deadline]);
  })();
  return cleaning;
}

/** Last resort on a forced exit: kill our nats-server and remove the temp dir synchronously. */
const atExit: (() => void)[] = [];
process.once('exit', () => {
  for (const f of atExit) {
    try {
      f();
    } catch {
      // best effort
    }
  }
});

let interruptedAt = 0;

function onSignal(signal: 'SIGINT' | 'SIGTERM'): void {
  const code = 128 + osConstants.signals[signal];
  if (interrupted) {
    // A Ctrl-C reaches us twice (from the terminal and relayed by the parent): only a second
    // press, later, forces the exit (the exit hook still kills nats-server and removes the temp dir).
    if (Date.now() - interruptedAt > 1000) process.exit(code);
    return;
  }
  interrupted = true;
  interruptedAt = Date.now();
  progress?.stop();
  process.stderr.write(`\n${signal}: cleaning up (press Ctrl-C again to force)\n`);
  void cleanup().finally(() => process.exit(code));
}

// ---------------------------------------------------------------------------------------------
// NATS: find one, or start our own

function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url.includes('://') ? url : `nats://${url}`);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 4222) };
}

function tcpAnswers(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    s.setTimeout(timeoutMs, () => done(false));
  });
}

/** The first URL of the list where a NATS server answers (TCP, then a NATS connect; 1 s each). */
async function probeNats(
  { connect, jetstreamManager }: Libraries,
  urls: string[],
): Promise<{ url: string; jetstream: boolean } | undefined> {
  for (const url of urls) {
    let target: { host: string; port: number };
    try {
      target = hostPort(url);
    } catch {
      continue;
    }
    if (!(await tcpAnswers(target.host, target.port, 1000))) continue;
    let nc: NatsConnection;
    try {
      nc = await connect({ servers: url, timeout: 1000, reconnect: false, name: 'batch-emitter-demo-probe' });
    } catch {
      continue;
    }
    try {
      await jetstreamManager(nc, { timeout: 1000 });
      return { url, jetstream: true };
    } catch {
      return { url, jetstream: false };
    } finally {
      await nc.close().catch(() => undefined);
    }
  }
  return undefined;
}

/** nats-server from PATH; Debian installs it in /usr/sbin, which a normal user's PATH lacks. */
function findNatsServer(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const dir of dirs.filter(Boolean)) {
    const candidate = join(dir, 'nats-server');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

interface OwnNats {
  url: string;
  version: string;
  storeDir: string;
  stop(): Promise<void>;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.once('exit', () => r()));
}

/**
 * `nats-server -c <copy of nats.conf> -p <free port>`. The copy points store_dir at a temp dir:
 * nats-server 2.9 refuses `-sd` together with a config file that sets store_dir.
 */
async function startOwnNats(bin: string, root: string): Promise<OwnNats> {
  const storeDir = join(root, 'nats-store');
  mkdirSync(storeDir);
  const base = readFileSync(join(REPO, 'nats.conf'), 'utf8');
  const storeDirRe = /^(\s*store_dir\s*[:=]?\s*).*$/m;
  const needsSd = !storeDirRe.test(base);
  const configPath = join(root, 'nats.conf');
  writeFileSync(
    configPath,
    base.replace(storeDirRe, (_m, p: string) => `${p}${JSON.stringify(storeDir)}`),
  );

  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const args = ['-c', configPath, '-p', String(port), ...(needsSd ? ['-sd', storeDir] : [])];
    // detached: a Ctrl-C in the terminal must not stop the server before the emitter has closed
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    atExit.push(() => child.kill('SIGKILL'));
    let log = '';
    child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    let spawnError: Error | undefined;
    child.once('error', (e) => (spawnError = e));

    const deadline = Date.now() + 10_000;
    let ready = false;
    while (Date.now() < deadline) {
      if (spawnError) throw new Error(`cannot run ${bin}: ${spawnError.message}`);
      if (child.exitCode !== null || child.signalCode !== null) break;
      if (log.includes('Server is ready') && (await tcpAnswers('127.0.0.1', port, 500))) {
        ready = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    if (ready) {
      const stop = async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const gone = exited(child);
        child.kill('SIGTERM');
        const force = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await gone;
        clearTimeout(force);
      };
      return {
        url: `nats://127.0.0.1:${port}`,
        version: /Version:\s+(\S+)/.exec(log)?.[1] ?? 'unknown version',
        storeDir,
        stop,
      };
    }
    child.kill('SIGKILL');
    await exited(child);
    if (/address already in use/i.test(log) && attempt < 5) continue;
    throw new Error(`nats-server did not start:\n${log.trim().split('\n').slice(-10).join('\n')}`);
  }
}

// ---------------------------------------------------------------------------------------------
// sample traffic

interface Sample {
  subject: string;
  payload: Uint8Array;
  section: Section;
  key: string;
  duplicate: boolean;
}

const T0 = Date.UTC(2026, 0, 1);
const iso = (s: number) => new Date(T0 + s * 1000).toISOString();

/**
 * `count` messages in groups of ten: per group one domain, ip and cert node, three distinct edges,
 * two generic `finding` events, and two duplicates (the same edge seen again earlier, the same
 * domain seen over a wider window) that the batch dedup merges into the originals.
 */
function sampleTraffic(count: number, prefix: string): Sample[] {
  const enc = new TextEncoder();
  const out: Sample[] = [];
  const push = (kind: string, section: Section, key: string, data: unknown, duplicate = false) =>
    out.push({
      subject: `${prefix}.${kind}`,
      payload: enc.encode(JSON.stringify(data)),
      section,
      key,
      duplicate,
    });
  for (let g = 0; out.length < count; g++) {
    const host = `host-${g}.demo.example`;
    const ip = `10.${(g >> 16) & 255}.${(g >> 8) & 255}.${g & 255}`;
    const spki = createHash('sha256').update(`demo-cert-${g}`).digest('hex');
    const t = g * 60;
    const edge = (type: string, source: string, target: string, at: number) => ({
      type,
      source,
      target,
      observed_at: iso(at),
      probe_id: 'demo-probe',
      run_id: 'demo-run',
    });
    const group: (() => void)[] = [
      () =>
        push('domain', 'nodes_domain', host, {
          host,
          apex: 'demo.example',
          first_seen: iso(t),
          last_seen: iso(t + 60),
        }),
      () => push('ip', 'nodes_ip', ip, { ip, first_seen: iso(t), last_seen: iso(t + 60) }),
      () =>
        push('cert', 'nodes_cert', spki, {
          spki_sha256: spki,
          subject_cn: host,
          issuer_cn: 'Demo CA',
          not_before: iso(0),
          not_after: iso(365 * 86400),
        }),
      () => push('edge', 'edges', `RESOLVES_TO|${host}|${ip}`, edge('RESOLVES_TO', host, ip, t + 10)),
      () => push('edge', 'edges', `RESOLVES_TO|${host}|${ip}`, edge('RESOLVES_TO', host, ip, t + 5), true),
      () =>
        push(
          'domain',
          'nodes_domain',
          host,
          { host, apex: 'demo.example', first_seen: iso(t - 30), last_seen: iso(t + 120) },
          true,
        ),
      () => push('edge', 'edges', `USES_CERT|${host}|${spki}`, edge('USES_CERT', host, spki, t + 20)),
      () =>
        push('edge', 'edges', `ALIAS_OF|www.${host}|${host}`, edge('ALIAS_OF', `www.${host}`, host, t + 30)),
      () =>
        push('finding', 'events', `f-${g}-tls`, {
          id: `f-${g}-tls`,
          host,
          check: 'tls-expiry',
          severity: ['low', 'medium', 'high'][g % 3],
        }),
      () =>
        push('finding', 'events', `f-${g}-dns`, {
          id: `f-${g}-dns`,
          host,
          check: 'dns-dangling',
          severity: 'low',
        }),
    ];
    for (const make of group) if (out.length < count) make();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// the demo

async function main(): Promise<number> {
  say('batch-emitter demo: NATS JetStream -> batch + spool + ack -> gzip POST with retry -> HTTP sink');
  say();
  const libs = await loadLibraries();
  const { connect, jetstream, jetstreamManager, loadConfig, Emitter, createLogger } = libs;
  const stamp = `${new Date().toISOString().replace(/\D/g, '').slice(0, 14)}_${randomBytes(2).toString('hex')}`;
  const root = mkdtempSync(join(tmpdir(), 'batch-emitter-demo-'));
  onCleanup('remove temp dir', () => rmSync(root, { recursive: true, force: true }));
  atExit.push(() => rmSync(root, { recursive: true, force: true }));
  const spoolDir = join(root, 'spool');

  // 1. NATS
  const requested = process.env.TRANSMITTER_NATS_URL || 'nats://127.0.0.1:4222';
  const urls = requested
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const found = await probeNats(libs, urls);
  let natsUrl: string;
  let ownServer = false;
  if (found?.jetstream) {
    natsUrl = found.url;
    say(`  NATS     ${natsUrl} answers: using it`);
  } else {
    if (found) say(`  NATS     ${found.url} answers but has no JetStream: starting a private nats-server`);
    const bin = findNatsServer();
    if (!bin) {
      process.stderr.write(
        `No NATS JetStream server answers at ${requested} and nats-server is not installed: install it with ` +
          '`sudo apt-get install nats-server` (or point TRANSMITTER_NATS_URL at a JetStream server) and run `npm run demo` again.\n',
      );
      return 1;
    }
    const own = await startOwnNats(bin, root);
    onCleanup('stop nats-server', () => own.stop());
    natsUrl = own.url;
    ownServer = true;
    say(`  NATS     nothing answers at ${requested}: started ${bin} ${own.version} on ${natsUrl}`);
    say(`           (config: a copy of nats.conf; store ${own.storeDir}; stopped at the end)`);
  }

  // 2. a fresh stream. On our own server it can own approved.>; on a shared one an APPROVED
  // stream may already own approved.>, so use a private subject prefix (routing uses the second
  // token: demo-<stamp>.domain goes to nodes_domain just like approved.domain).
  const prefix = ownServer ? 'approved' : `demo-${stamp.replace('_', '-')}`;
  const stream = ownServer ? `APPROVED_DEMO_${stamp}` : `DEMO_${stamp}`;
  const durable = `demo_${stamp}`;
  say(
    `  stream   ${stream} (subjects ${prefix}.>, durable consumer ${durable})` +
      (ownServer ? '' : ', deleted at the end'),
  );

  const nc = await connect({ servers: natsUrl, noAsyncTraces: true, name: 'batch-emitter-demo-publisher' });
  onCleanup('close publisher connection', () => nc.close());
  if (!ownServer) {
    onCleanup(`delete stream ${stream}`, async () => {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.delete(stream).catch((error: unknown) => {
        if (!/not found/i.test((error as Error).message)) throw error;
      });
    });
  }

  // 3. the sink
  const sink: DemoSink = await startDemoSink({ failFirst: SINK_FAILURES });
  onCleanup('close sink', () => sink.close());
  say(`  sink     ${sink.url} (loopback, node:http; answers 503 to its first ${SINK_FAILURES} requests)`);
  say('           TRANSMITTER_ALLOW_INSECURE_HTTP=true only because this demo posts to itself over');
  say('           loopback; a real destination is https://');

  // 4. the emitter, in-process
  const warnings: string[] = [];
  const logger = createLogger('warn', {
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
      progress?.clear();
      process.stderr.write(`  [emitter] ${text}\n`);
    },
  });
  const config = loadConfig({
    TRANSMITTER_DESTINATION_URL: sink.url,
    TRANSMITTER_ALLOW_INSECURE_HTTP: 'true',
    TRANSMITTER_SPOOL_DIR: spoolDir,
    TRANSMITTER_BATCH_SIZE: '500',
    TRANSMITTER_BATCH_INTERVAL_S: '0.5',
    TRANSMITTER_RETRY_INITIAL_DELAY_S: '0.2',
    TRANSMITTER_LOG_LEVEL: 'warn',
    TRANSMITTER_NATS_URL: natsUrl,
    TRANSMITTER_NATS_STREAM: stream,
    TRANSMITTER_NATS_SUBJECTS: `${prefix}.>`,
    TRANSMITTER_NATS_DURABLE: durable,
    TRANSMITTER_NATS_ACK_WAIT_S: '10',
    TRANSMITTER_SHUTDOWN_TIMEOUT_S: '5',
    TRANSMITTER_PROBE_ID: 'demo-probe',
    TRANSMITTER_RUN_ID: `demo-${stamp}`,
  });
  const emitter = new Emitter(config, { logger });
  onCleanup('close emitter', () => emitter.close());
  let sealed = 0;
  emitter.events.on('sealed', () => (sealed += 1));
  await emitter.start();
  say(`  emitter  batches of 500 items or 0.5 s, gzip, retry from 0.2 s (x2), log level warn`);
  say(`           spool ${spoolDir}`);
  say();

  // 5. publish
  const samples = sampleTraffic(EVENTS, prefix);
  const expected = Object.fromEntries(SECTIONS.map((s) => [s, new Set<string>()])) as Record<
    Section,
    Set<string>
  >;
  for (const s of samples) expected[s.section].add(s.key);
  const expectedTotal = SECTIONS.reduce((n, s) => n + expected[s].size, 0);
  const duplicates = samples.filter((s) => s.duplicate).length;
  say(
    `publishing ${fmt(samples.length)} events: ${fmt(expectedTotal)} distinct items + ${fmt(duplicates)} duplicates ` +
      `(${PUBLISH_WINDOW} publishes in flight)`,
  );

  let published = 0;
  progress = new Progress(() => [
    { label: 'published', done: published, total: samples.length },
    { label: 'delivered', done: sink.distinctTotal(), total: expectedTotal },
  ]);
  progress.start();
  const js = jetstream(nc);
  const t0 = performance.now();
  for (let i = 0; i < samples.length && !interrupted; i += PUBLISH_WINDOW) {
    await Promise.all(
      samples.slice(i, i + PUBLISH_WINDOW).map(async (s) => {
        await js.publish(s.subject, s.payload);
        published += 1;
      }),
    );
  }
  const publishS = (performance.now() - t0) / 1000;

  // 6. wait for every distinct item at the sink
  const deadline = Date.now() + DELIVERY_TIMEOUT_MS;
  const complete = () => SECTIONS.every((s) => sink.distinct[s].size >= expected[s].size);
  while (!complete() && Date.now() < deadline && !interrupted && sink.stats.badBodies === 0) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const elapsedS = (performance.now() - t0) / 1000;
  progress.stop();
  if (interrupted) return 130;

  await emitter.flush();
  await emitter.wait();
  const deadLetters = (await emitter.deadLetters()).length;
  const stats = emitter.stats;
  await emitter.close();
  const consumer = await (await jetstreamManager(nc)).consumers.info(stream, durable);

  // 7. summary
  const missing = SECTIONS.map((s) => ({
    section: s,
    n: [...expected[s]].filter((k) => !sink.distinct[s].has(k)).length,
  })).filter((m) => m.n > 0);
  const unexpected = SECTIONS.reduce(
    (n, s) => n + [...sink.distinct[s]].filter((k) => !expected[s].has(k)).length,
    0,
  );
  const delivered = sink.distinctTotal();
  const rows = SECTIONS.reduce((n, s) => n + sink.rows[s], 0);
  const nonEventRows = rows - sink.rows.events;
  const nonEventPublished = samples.filter((s) => s.section !== 'events').length;
  const crossed = rows - delivered; // duplicates that landed in a different batch than their original
  const merged = nonEventPublished - nonEventRows;

  say();
  say(missing.length === 0 ? 'result: every item arrived' : 'result: ITEMS MISSING');
  say();
  const row = (k: string, v: string) => say(`  ${k.padEnd(19)} ${v}`);
  row(
    'events published',
    `${fmt(samples.length)} in ${publishS.toFixed(1)} s (${fmt(Math.round(samples.length / publishS))}/s) ` +
      `on ${prefix}.{domain,ip,cert,edge,finding}`,
  );
  row('distinct delivered', `${fmt(delivered)} of ${fmt(expectedTotal)} expected`);
  for (const s of SECTIONS) row(`  ${s}`, fmt(sink.distinct[s].size).padStart(6));
  row(
    'dedup',
    `${fmt(duplicates)} duplicates published; ${fmt(merged)} merged into their original inside a batch` +
      (crossed > 0 ? `, ${fmt(crossed)} fell into the next batch and arrived twice (same key)` : ''),
  );
  row(
    'batches received',
    `${fmt(sink.stats.accepted)} accepted (200) in ${fmt(sink.stats.requests)} HTTP requests; ` +
      `${fmt(sealed)} batches sealed`,
  );
  row(
    'retried requests',
    `${fmt(sink.stats.injected503)} answered 503 by the sink on purpose (${fmt(sink.stats.refusedBatches)} batches); ` +
      `${fmt(sink.stats.retriedAccepted)} of them retried and accepted under the same idempotency-key`,
  );
  if (sink.stats.duplicateBatches > 0)
    row('repeated batches', `${fmt(sink.stats.duplicateBatches)} (dropped by idempotency-key)`);
  row(
    'elapsed',
    `${elapsedS.toFixed(1)} s from first publish to last item delivered: ` +
      `${fmt(Math.round(samples.length / elapsedS))} events/s end to end`,
  );
  row(
    'dead letters',
    `${fmt(deadLetters)}${stats.rejected > 0 ? ` (${fmt(stats.rejected)} messages rejected)` : ''}`,
  );
  row(
    'JetStream',
    `consumer ${durable}: ${fmt(consumer.num_pending)} pending, ${fmt(consumer.num_ack_pending)} awaiting ack`,
  );
  row(
    'spool',
    `${spoolDir}: ${stats.spool.batches === 0 ? 'empty' : `${fmt(stats.spool.batches)} batches LEFT`} ` +
      `(${fmt(stats.spool.batches)} batches, ${fmt(stats.spool.bytes)} bytes); removed with the temp dir`,
  );
  if (warnings.length > 0) row('emitter warnings', `${fmt(warnings.length)} (printed above as [emitter])`);
  say();

  const problems: string[] = [];
  if (missing.length > 0)
    problems.push(
      `${fmt(expectedTotal - delivered)} items did not arrive within ${DELIVERY_TIMEOUT_MS / 1000} s (` +
        missing.map((m) => `${m.section} ${fmt(m.n)}`).join(', ') +
        ')',
    );
  if (unexpected > 0) problems.push(`${fmt(unexpected)} items arrived that were never published`);
  if (sink.stats.badBodies > 0) problems.push(`the sink could not read a body: ${sink.stats.lastBadBody}`);
  if (deadLetters > 0) problems.push(`${fmt(deadLetters)} dead letters`);
  if (stats.spool.batches > 0) problems.push(`${fmt(stats.spool.batches)} batches still in the spool`);
  if (consumer.num_pending > 0 || consumer.num_ack_pending > 0)
    problems.push('JetStream messages left unacknowledged');
  if (sink.stats.injected503 < SINK_FAILURES || sink.stats.retriedAccepted < sink.stats.refusedBatches)
    problems.push('a batch answered 503 was not retried and accepted');
  for (const p of problems) process.stderr.write(`demo FAILED: ${p}\n`);
  if (problems.length === 0) say('demo OK: cleaning up (stream, nats-server if started, sink, temp dirs)');
  return problems.length === 0 ? 0 : 1;
}

/**
 * `npm run demo` runs this file under the tsx CLI, which SIGKILLs its child when the child has not
 * acknowledged a Ctrl-C within ~60 ms: a demo busy publishing cannot promise that, and its cleanup
 * (the stream on a shared server, its nats-server, temp dirs) takes longer. So the first process
 * only starts the demo in a child `node --import tsx` (no such deadline there), relays signals to
 * it and exits with its code.
 */
const CHILD_FLAG = 'BATCH_EMITTER_DEMO_CHILD';
if (process.env[CHILD_FLAG] !== '1') {
  const child = spawn(
    process.execPath,
    ['--import', import.meta.resolve('tsx'), fileURLToPath(import.meta.url)],
    {
      stdio: 'inherit',
      env: { ...process.env, [CHILD_FLAG]: '1' },
    },
  );
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
  child.once('error', (error) => {
    process.stderr.write(`demo FAILED: cannot start node: ${error.message}\n`);
    process.exit(1);
  });
  child.once('exit', (code, signal) =>
    process.exit(code ?? 128 + (signal ? osConstants.signals[signal] : 0)),
  );
} else {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => onSignal(signal));
  main().then(
    async (code) => {
      if (interrupted) return; // the signal handler cleans up and exits
      await cleanup();
      process.exit(code);
    },
    async (error: unknown) => {
      if (interrupted) return;
      progress?.stop();
      process.stderr.write(`demo FAILED: ${(error as Error).message ?? String(error)}\n`);
      await cleanup();
      process.exit(1);
    },
  );
}
