import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { atProcessEnd } from '../../harness/cleanup.js';
import { waitForAckPending } from '../../harness/consumer.js';
import { DEPLOY, dockerfileStages, execForm, unitSettings } from '../../harness/deploy-files.js';
import { startNats, type NatsServerHandle } from '../../harness/nats.js';
import { installInto, packInto } from '../../harness/packed-package.js';
import { watchEmitter } from '../../harness/process.js';
import { startSink, type Sink } from '../../harness/sink.js';
import { allDelivered, publishAll, sampleMessages, tempDir } from '../../harness/workload.js';
import { REPO } from '../fixtures/embed-support.js';
import { testEnv } from '../support/env.js';

/**
 * The commands the README gives a supervisor, started as a supervisor starts them: SIGTERM goes to
 * the pid that was started (npm, or node), never to a process group. Each must drain (the open
 * batch is sealed and delivered), exit 0 within the shutdown timeout, leave no process behind and
 * release the spool (a second start with the same spool comes up).
 */

const MARK = 'BATCH_EMITTER_TEST_MARK';
const SHUTDOWN_TIMEOUT_S = 10;

let nats: NatsServerHandle;
let sink: Sink;
let work: Awaited<ReturnType<typeof tempDir>>;
let project: string;
/** every case's durable consumer is new, so it is given the whole stream: all cases' messages */
let publishedSoFar = 0;

beforeAll(async () => {
  work = await tempDir('service-stop');
  [nats, sink] = await Promise.all([startNats(), startSink()]);
  const { tarball } = await packInto(work.path);
  project = join(work.path, 'project');
  await installInto(project, tarball);
}, 240_000);
afterAll(async () => {
  await Promise.all([nats?.stop(), sink?.close()]);
  await work?.remove();
});

/** The image's ENTRYPOINT + CMD with its /app (where it installs the packed package) mapped here. */
function dockerEntry(): string[] {
  const runtime = dockerfileStages(join(DEPLOY, 'Dockerfile')).at(-1)!;
  const of = (name: string) => execForm(runtime.findLast((i) => i.name === name)!.args);
  return [...of('ENTRYPOINT'), ...of('CMD')].map((a) => a.replace(/^\/app(?=\/)/, project));
}

/** The systemd unit's ExecStart with its /opt/batch-emitter (the install prefix) mapped here. */
function unitExecStart(path = join(DEPLOY, 'systemd/batch-emitter.service')): string[] {
  const [execStart] = unitSettings(path).get('ExecStart') ?? [];
  return execStart!.split(/\s+/).map((a) => a.replace(/^\/opt\/batch-emitter(?=\/)/, project));
}

const hasTini = spawnSync('tini', ['--version']).status === 0;

const commands: Array<{ name: string; cwd: () => string; argv: () => string[]; skip?: boolean }> = [
  { name: 'npm start (checkout)', cwd: () => REPO, argv: () => ['npm', 'start'] },
  {
    name: 'node dist/src/bin.js run (installed package)',
    cwd: () => join(project, 'node_modules/batch-emitter'),
    argv: () => [process.execPath, 'dist/src/bin.js', 'run'],
  },
  {
    name: 'node_modules/.bin/batch-emitter run (installed package)',
    cwd: () => project,
    argv: () => ['node_modules/.bin/batch-emitter', 'run'],
  },
  {
    name: "npx -c 'exec batch-emitter run' (installed package)",
    cwd: () => project,
    argv: () => ['npx', '-c', 'exec batch-emitter run'],
  },
  { name: 'the systemd unit ExecStart', cwd: () => project, argv: unitExecStart },
  {
    name: "the Docker image's ENTRYPOINT + CMD (tini)",
    cwd: () => project,
    argv: dockerEntry,
    skip: !hasTini,
  },
];

