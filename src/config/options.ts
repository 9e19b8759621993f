import { hostname } from 'node:os';
import type { z } from 'zod';
import * as kind from './kinds.js';
import type { Kind } from './kinds.js';
import { headerSecrets, urlPassword, urlSecrets } from './secret-values.js';
import type { SecretSettings } from './types.js';

/**
 * The one table of options: per TRANSMITTER_* variable its embedded name, value kind, default,
 * whether it is secret and what it means. The loaders, secretsOf, the README table and
 * `run --help` are derived from it; nothing here reads the environment.
 */

export interface OptionSpec<V extends z.ZodType = z.ZodType> {
  /** the camelCase name an embedder passes; absent: the service alone reads it */
  readonly option?: string;
  readonly kind: Kind<V>;
  /** as an environment string, parsed like one; a function for defaults of the moment */
  readonly default?: string | ((now: Date) => string);
  /** the default of an embedded emitter, when it differs */
  readonly embeddedDefault?: string;
  /** the default as the README shows it, when the value itself does not say it */
  readonly shownDefault?: string;
  /** no default: the refusal says what the value is for; `embedded` = required of embedders only */
  readonly required?: { readonly hint: string; readonly embeddedOnly?: boolean };
  /** where the value's secrets are in a configuration; a secret value is never echoed */
  readonly secret?: (config: SecretSettings) => Array<string | undefined>;
  /** the README meaning */
  readonly doc: string;
}

function runId(now: Date): string {
  return `run-${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}`;
}

