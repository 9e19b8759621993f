import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino, type Logger } from 'pino';
import { z } from 'zod';
import { ownWords } from '../src/config/issues.js';
import type { EmitterLifecycle, PluginDescriptor } from './plugin.js';

/**
 * A tiny reference host: `tsx plugins/host.ts <config.json>` (or `node dist/plugins/host.js`).
 *
 *   { "plugins": [ { "module": "batch-emitter/plugin", "config": { "destinationUrl": "...", "spoolDir": "..." } } ],
 *     "shutdownDeadlineS": 15, "logLevel": "info" }
 *
 * `module` is a package specifier or a path (relative paths are relative to the config file); its
 * default export (or its `plugin` export) is a plugin descriptor. `batch-emitter/plugin` is the
 * plugin beside this file, so the host runs from a checkout without a build. Each plugin's config
 * is checked with its `configSchema`, then `create`d with the host's logger and started, in order.
 * The host runs until SIGTERM or SIGINT; then every plugin is flushed, waited for and closed, all
 * within the deadline; exit 0 when all closed in time, 1 when the deadline forced the exit
 * (undelivered batches stay in the spool).
 */

const HostConfigSchema = z.object({
  plugins: z
    .array(z.object({ module: z.string().min(1), config: z.record(z.string(), z.unknown()).default({}) }))
    .min(1, { error: 'expected at least one plugin' }),
  shutdownDeadlineS: z.number().positive().default(15),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
});

interface Loaded {
  name: string;
  lifecycle: EmitterLifecycle;
}

function isDescriptor(v: unknown): v is PluginDescriptor {
  const d = v as Partial<PluginDescriptor> | undefined;
  return (
    typeof d === 'object' && d !== null && typeof d.create === 'function' && d.configSchema !== undefined
  );
}

/**
 * This package's own plugin is taken from beside the host, not through the package's exports map
 * (which points into dist/): plugin.ts when the host runs from source under tsx, dist's plugin.js
 * when built or installed. So a checkout needs no `npm run build` for `tsx plugins/host.ts`.
 */
const OWN_MODULES: Readonly<Record<string, string>> = { 'batch-emitter/plugin': './plugin.js' };

function moduleUrl(specifier: string, baseDir: string): string {
  const own = OWN_MODULES[specifier];
  if (own) return new URL(own, import.meta.url).href;
  const isPath = specifier.startsWith('.') || isAbsolute(specifier);
  return isPath ? pathToFileURL(resolve(baseDir, specifier)).href : specifier;
}

async function loadDescriptor(specifier: string, baseDir: string): Promise<PluginDescriptor> {
  const target = moduleUrl(specifier, baseDir);
  const mod = (await import(target)) as { default?: unknown; plugin?: unknown };
  const candidate = isDescriptor(mod.default) ? mod.default : mod.plugin;
  if (!isDescriptor(candidate)) throw new Error(`${specifier}: exports no plugin descriptor`);
  return candidate;
}

function remaining(deadline: number): number {
  return Math.max(0, deadline - Date.now());
}

function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ms))),
  ]).finally(() => clearTimeout(timer));
}

async function stopAll(loaded: Loaded[], deadline: number, logger: Logger): Promise<boolean> {
  const results = await Promise.all(
    loaded.map(async ({ name, lifecycle }) => {
      try {
        await within(lifecycle.flush(), remaining(deadline));
        if ((await within(lifecycle.wait(), remaining(deadline))) === 'timeout') {
          logger.warn({ plugin: name }, 'deliveries still pending at the deadline; they stay in the spool');
        }
      } catch (error) {
        logger.warn({ plugin: name, err: (error as Error).message }, 'flush/wait failed');
      }
      // close() is bounded by the plugin's own shutdown timeout; the deadline bounds it here too.
      const closed = await within(
        lifecycle.close().then(() => true),
        remaining(deadline) + 1000,
      ).catch((error: unknown) => {
        logger.error({ plugin: name, err: (error as Error).message }, 'close failed');
        return false;
      });
      return closed === true;
    }),
  );
  return results.every(Boolean);
}

/**
 * Resolves with the first SIGTERM or SIGINT. Until then a timer holds the event loop open: an idle
 * embedded emitter (no NATS) keeps no handle of its own, and a process with nothing pending exits
 * by itself. The handlers stay installed: a second signal is logged and the stop stays bounded by
 * its deadline (a one-shot handler would let it kill the process in the middle of the flush).
 */
function firstStopSignal(logger: Logger): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let first: NodeJS.Signals | undefined;
    const keepAlive = setInterval(() => undefined, 2 ** 30);
    const onSignal = (signal: NodeJS.Signals) => {
      if (first) {
        logger.warn({ signal }, 'already stopping; the shutdown deadline bounds it');
        return;
      }
      first = signal;
      clearInterval(keepAlive);
      resolve(signal);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

export async function runHost(configPath: string): Promise<number> {
  const raw = JSON.parse(await readFile(configPath, 'utf8')) as unknown;
  const parsed = HostConfigSchema.safeParse(raw, { error: ownWords });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${configPath}: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  const hostConfig = parsed.data;
  const logger = pino({ level: hostConfig.logLevel, base: { name: 'plugin-host' } });
  const baseDir = dirname(resolve(configPath));
  const loaded: Loaded[] = [];

  let stopping: Promise<number> | undefined;
  const stop = (why: string): Promise<number> => {
    stopping ??= (async () => {
      logger.info({ why }, 'stopping plugins');
      const deadline = Date.now() + hostConfig.shutdownDeadlineS * 1000;
      const clean = await stopAll(loaded, deadline, logger);
      logger.info({ clean }, 'stopped');
      return clean ? 0 : 1;
    })();
    return stopping;
  };
  const signalled = firstStopSignal(logger);

  try {
    for (const [i, entry] of hostConfig.plugins.entries()) {
      const descriptor = await loadDescriptor(entry.module, baseDir);
      const checked = descriptor.configSchema.safeParse(entry.config, { error: ownWords });
      if (!checked.success) {
        const issue = checked.error.issues[0];
        const where =
          issue?.path.join('.') || (issue?.code === 'unrecognized_keys' ? issue.keys.join(', ') : '');
        throw new Error(`plugin ${i} (${entry.module}) config: ${where}: ${issue?.message ?? 'invalid'}`);
      }
      const config = checked.data;
      const lifecycle = descriptor.create(config, {
        logger: logger.child({ plugin: descriptor.name, index: i }),
      });
      loaded.push({ name: descriptor.name, lifecycle });
      await lifecycle.start();
      logger.info(
        { plugin: descriptor.name, version: descriptor.version, module: entry.module },
        'plugin started',
      );
    }
  } catch (error) {
    logger.error({ err: (error as Error).message }, 'a plugin failed to start');
    await stop('start failure');
    return 1;
  }
  logger.info({ plugins: loaded.length }, 'running');
  return stop(await signalled);
}

const isMain =
  process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href;
if (isMain) {
  const configPath = process.argv[2];
  if (!configPath) {
    process.stderr.write('usage: host <config.json>\n');
    process.exit(2);
  }
  runHost(configPath).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`host: ${(error as Error).message}\n`);
      process.exit(1);
    },
  );
}