describe('SIGTERM to the started process of each service command', () => {
  it.for(commands)(
    '$name: drains, exits 0 within the shutdown timeout, leaves no process, frees the spool',
    { timeout: 240_000 },
    async ({ name, cwd, argv, skip }, context) => {
      if (skip) context.skip('tini is not installed');
      const spool = join(work.path, `spool-${randomUUID()}`);
      const durable = `svc${randomUUID().slice(0, 8)}`;
      const env = testEnv({
        natsUrl: nats.url,
        sinkUrl: sink.url,
        spoolDir: spool,
        extra: {
          TRANSMITTER_NATS_DURABLE: durable,
          // nothing is sealed before the stop: what reaches the sink was drained by it
          TRANSMITTER_BATCH_INTERVAL_S: '600',
          TRANSMITTER_BATCH_SIZE: '10000',
          TRANSMITTER_SHUTDOWN_TIMEOUT_S: String(SHUTDOWN_TIMEOUT_S),
          TRANSMITTER_LOG_LEVEL: 'info',
        },
      });
      const messages = sampleMessages(40, durable);
      const first = startService(argv(), cwd(), env);
      let second: Service | undefined;
      try {
        await bounded(first, first.ready, 60_000, 'reach "running"');
        await publishAll(nats.url, messages);
        publishedSoFar += messages.length;
        await waitForAckPending(nats.url, durable, publishedSoFar);
        expect(sink.requests).toHaveLength(0);

        const signalledAt = performance.now();
        first.child.kill('SIGTERM');
        expect(await bounded(first, first.exited, 60_000, 'exit'), first.output()).toBe(0);
        expect(performance.now() - signalledAt).toBeLessThan(SHUTDOWN_TIMEOUT_S * 1000);
        expect(allDelivered(messages)(sink.requests), first.output()).toBe(true);
        expect(first.output()).toContain('"signal":"SIGTERM"');
        expect(processesMarked(first.mark), name).toEqual([]);

        // the spool lock went with the process: the same spool opens again
        second = startService(argv(), cwd(), env);
        await bounded(second, second.ready, 60_000, 'start again on the same spool');
        await readyAnswers(second);
        second.child.kill('SIGTERM');
        expect(await bounded(second, second.exited, 60_000, 'exit'), second.output()).toBe(0);
        expect(processesMarked(second.mark)).toEqual([]);
      } finally {
        const left = [first, second].flatMap((service) => (service ? processesMarked(service.mark) : []));
        for (const p of left) killQuietly(Number.parseInt(p, 10));
        sink.clear();
      }
    },
  );
});

/** The environment of one case: its own spool and durable, nothing sealed before the stop. */
function caseEnv(): { env: Record<string, string>; durable: string } {
  const durable = `svc${randomUUID().slice(0, 8)}`;
  const env = testEnv({
    natsUrl: nats.url,
    sinkUrl: sink.url,
    spoolDir: join(work.path, `spool-${randomUUID()}`),
    extra: {
      TRANSMITTER_NATS_DURABLE: durable,
      TRANSMITTER_BATCH_INTERVAL_S: '600',
      TRANSMITTER_BATCH_SIZE: '10000',
      TRANSMITTER_SHUTDOWN_TIMEOUT_S: String(SHUTDOWN_TIMEOUT_S),
      TRANSMITTER_LOG_LEVEL: 'info',
    },
  });
  return { env, durable };
}

/** Publishes 40 events and waits until the service has pulled them all (none sealed yet). */
async function pulled(durable: string) {
  const messages = sampleMessages(40, durable);
  await publishAll(nats.url, messages);
  publishedSoFar += messages.length;
  await waitForAckPending(nats.url, durable, publishedSoFar);
  expect(sink.requests).toHaveLength(0);
  return messages;
}

/** The spool lock went with the process: the installed binary opens the same spool and is ready. */
async function startsAgain(env: Record<string, string>): Promise<void> {
  const again = startService(['node_modules/.bin/batch-emitter', 'run'], project, env);
  try {
    await bounded(again, again.ready, 60_000, 'start again on the same spool');
    await readyAnswers(again);
    again.child.kill('SIGTERM');
    expect(await bounded(again, again.exited, 60_000, 'exit'), again.output()).toBe(0);
  } finally {
    for (const p of processesMarked(again.mark)) killQuietly(Number.parseInt(p, 10));
  }
}

