import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { atProcessEnd } from './cleanup.js';

/**
 * Spawns a real `nats-server` (from PATH) with JetStream for integration tests.
 *
 * Config: the repo's nats.conf is copied into a private temp dir with its `store_dir` pointed at
 * a fresh store dir, and `extraConfig` appended. (nats-server 2.9.10 refuses `-sd` together
 * with a config file that sets `store_dir`: "Duplicate 'store_dir' configuration".) The port is
 * given with `-p`. Every spawned server is SIGKILLed and its temp dir removed when the test
 * process ends (exit or SIGTERM/SIGINT, see cleanup.ts), because vitest skips teardown on SIGINT.
 */

export interface NatsServerHandle {
  /** nats://127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  /** JetStream store dir (kept across stop/kill/restart; removed at process exit) */
  readonly storeDir: string;
  /** the generated config file */
  readonly configPath: string;
  /** pid of the current server process (undefined while stopped) */
  readonly pid: number | undefined;
  /** SIGTERM and wait for exit (SIGKILL after 5 s) */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit */
  kill(): Promise<void>;
  /** stop if running, then start again on the same port and store dir; resolves when ready */
  restart(): Promise<void>;
  /** server log output so far (for failure messages) */
  logs(): string;
}

export interface StartNatsOptions {
  /** nats.conf text appended after the base config */
  extraConfig?: string;
  /** how long to wait for the server to be ready (default 5000 ms) */
  readyTimeoutMs?: number;
  /** the nats-server binary (default: `nats-server` from PATH) */
  bin?: string;
  /** in its own process group, so that a Ctrl-C at the terminal leaves it to the caller to stop */
  detached?: boolean;
}

const BASE_CONFIG = fileURLToPath(new URL('../nats.conf', import.meta.url));
const live = new Set<ChildProcess>();

function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
}

atProcessEnd(() => {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** The version a server's log states ("Version:  2.9.10"), or 'unknown'. */
export function serverVersion(logs: string): string {
  return /Version:\s+(\S+)/.exec(logs)?.[1] ?? 'unknown';
}

/** Whether something accepts a TCP connection at host:port within `timeoutMs`. */
export function tcpAnswers(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    s.setTimeout(timeoutMs, () => done(false));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function waitExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

function buildConfig(storeDir: string, extra: string | undefined): { text: string; needsSd: boolean } {
  const base = readFileSync(BASE_CONFIG, 'utf8');
  const storeDirRe = /^(\s*store_dir\s*[:=]?\s*).*$/m;
  const needsSd = !storeDirRe.test(base);
  const text = base.replace(storeDirRe, (_m, prefix: string) => `${prefix}${JSON.stringify(storeDir)}`);
  return { text: extra ? `${text}\n# --- extraConfig ---\n${extra}\n` : text, needsSd };
}

class AddressInUse extends Error {}

export async function startNats(opts: StartNatsOptions = {}): Promise<NatsServerHandle> {
  const readyTimeoutMs = opts.readyTimeoutMs ?? 5_000;
  const root = mkdtempSync(join(tmpdir(), 'batch-emitter-nats-'));
  atProcessEnd(() => rmSync(root, { recursive: true, force: true }));
  const storeDir = join(root, 'store');
  mkdirSync(storeDir);
  const configPath = join(root, 'nats.conf');
  const { text, needsSd } = buildConfig(storeDir, opts.extraConfig);
  writeFileSync(configPath, text, { mode: 0o600 });

  let log = '';
  let child: ChildProcess | undefined;
  let port = 0;

  const spawnOnce = async (p: number): Promise<void> => {
    const args = ['-c', configPath, '-p', String(p)];
    if (needsSd) args.push('-sd', storeDir);
    const c = spawn(opts.bin ?? 'nats-server', args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: opts.detached ?? false,
    });
    track(c);
    let ready = false;
    let mine = ''; // this process's output only (log spans restarts)
    const onData = (d: Buffer) => {
      const text = d.toString();
      log += text;
      if (log.length > 256 * 1024) log = log.slice(-128 * 1024);
      if (!ready) {
        mine += text;
        if (mine.includes('Server is ready')) ready = true;
      }
    };
    c.stdout?.on('data', onData);
    c.stderr?.on('data', onData);
    let spawnError: Error | undefined;
    c.once('error', (err) => (spawnError = err));

    const deadline = Date.now() + readyTimeoutMs;
    while (Date.now() < deadline) {
      if (spawnError) throw new Error(`cannot spawn nats-server: ${spawnError.message}`);
      if (c.exitCode !== null || c.signalCode !== null) {
        if (/address already in use/i.test(mine)) throw new AddressInUse(mine);
        throw new Error(
          `nats-server exited (${c.exitCode ?? c.signalCode}) before ready:\n${mine.slice(-4000)}`,
        );
      }
      // "Server is ready" is logged after JetStream is enabled and the client listener is up.
      if (ready && (await tcpAnswers('127.0.0.1', p))) {
        child = c;
        return;
      }
      await sleep(20);
    }
    c.kill('SIGKILL');
    await waitExit(c);
    throw new Error(`nats-server not ready within ${readyTimeoutMs} ms:\n${log.slice(-4000)}`);
  };

  // The free port can be taken between probing and binding: try a few.
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      await spawnOnce(port);
      break;
    } catch (err) {
      if (!(err instanceof AddressInUse) || attempt >= 4) throw err;
    }
  }

  const stopWith = async (signal: 'SIGTERM' | 'SIGKILL'): Promise<void> => {
    const c = child;
    if (!c) return;
    child = undefined;
    if (c.exitCode !== null || c.signalCode !== null) return;
    const exited = waitExit(c);
    c.kill(signal);
    if (signal === 'SIGTERM') {
      const timer = setTimeout(() => c.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    } else {
      await exited;
    }
  };

  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    configPath,
    get pid() {
      return child?.pid;
    },
    stop: () => stopWith('SIGTERM'),
    kill: () => stopWith('SIGKILL'),
    async restart() {
      await stopWith('SIGTERM');
      // Same port: the old listener is closed once the process exited, but retry briefly anyway.
      for (let attempt = 0; ; attempt++) {
        try {
          await spawnOnce(port);
          return;
        } catch (err) {
          if (!(err instanceof AddressInUse) || attempt >= 20) throw err;
          await sleep(100);
        }
      }
    },
    logs: () => log,
  };
}

