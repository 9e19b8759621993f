import { z } from 'zod';
import { ConfigError, loadConfig, type Config } from './config.js';
import { Emitter } from './emitter.js';
import type { Logger } from './util/logger.js';

/**
 * The public surface for programs that embed the emitter (DESIGN.md "Plugin lifecycle"):
 *
 *   const emitter = createEmitter({ destinationUrl: 'https://ingest.example/v1', spoolDir: './spool' });
 *   await emitter.start();
 *   await emitter.addEdge({ type: 'RESOLVES_TO', source, target, observed_at, probe_id, run_id });
 *   await emitter.flush(); await emitter.wait(); await emitter.close();
 *
 * `createEmitter` takes a plain camelCase object (EmbeddedConfig, validated with zod), or a record
 * of TRANSMITTER_* strings exactly as the service reads them from its environment. Either way the
 * values go through the same validation as the service's (`loadConfig`), and the process
 * environment is NOT read. Unlike the service, an embedded emitter consumes no NATS unless asked:
 * `natsUrl` absent or 'none' means in-process input only.
 */

export { Emitter, EmitterNotStartedError, type EmitterOptions } from './emitter.js';
export { IntakeClosedError, ItemTooLargeError, SpoolWriteAbandonedError } from './intake/intake.js';
export { SpoolError } from './spool/handle.js';
export { ConfigError, loadConfig, type Config, type NatsConfig } from './config.js';
export {
  EDGE_TYPES,
  InvalidItemError,
  type Edge,
  type Node,
  type NodeCert,
  type NodeDomain,
  type NodeIP,
  type EventRecord,
  type BatchDocument,
} from './model.js';
export type { DeadLetter } from './spool/spool.js';
export type { Logger } from './util/logger.js';
export { VERSION } from './util/version.js';

/** camelCase option -> the TRANSMITTER_* variable it stands for (see DESIGN.md "Service contract"). */
const VARIABLE_OF = {
  destinationUrl: 'TRANSMITTER_DESTINATION_URL',
  spoolDir: 'TRANSMITTER_SPOOL_DIR',
  spoolMaxBytes: 'TRANSMITTER_SPOOL_MAX_BYTES',
  natsUrl: 'TRANSMITTER_NATS_URL',
  natsStream: 'TRANSMITTER_NATS_STREAM',
  natsSubjects: 'TRANSMITTER_NATS_SUBJECTS',
  natsDurable: 'TRANSMITTER_NATS_DURABLE',
  natsAckWaitS: 'TRANSMITTER_NATS_ACK_WAIT_S',
  natsUser: 'TRANSMITTER_NATS_USER',
  natsPassword: 'TRANSMITTER_NATS_PASSWORD',
  natsToken: 'TRANSMITTER_NATS_TOKEN',
  natsCreds: 'TRANSMITTER_NATS_CREDS',
  natsTlsCa: 'TRANSMITTER_NATS_TLS_CA',
  authToken: 'TRANSMITTER_AUTH_TOKEN',
  clientCert: 'TRANSMITTER_CLIENT_CERT',
  clientKey: 'TRANSMITTER_CLIENT_KEY',
  caCert: 'TRANSMITTER_CA_CERT',
  allowInsecureHttp: 'TRANSMITTER_ALLOW_INSECURE_HTTP',
  headers: 'TRANSMITTER_HEADERS',
  compression: 'TRANSMITTER_COMPRESSION',
  batchSize: 'TRANSMITTER_BATCH_SIZE',
  batchMaxBytes: 'TRANSMITTER_BATCH_MAX_BYTES',
  batchIntervalS: 'TRANSMITTER_BATCH_INTERVAL_S',
  concurrency: 'TRANSMITTER_CONCURRENCY',
  requestTimeoutS: 'TRANSMITTER_REQUEST_TIMEOUT_S',
  retryMaxAttempts: 'TRANSMITTER_RETRY_MAX_ATTEMPTS',
  retryInitialDelayS: 'TRANSMITTER_RETRY_INITIAL_DELAY_S',
  retryBackoffMultiplier: 'TRANSMITTER_RETRY_BACKOFF_MULTIPLIER',
  retryMaxDelayS: 'TRANSMITTER_RETRY_MAX_DELAY_S',
  circuitFailureThreshold: 'TRANSMITTER_CIRCUIT_FAILURE_THRESHOLD',
  circuitResetTimeoutS: 'TRANSMITTER_CIRCUIT_RESET_TIMEOUT_S',
  shutdownTimeoutS: 'TRANSMITTER_SHUTDOWN_TIMEOUT_S',
  databaseUrl: 'TRANSMITTER_DATABASE_URL',
  probeId: 'TRANSMITTER_PROBE_ID',
  runId: 'TRANSMITTER_RUN_ID',
  logLevel: 'TRANSMITTER_LOG_LEVEL',
} as const;

type OptionName = keyof typeof VARIABLE_OF;
const OPTION_OF = new Map<string, OptionName>(
  Object.entries(VARIABLE_OF).map(([option, variable]) => [variable, option as OptionName]),
);

const text = z.string().min(1);
const count = z.number().int().positive();
const secondsValue = z.number().nonnegative();

/**
 * The embedded configuration. Only `destinationUrl` and `spoolDir` are required; every other
 * option defaults as its TRANSMITTER_* variable does (DESIGN.md), except `natsUrl` ('none').
 * Values are checked here for shape (numbers, booleans, strings) and then by `loadConfig` for
 * range and consistency; errors are ConfigError naming the option.
 */