const GONE = 'the npm process that started the emitter is gone';

const npmKilled: Array<{ name: string; cwd: () => string; argv: string[]; signal: NodeJS.Signals }> = [
  {
    name: 'SIGTERM to `npx batch-emitter run`',
    cwd: () => project,
    argv: ['npx', 'batch-emitter', 'run'],
    signal: 'SIGTERM',
  },
  // the sh -c lives on, re-parented, while the emitter runs: the loss of its parent is what is seen
  {
    name: 'SIGKILL to `npx batch-emitter run`',
    cwd: () => project,
    argv: ['npx', 'batch-emitter', 'run'],
    signal: 'SIGKILL',
  },
  { name: 'SIGKILL to `npm start`', cwd: () => REPO, argv: ['npm', 'start'], signal: 'SIGKILL' },
  { name: 'SIGHUP to `npm start`', cwd: () => REPO, argv: ['npm', 'start'], signal: 'SIGHUP' },
];

describe('the npm process that started the emitter goes away without passing a signal on', () => {
  it.for(npmKilled)(
    '$name: the emitter notices, drains, delivers every pulled event, exits and frees the spool',
    { timeout: 240_000 },
    async ({ cwd, argv, signal }) => {
      const { env, durable } = caseEnv();
      const npm = startService(argv, cwd(), env);
      try {
        await bounded(npm, npm.ready, 60_000, 'reach "running"');
        expect(npm.output()).toContain('started by npm');
        const messages = await pulled(durable);

        const signalledAt = performance.now();
        npm.child.kill(signal);
        expect(await bounded(npm, npm.exited, 60_000, 'npm exit')).not.toBe(0);
        // npm is gone at once; the emitter, re-parented, must see it within a poll and drain
        await bounded(
          npm,
          until(() => processesMarked(npm.mark).length === 0),
          60_000,
          'leave no process',
        );
        expect(performance.now() - signalledAt).toBeLessThan(SHUTDOWN_TIMEOUT_S * 1000 + 3000);
        expect(npm.output()).toContain(GONE);
        expect(npm.output()).toContain('"msg":"closed"');
        expect(allDelivered(messages)(sink.requests), npm.output()).toBe(true);
        await startsAgain(env);
      } finally {
        for (const p of processesMarked(npm.mark)) killQuietly(Number.parseInt(p, 10));
        sink.clear();
      }
    },
  );

  it(
    'a binary started directly keeps running when the shell that started it exits, until SIGTERM',
    {
      timeout: 240_000,
    },
    async () => {
      const { env, durable } = caseEnv();
      // npm's variables inherited (as under `npm test`, or `nohup ... &` in an npm script) do not make
      // it npm's child: only npm as its parent (or its sh -c's parent) does
      const inherited = {
        ...env,
        npm_lifecycle_event: 'test',
        npm_command: 'test',
        npm_execpath: '/x/npm-cli.js',
      };
      // the shell waits for its stdin to close, so it exits after the emitter is running
      const shell = startService(
        ['sh', '-c', `"${process.execPath}" dist/src/bin.js run & read line; true`],
        join(project, 'node_modules/batch-emitter'),
        inherited,
        'pipe',
      );
      try {
        await bounded(shell, shell.ready, 60_000, 'reach "running"');
        const [pid] = processesMarked(shell.mark)
          .map((p) => Number.parseInt(p, 10))
          .filter((p) => p !== shell.child.pid);
        expect(parentOf(pid!)).toBe(shell.child.pid);
        shell.child.stdin!.end();
        expect(await bounded(shell, shell.exited, 30_000, 'shell exit')).toBe(0);
        expect(parentOf(pid!)).not.toBe(shell.child.pid);
        const messages = await pulled(durable);
        // three polls of a watch that must not exist, after its parent is long gone
        await new Promise((r) => setTimeout(r, 3000));
        expect(processesMarked(shell.mark).map((p) => Number.parseInt(p, 10))).toEqual([pid]);
        await readyAnswers(shell);
        expect(shell.output()).not.toContain('started by npm');
        expect(shell.output()).not.toContain(GONE);

        process.kill(pid!, 'SIGTERM');
        await bounded(
          shell,
          until(() => processesMarked(shell.mark).length === 0),
          60_000,
          'exit',
        );
        expect(shell.output()).toContain('"signal":"SIGTERM"');
        expect(allDelivered(messages)(sink.requests), shell.output()).toBe(true);
      } finally {
        for (const p of processesMarked(shell.mark)) killQuietly(Number.parseInt(p, 10));
        sink.clear();
      }
    },
  );
});