/** In this order values are read (the first bad one is reported) and documented. */
export const OPTIONS = {
  TRANSMITTER_SERVER_HOST: { kind: kind.text(), default: '0.0.0.0', doc: 'HTTP server address' },
  TRANSMITTER_SERVER_PORT: {
    kind: kind.int(0, 65535),
    default: '8020',
    doc: 'HTTP server port (0 picks a free one and logs it)',
  },
  TRANSMITTER_SERVER_MAX_CONNECTIONS: {
    kind: kind.int(1, 65535),
    default: '256',
    doc: 'HTTP server connections; more are closed on arrival',
  },
  TRANSMITTER_NATS_URL: {
    option: 'natsUrl',
    kind: kind.natsUrls(),
    default: 'nats://127.0.0.1:4222',
    // an embedded emitter consumes no NATS unless asked
    embeddedDefault: 'none',
    doc: 'comma list allowed; `none` = no NATS, in-process input only (the embedded default)',
  },
  TRANSMITTER_NATS_STREAM: {
    option: 'natsStream',
    kind: kind.name('stream name'),
    default: 'APPROVED',
    doc: 'stream, created if missing; an existing stream without the subjects is a start-up error (never changed)',
  },
  TRANSMITTER_NATS_SUBJECTS: {
    option: 'natsSubjects',
    kind: kind.subjects(),
    default: 'approved.>',
    doc: 'subjects of the stream, comma separated',
  },
  TRANSMITTER_NATS_DURABLE: {
    option: 'natsDurable',
    kind: kind.name('consumer name'),
    default: 'transmitter',
    doc: 'durable consumer, created if missing',
  },
  TRANSMITTER_NATS_ACK_WAIT_S: {
    option: 'natsAckWaitS',
    kind: kind.seconds(1),
    shownDefault: '2 x interval + 60',
    doc: 'consumer `ack_wait`',
  },
  TRANSMITTER_NATS_USER: { option: 'natsUser', kind: kind.text(), doc: 'NATS user' },
  TRANSMITTER_NATS_PASSWORD: {
    option: 'natsPassword',
    kind: kind.text(),
    secret: (c) => [c.nats?.password],
    doc: 'NATS password (never logged)',
  },
  TRANSMITTER_NATS_TOKEN: {
    option: 'natsToken',
    kind: kind.text(),
    secret: (c) => [c.nats?.token],
    doc: 'NATS token (never logged)',
  },
  TRANSMITTER_NATS_CREDS: { option: 'natsCreds', kind: kind.text(), doc: 'NATS credentials file' },
  TRANSMITTER_NATS_TLS_CA: {
    option: 'natsTlsCa',
    kind: kind.text(),
    doc: 'CA bundle to verify the NATS servers',
  },
  TRANSMITTER_DESTINATION_URL: {
    option: 'destinationUrl',
    kind: kind.httpsUrl(),
    required: { hint: 'the https:// URL batches are POSTed to' },
    secret: (c) => urlSecrets(c.destination.url),
    doc: 'where batches are POSTed; `https://` (or `http://` with `TRANSMITTER_ALLOW_INSECURE_HTTP`)',
  },
  TRANSMITTER_AUTH_TOKEN: {
    option: 'authToken',
    kind: kind.text(),
    secret: (c) => [c.destination.authToken],
    doc: 'bearer token (never logged)',
  },
  TRANSMITTER_CLIENT_CERT: {
    option: 'clientCert',
    kind: kind.text(),
    doc: 'mTLS client certificate (PEM), set with the key or neither; a file that fails to load stops start-up',
  },
  TRANSMITTER_CLIENT_KEY: {
    option: 'clientKey',
    kind: kind.text(),
    doc: 'mTLS client key (PEM), set with the certificate or neither',
  },
  TRANSMITTER_CA_CERT: {
    option: 'caCert',
    kind: kind.text(),
    doc: 'CA bundle to verify the endpoint (system CAs otherwise)',
  },
  TRANSMITTER_ALLOW_INSECURE_HTTP: {
    option: 'allowInsecureHttp',
    kind: kind.bool(),
    default: 'false',
    doc: 'allow an `http://` destination',
  },
  TRANSMITTER_HEADERS: {
    option: 'headers',
    kind: kind.headers(),
    secret: (c) => headerSecrets(c.destination.headers),
    doc: 'extra static headers, a JSON object of strings (values of 4 or more characters are never logged)',
  },
  TRANSMITTER_COMPRESSION: {
    option: 'compression',
    kind: kind.choice(['gzip', 'none']),
    default: 'gzip',
    doc: '`gzip` or `none`',
  },
  TRANSMITTER_GZIP_LEVEL: {
    option: 'gzipLevel',
    kind: kind.int(1, 9),
    default: '1',
    doc: 'gzip level of the batch bodies (with `gzip`): 1 is the fastest, 9 the smallest (level 6 makes bodies ~13% smaller for 2-3 times the CPU)',
  },
  TRANSMITTER_BODY_FORMAT: {
    kind: kind.choice(['batch', 'discoveries']),
    default: 'batch',
    doc: '`batch` (the wire format above) or `discoveries`: `{"discoveries":[...]}` for receivers that expect the transmitter service\'s body',
  },
  TRANSMITTER_BATCH_SIZE: {
    option: 'batchSize',
    kind: kind.int(1, 1_000_000),
    default: '1000',
    doc: 'items per batch',
  },
  TRANSMITTER_BATCH_MAX_BYTES: {
    option: 'batchMaxBytes',
    kind: kind.int(1024),
    default: '5242880',
    doc: 'uncompressed bytes per batch body',
  },
  TRANSMITTER_BATCH_INTERVAL_S: {
    option: 'batchIntervalS',
    kind: kind.seconds(0.001),
    default: '30',
    doc: 'seal a non-empty batch this long after its first item',
  },
  TRANSMITTER_CONCURRENCY: {
    option: 'concurrency',
    kind: kind.concurrency(256),
    default: '2',
    doc: 'batches in flight to the destination, or `adaptive`: the limit follows the destination (additive increase while round trips stay near their best, multiplicative decrease when they rise or on 429/5xx/timeouts; 1..64)',
  },
  TRANSMITTER_REQUEST_TIMEOUT_S: {
    option: 'requestTimeoutS',
    kind: kind.seconds(0.001),
    default: '30',
    doc: 'per-request timeout',
  },
  TRANSMITTER_RETRY_MAX_ATTEMPTS: {
    option: 'retryMaxAttempts',
    kind: kind.int(1, 1000),
    default: '10',
    doc: 'attempts before a batch is parked (kept, swept again)',
  },
  TRANSMITTER_RETRY_INITIAL_DELAY_S: {
    option: 'retryInitialDelayS',
    kind: kind.seconds(0),
    default: '1',
    doc: 'first retry delay; backoff `min(max, initial * multiplier^(n-1))`, ±20% jitter',
  },
  TRANSMITTER_RETRY_BACKOFF_MULTIPLIER: {
    option: 'retryBackoffMultiplier',
    kind: kind.positiveNumber(),
    default: '2',
    doc: 'backoff multiplier',
  },
  TRANSMITTER_RETRY_MAX_DELAY_S: {
    option: 'retryMaxDelayS',
    kind: kind.seconds(0),
    default: '300',
    doc: 'longest retry delay, at least the initial delay',
  },
  TRANSMITTER_CIRCUIT_FAILURE_THRESHOLD: {
    option: 'circuitFailureThreshold',
    kind: kind.int(1, 10_000),
    default: '5',
    doc: 'consecutive failures that open the breaker',
  },
  TRANSMITTER_CIRCUIT_RESET_TIMEOUT_S: {
    option: 'circuitResetTimeoutS',
    kind: kind.seconds(0.001),
    default: '60',
    doc: 'first wait before a probe (doubles per failed probe, capped at the retry max delay)',
  },
  TRANSMITTER_SHUTDOWN_TIMEOUT_S: {
    option: 'shutdownTimeoutS',
    kind: kind.seconds(0),
    default: '10',
    doc: 'how long SIGTERM (or `close()`) waits for deliveries; the rest stays spooled',
  },
  TRANSMITTER_READY_MAX_UNREACHABLE_S: {
    kind: kind.seconds(0),
    default: '300',
    doc: '`/ready` fails once every attempt to the destination has failed for longer than this',
  },
  TRANSMITTER_SPOOL_DIR: {
    option: 'spoolDir',
    kind: kind.text(),
    default: './spool',
    required: { hint: 'the spool directory; one emitter per directory', embeddedOnly: true },
    doc: 'spool directory (created 0700); never shared by two processes',
  },
  TRANSMITTER_SPOOL_MAX_BYTES: {
    option: 'spoolMaxBytes',
    kind: kind.int(1024 * 1024),
    default: '1073741824',
    doc: 'spool size at which intake pauses',
  },
  TRANSMITTER_DATABASE_URL: {
    option: 'databaseUrl',
    kind: kind.postgresUrl(),
    secret: (c) => [urlPassword(c.databaseUrl)],
    doc: 'the batch ledger (one row per batch, updated through its life): unset = a LevelDB beside the spool (`<spool>/ledger`, 7 days / 100,000 records); `postgresql://...` = the table `transmitter.batches`, created if missing',
  },
  TRANSMITTER_PROBE_ID: {
    option: 'probeId',
    kind: kind.text(),
    default: () => hostname(),
    shownDefault: 'host name',
    doc: 'copied into every batch',
  },
  TRANSMITTER_RUN_ID: {
    option: 'runId',
    kind: kind.text(),
    default: runId,
    shownDefault: '`run-<UTC timestamp>`',
    doc: 'copied into every batch',
  },
  TRANSMITTER_DEBUG: {
    kind: kind.bool(),
    default: 'false',
    doc: 'serve `/debug`, `/debug/machines` and `/debug/trace`',
  },
  TRANSMITTER_INSPECT: {
    option: 'inspect',
    kind: kind.wsUrl(),
    secret: (c) => urlSecrets(c.inspectUrl),
    doc: 'a Stately inspector (`ws://` or `wss://`) to stream the buffer, delivery, breaker and limiter statecharts to, without item bodies (see "Statecharts"); unset = off',
  },
  TRANSMITTER_LOG_LEVEL: {
    option: 'logLevel',
    kind: kind.choice(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']),
    default: 'info',
    doc: 'pino level',
  },
} as const satisfies Record<`TRANSMITTER_${string}`, OptionSpec>;

export type Options = typeof OPTIONS;
export type VariableName = keyof Options;

export const VARIABLES = Object.keys(OPTIONS) as VariableName[];

type Has<K extends VariableName, F extends string> = Options[K] extends Record<F, unknown> ? true : false;

/** Every value once read: unset optional ones are undefined. */
export type Values = {
  [K in VariableName]: Has<K, 'default'> extends true
    ? z.output<Options[K]['kind']['value']>
    : Has<K, 'required'> extends true
      ? z.output<Options[K]['kind']['value']>
      : z.output<Options[K]['kind']['value']> | undefined;
};