export const embeddedConfigSchema = z
  .object({
    /** https:// URL batches are POSTed to (http:// only with allowInsecureHttp) */
    destinationUrl: text,
    /** LevelDB spool directory; one emitter per directory per process */
    spoolDir: text,
    spoolMaxBytes: count.optional(),
    /** 'none' (default): in-process input only; else nats://host:port[,nats://...] */
    natsUrl: z.union([text, z.array(text).min(1)]).optional(),
    natsStream: text.optional(),
    natsSubjects: z.union([text, z.array(text).min(1)]).optional(),
    natsDurable: text.optional(),
    natsAckWaitS: secondsValue.optional(),
    natsUser: text.optional(),
    natsPassword: text.optional(),
    natsToken: text.optional(),
    natsCreds: text.optional(),
    natsTlsCa: text.optional(),
    authToken: text.optional(),
    clientCert: text.optional(),
    clientKey: text.optional(),
    caCert: text.optional(),
    allowInsecureHttp: z.boolean().optional(),
    headers: z.record(z.string(), z.string()).optional(),
    compression: z.enum(['gzip', 'none']).optional(),
    batchSize: count.optional(),
    batchMaxBytes: count.optional(),
    batchIntervalS: secondsValue.optional(),
    /** requests at once to the destination, or 'adaptive' */
    concurrency: z
      .union([count, z.literal('adaptive')], { error: 'expected a positive whole number or adaptive' })
      .optional(),
    requestTimeoutS: secondsValue.optional(),
    retryMaxAttempts: count.optional(),
    retryInitialDelayS: secondsValue.optional(),
    retryBackoffMultiplier: z.number().positive().optional(),
    retryMaxDelayS: secondsValue.optional(),
    circuitFailureThreshold: count.optional(),
    circuitResetTimeoutS: secondsValue.optional(),
    /** how long close() waits for deliveries before leaving them in the spool (default 10) */
    shutdownTimeoutS: secondsValue.optional(),
    databaseUrl: text.optional(),
    probeId: text.optional(),
    runId: text.optional(),
    logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).optional(),
  })
  .strict();

export type EmbeddedConfig = z.input<typeof embeddedConfigSchema>;

/** A record of TRANSMITTER_* strings, as the service reads from its environment. */
export type TransmitterEnv = Record<`TRANSMITTER_${string}`, string | undefined>;

export interface HostServices {
  /** the host's pino logger; the emitter logs through a child of it. Default: its own pino logger. */
  logger?: Logger;
}

function isTransmitterEnv(options: object): options is TransmitterEnv {
  const keys = Object.keys(options);
  return keys.length > 0 && keys.every((k) => k.startsWith('TRANSMITTER_'));
}

function formatValue(value: unknown): string {
  if (Array.isArray(value)) return value.join(',');
  if (typeof value === 'object' && value !== null) return JSON.stringify(value);
  return String(value);
}

/** The embedded options as TRANSMITTER_* strings (NATS off unless natsUrl is given). */
function toEnv(options: z.output<typeof embeddedConfigSchema>): Record<string, string> {
  const env: Record<string, string> = { TRANSMITTER_NATS_URL: 'none' };
  for (const [option, value] of Object.entries(options)) {
    if (value === undefined) continue;
    env[VARIABLE_OF[option as OptionName]] = formatValue(value);
  }
  return env;
}

/** The service's error (naming TRANSMITTER_X) renamed to the embedded option (naming x). */
function renamed(error: unknown): unknown {
  if (!(error instanceof ConfigError)) return error;
  const option = OPTION_OF.get(error.variable);
  if (option === undefined) return error;
  const detail = error.message.slice(error.variable.length + 2).replaceAll(/TRANSMITTER_[A-Z_]+/g, (v) => {
    return OPTION_OF.get(v) ?? v;
  });
  return new ConfigError(option, detail);
}

/**
 * Validate embedded options (or a TRANSMITTER_* record) into the emitter's Config.
 * Throws ConfigError naming the option (or the variable) and what is wrong; never echoes secrets.
 */
export function resolveConfig(options: EmbeddedConfig | TransmitterEnv): Config {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError('options', 'expected an object of emitter options');
  }
  if (isTransmitterEnv(options)) {
    return loadConfig({ TRANSMITTER_NATS_URL: 'none', ...options } as NodeJS.ProcessEnv);
  }
  const parsed = embeddedConfigSchema.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const option = issue?.path.length ? issue.path.join('.') : 'options';
    const detail =
      issue?.code === 'unrecognized_keys'
        ? `unknown option${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`
        : issue?.message === undefined
          ? 'invalid value'
          : issue.message;
    throw new ConfigError(issue?.code === 'unrecognized_keys' ? 'options' : option, detail);
  }
  try {
    return loadConfig(toEnv(parsed.data) as NodeJS.ProcessEnv);
  } catch (error) {
    throw renamed(error);
  }
}

/**
 * A new (not started) Emitter from embedded options; see the module comment.
 * Call `start()` before adding, and `close()` when done.
 */
export function createEmitter(options: EmbeddedConfig | TransmitterEnv, host: HostServices = {}): Emitter {
  const config = resolveConfig(options);
  const logger = host.logger?.child({ component: 'batch-emitter' });
  return new Emitter(config, logger ? { logger } : {});
}