/** The parent pid of a live process, from /proc. */
function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** Resolves once `condition` holds (polled every 100 ms); bounded by the caller. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setTimeout(r, 100));
}

describe('deploy/systemd/batch-emitter.service', () => {
  it.skipIf(spawnSync('systemd-analyze', ['--version']).status !== 0)(
    'passes systemd-analyze verify, its ExecStart pointed at the installed package',
    async () => {
      const unit = join(work.path, 'batch-emitter.service');
      const text = await readFile(join(DEPLOY, 'systemd/batch-emitter.service'), 'utf8');
      await writeFile(unit, text.replaceAll('/opt/batch-emitter/', `${project}/`));
      const verify = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
      expect(verify.stderr + verify.stdout).toBe('');
      expect(verify.status).toBe(0);
    },
  );
});

interface Service {
  readonly child: ChildProcess;
  readonly mark: string;
  output(): string;
  ready: Promise<void>;
  exited: Promise<number | string>;
}

const started = new Set<string>();
atProcessEnd(() => {
  for (const mark of started) for (const p of processesMarked(mark)) killQuietly(Number.parseInt(p, 10));
});

/** Starts the command with a unique marker in its environment, inherited by every descendant. */
function startService(
  argv: string[],
  cwd: string,
  env: Record<string, string>,
  stdin: 'ignore' | 'pipe' = 'ignore',
): Service {
  const mark = randomUUID();
  started.add(mark);
  const [command, ...args] = argv;
  const child = spawn(command!, args, {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env, [MARK]: mark },
    stdio: [stdin, 'pipe', 'pipe'],
  });
  const { output, ready, exited } = watchEmitter(child);
  const failedToStart = exited.then((code) => {
    throw new Error(`${argv.join(' ')} exited ${code} before running:\n${output()}`);
  });
  return {
    child,
    mark,
    output,
    ready: Promise.race([ready, failedToStart]),
    exited,
  };
}

/** Resolves once the service's /ready answers 200 (spool open, consumer bound). */
async function readyAnswers(service: Service, timeoutMs = 30_000): Promise<void> {
  const origin = /"http":"([^"]+)"/.exec(service.output())![1]!;
  const until = performance.now() + timeoutMs;
  while ((await fetch(`${origin}/ready`).catch(() => undefined))?.status !== 200) {
    if (performance.now() > until) throw new Error(`${origin}/ready: not 200 within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The promise, or a failure naming the step and showing the process's output so far. */
function bounded<T>(service: Service, promise: Promise<T>, ms: number, step: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`did not ${step} within ${ms} ms; output:\n${service.output()}`)),
      ms,
    );
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** Live processes (pid and command line) whose environment carries the marker. */
function processesMarked(mark: string): string[] {
  const needle = `${MARK}=${mark}`;
  const read = (pid: string, file: string) => {
    try {
      return readFileSync(`/proc/${pid}/${file}`, 'latin1');
    } catch {
      return ''; // gone meanwhile
    }
  };
  return readdirSync('/proc')
    .filter((pid) => /^\d+$/.test(pid) && read(pid, 'environ').split('\0').includes(needle))
    .map((pid) => `${pid} ${read(pid, 'cmdline').replaceAll('\0', ' ').trim()}`);
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