export interface NatsClusterHandle {
  /** the servers, in order; node i has server_name `names[i]` */
  readonly nodes: NatsServerHandle[];
  /** server_name of each node: `<name>-n1`, `<name>-n2`, ... (what stream/consumer info calls them) */
  readonly names: string[];
  /** every node's client URL joined with commas: a TRANSMITTER_NATS_URL or `connect({ servers })` value */
  readonly urls: string;
  /** the node whose server_name is `name` (e.g. a stream's `cluster.leader`) */
  node(name: string): NatsServerHandle | undefined;
  /** SIGTERM every node and wait for the exits */
  stop(): Promise<void>;
  /** SIGKILL every node and wait for the exits */
  kill(): Promise<void>;
}

export interface StartNatsClusterOptions {
  /** cluster name, also the prefix of the server names (default "test") */
  name?: string;
  /** nats.conf text appended to every node's config, after the cluster block */
  extraConfig?: string;
  /** how long to wait for each server to be ready (default 15000 ms: routes take a moment) */
  readyTimeoutMs?: number;
}

/** `n` distinct free loopback ports (freePort probes one at a time, so two probes may agree) */
async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/**
 * Spawns an `n`-node nats-server cluster on loopback (each node a {@link startNats} server with
 * JetStream, its own store dir and client port, and a `cluster {}` block routing to every other
 * node), for streams with `num_replicas` up to `n`. Resolves when every node logged "Server is
 * ready"; the JetStream meta leader is elected a moment later, so callers creating a replicated
 * stream retry until it has a leader and its replicas (see scripts/chaos/nats.ts). Cleanup at
 * process end is that of startNats.
 */
export async function startNatsCluster(
  n = 3,
  opts: StartNatsClusterOptions = {},
): Promise<NatsClusterHandle> {
  const name = opts.name ?? 'test';
  const routePorts = await freePorts(n);
  const names = routePorts.map((_, i) => `${name}-n${i + 1}`);
  const configFor = (i: number) =>
    [
      `server_name: ${names[i]}`,
      'cluster {',
      `  name: ${name}`,
      `  listen: 127.0.0.1:${routePorts[i]}`,
      '  routes: [',
      ...routePorts.filter((_, j) => j !== i).map((port) => `    nats-route://127.0.0.1:${port}`),
      '  ]',
      '}',
      ...(opts.extraConfig ? [opts.extraConfig] : []),
    ].join('\n');
  const started = await Promise.allSettled(
    routePorts.map((_, i) =>
      startNats({ extraConfig: configFor(i), readyTimeoutMs: opts.readyTimeoutMs ?? 15_000 }),
    ),
  );
  const nodes = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.all(nodes.map((node) => node.kill()));
    throw failed.reason;
  }
  return {
    nodes,
    names,
    urls: nodes.map((node) => node.url).join(','),
    node: (serverName) => nodes[names.indexOf(serverName)],
    stop: async () => {
      await Promise.all(nodes.map((node) => node.stop()));
    },
    kill: async () => {
      await Promise.all(nodes.map((node) => node.kill()));
    },
  };
}
