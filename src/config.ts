import { hostname } from 'node:os';
import { z } from 'zod';

/**
 * The service configuration: every TRANSMITTER_* variable of DESIGN.md, validated once at
 * start-up. A bad value becomes a ConfigError naming the variable and the expected form.
 */

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(
    readonly variable: string,
    detail: string,
  ) {
    super(`${variable}: ${detail}`);
    this.name = 'ConfigError';
  }
}

const bool = (name: string) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: `expected true or false` })
    .transform((v) => v === 'true' || v === '1' || v === 'yes')
    .describe(name);

const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .regex(/^\d+$/, { error: `expected a whole number between ${min} and ${max}` })
    .transform(Number)
    .pipe(
      z
        .number()
        .int()
        .min(min, { error: `expected a whole number between ${min} and ${max}` })
        .max(max, { error: `expected a whole number between ${min} and ${max}` }),
    );

const CONCURRENCY_FORM = 'expected a whole number between 1 and 256, or adaptive';

/** TRANSMITTER_CONCURRENCY: requests at once to the destination, or `adaptive` (AIMD, 1..64) */
const concurrency = z
  .string()
  .regex(/^(\d+|adaptive)$/, { error: CONCURRENCY_FORM })
  .transform((v) => (v === 'adaptive' ? v : Number(v)))
  .pipe(
    z.union([
      z.literal('adaptive'),
      z.number().int().min(1, { error: CONCURRENCY_FORM }).max(256, { error: CONCURRENCY_FORM }),
    ]),
  );

const seconds = (min: number) =>
  z
    .string()
    .regex(/^\d+(\.\d+)?$/, { error: `expected a number of seconds (fractions allowed), at least ${min}` })
    .transform(Number)
    .pipe(z.number().min(min, { error: `expected a number of seconds, at least ${min}` }));

const positiveNumber = z
  .string()
  .regex(/^\d+(\.\d+)?$/, { error: 'expected a positive number' })
  .transform(Number)
  .pipe(z.number().gt(0));

const optionalText = z.string().min(1).optional();

const urlList = z
  .string()
  .transform((v) =>
    v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  )
  .pipe(
    z
      .array(z.string().regex(/^(nats|tls|wss?):\/\/[^\s]+$/, { error: 'expected nats://host:port' }))
      .min(1, { error: 'expected nats://host:port[,nats://...] or none' }),
  );

const destination = z.url({ protocol: /^https?$/, error: 'expected an https:// (or http://) URL' });

const NOT_HEADERS = 'not a JSON object of strings (value not shown: it may hold secrets)';

// zod's own issues may quote a key or a value of the object: every failure gets the one fixed message
const headersJson = z
  .string()
  .transform((v, ctx) => {
    try {
      return JSON.parse(v) as unknown;
    } catch {
      ctx.addIssue({ code: 'custom', message: NOT_HEADERS });
      return z.NEVER;
    }
  })
  .pipe(z.record(z.string(), z.string(), { error: NOT_HEADERS }));

/** Variable name -> schema for its raw string value. Defaults are applied before parsing. */
const variables = {
  TRANSMITTER_SERVER_HOST: z.string().min(1),
  TRANSMITTER_SERVER_PORT: int(0, 65535),
  TRANSMITTER_SERVER_MAX_CONNECTIONS: int(1, 65535),
  TRANSMITTER_NATS_URL: z.union([z.literal('none'), urlList]),
  TRANSMITTER_NATS_STREAM: z.string().regex(/^[A-Za-z0-9_-]+$/, { error: 'expected a stream name' }),
  TRANSMITTER_NATS_SUBJECTS: z
    .string()
    .transform((v) =>
      v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.string().regex(/^[^\s]+$/)).min(1, { error: 'expected subject[,subject...]' })),
  TRANSMITTER_NATS_DURABLE: z.string().regex(/^[A-Za-z0-9_-]+$/, { error: 'expected a consumer name' }),
  TRANSMITTER_NATS_ACK_WAIT_S: seconds(1).optional(),
  TRANSMITTER_NATS_USER: optionalText,
  TRANSMITTER_NATS_PASSWORD: optionalText,
  TRANSMITTER_NATS_TOKEN: optionalText,
  TRANSMITTER_NATS_CREDS: optionalText,
  TRANSMITTER_NATS_TLS_CA: optionalText,
  TRANSMITTER_DESTINATION_URL: destination,
  TRANSMITTER_AUTH_TOKEN: optionalText,
  TRANSMITTER_CLIENT_CERT: optionalText,
  TRANSMITTER_CLIENT_KEY: optionalText,
  TRANSMITTER_CA_CERT: optionalText,
  TRANSMITTER_ALLOW_INSECURE_HTTP: bool('TRANSMITTER_ALLOW_INSECURE_HTTP'),
  TRANSMITTER_HEADERS: headersJson.optional(),
  TRANSMITTER_COMPRESSION: z.enum(['gzip', 'none'], { error: 'expected gzip or none' }),
  TRANSMITTER_BODY_FORMAT: z.enum(['batch', 'discoveries'], { error: 'expected batch or discoveries' }),
  TRANSMITTER_BATCH_SIZE: int(1, 1_000_000),
  TRANSMITTER_BATCH_MAX_BYTES: int(1024),
  TRANSMITTER_BATCH_INTERVAL_S: seconds(0.001),
  TRANSMITTER_CONCURRENCY: concurrency,
  TRANSMITTER_REQUEST_TIMEOUT_S: seconds(0.001),
  TRANSMITTER_RETRY_MAX_ATTEMPTS: int(1, 1000),
  TRANSMITTER_RETRY_INITIAL_DELAY_S: seconds(0),
  TRANSMITTER_RETRY_BACKOFF_MULTIPLIER: positiveNumber,
  TRANSMITTER_RETRY_MAX_DELAY_S: seconds(0),
  TRANSMITTER_CIRCUIT_FAILURE_THRESHOLD: int(1, 10_000),
  TRANSMITTER_CIRCUIT_RESET_TIMEOUT_S: seconds(0.001),
  TRANSMITTER_SHUTDOWN_TIMEOUT_S: seconds(0),
  TRANSMITTER_READY_MAX_UNREACHABLE_S: seconds(0),
  TRANSMITTER_SPOOL_DIR: z.string().min(1),
  TRANSMITTER_SPOOL_MAX_BYTES: int(1024 * 1024),
  TRANSMITTER_DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, { error: 'expected postgresql://user@host:port/db' })
    .optional(),
  TRANSMITTER_PROBE_ID: z.string().min(1),
  TRANSMITTER_RUN_ID: z.string().min(1),
  TRANSMITTER_DEBUG: bool('TRANSMITTER_DEBUG'),
  TRANSMITTER_LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], {
    error: 'expected trace, debug, info, warn, error, fatal or silent',
  }),
} as const;

type VariableName = keyof typeof variables;
type Parsed = { [K in VariableName]: z.output<(typeof variables)[K]> };

function runId(now: Date): string {
  return `run-${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}`;
}

function defaults(now: Date): Partial<Record<VariableName, string>> {
  return {
    TRANSMITTER_SERVER_HOST: '0.0.0.0',
    TRANSMITTER_SERVER_PORT: '8020',
    TRANSMITTER_SERVER_MAX_CONNECTIONS: '256',
    TRANSMITTER_NATS_URL: 'nats://127.0.0.1:4222',
    TRANSMITTER_NATS_STREAM: 'APPROVED',
    TRANSMITTER_NATS_SUBJECTS: 'approved.>',
    TRANSMITTER_NATS_DURABLE: 'transmitter',
    TRANSMITTER_ALLOW_INSECURE_HTTP: 'false',
    TRANSMITTER_COMPRESSION: 'gzip',
    TRANSMITTER_BODY_FORMAT: 'batch',
    TRANSMITTER_BATCH_SIZE: '1000',
    TRANSMITTER_BATCH_MAX_BYTES: '5242880',
    TRANSMITTER_BATCH_INTERVAL_S: '30',
    TRANSMITTER_CONCURRENCY: '2',
    TRANSMITTER_REQUEST_TIMEOUT_S: '30',
    TRANSMITTER_RETRY_MAX_ATTEMPTS: '10',
    TRANSMITTER_RETRY_INITIAL_DELAY_S: '1',
    TRANSMITTER_RETRY_BACKOFF_MULTIPLIER: '2',
    TRANSMITTER_RETRY_MAX_DELAY_S: '300',
    TRANSMITTER_CIRCUIT_FAILURE_THRESHOLD: '5',
    TRANSMITTER_CIRCUIT_RESET_TIMEOUT_S: '60',
    TRANSMITTER_SHUTDOWN_TIMEOUT_S: '10',
    TRANSMITTER_READY_MAX_UNREACHABLE_S: '300',
    TRANSMITTER_SPOOL_DIR: './spool',
    TRANSMITTER_SPOOL_MAX_BYTES: '1073741824',
    TRANSMITTER_PROBE_ID: hostname(),
    TRANSMITTER_RUN_ID: runId(now),
    TRANSMITTER_DEBUG: 'false',
    TRANSMITTER_LOG_LEVEL: 'info',
  };
}

export interface NatsConfig {
  servers: string[];
  stream: string;
  subjects: string[];
  durable: string;
  /** ack_wait of the consumer; derived from the batch interval when unset */
  ackWaitMs?: number;
  user?: string;
  password?: string;
  token?: string;
  credsFile?: string;
  tlsCaFile?: string;
}

export interface Config {
  /** the operator HTTP server; connections beyond maxConnections are closed on arrival */
  server: { host: string; port: number; maxConnections: number };
  /** undefined when TRANSMITTER_NATS_URL=none: in-process input only */
  nats?: NatsConfig;
  destination: {
    url: string;
    authToken?: string;
    clientCertPath?: string;
    clientKeyPath?: string;
    caCertPath?: string;
    allowInsecureHttp: boolean;
    headers: Record<string, string>;
    compression: 'gzip' | 'none';
    bodyFormat: 'batch' | 'discoveries';
    /** requests at once, or 'adaptive' */
    concurrency: number | 'adaptive';
    requestTimeoutMs: number;
  };
  batch: { maxItems: number; maxBytes: number; intervalMs: number };
  retry: { maxAttempts: number; initialDelayMs: number; multiplier: number; maxDelayMs: number };
  circuit: { failureThreshold: number; resetTimeoutMs: number };
  spool: { dir: string; maxBytes: number };
  /** how long close() waits for deliveries before leaving them in the spool */
  shutdownTimeoutMs: number;
  /** /ready fails once the destination has failed every attempt for longer than this */
  readyMaxUnreachableMs: number;
  databaseUrl?: string;
  probeId: string;
  runId: string;
  logLevel: string;
  /** serve /debug and /debug/machines */
  debug: boolean;
}

const ms = (s: number) => Math.round(s * 1000);

/** Variables whose values must never be echoed, even in an error. */
const SECRET_VARIABLES = new Set<string>([
  'TRANSMITTER_AUTH_TOKEN',
  'TRANSMITTER_NATS_PASSWORD',
  'TRANSMITTER_NATS_TOKEN',
  'TRANSMITTER_DATABASE_URL',
  'TRANSMITTER_HEADERS',
]);

/** Why a variable is refused: what is wrong, with its value only when the value cannot be a secret. */
function refusal(name: string, raw: string | undefined, expected: string): string {
  if (name === 'TRANSMITTER_HEADERS' && raw !== undefined) return NOT_HEADERS;
  return `${describeValue(name, raw)}; ${expected}`;
}

function describeValue(name: string, raw: string | undefined): string {
  if (raw === undefined) return 'is missing';
  if (SECRET_VARIABLES.has(name)) return 'has a value that is not valid';
  const withoutCredentials = raw.replace(/\/\/[^@/\s]*@/g, '//[redacted]@');
  const shown = withoutCredentials.length > 60 ? `${withoutCredentials.slice(0, 60)}...` : withoutCredentials;
  return `is ${JSON.stringify(shown)}`;
}

/** Why a pair of variables is inconsistent, or undefined when it is fine. */
function crossCheck(p: Parsed): ConfigError | undefined {
  if (p.TRANSMITTER_DESTINATION_URL.startsWith('http://') && !p.TRANSMITTER_ALLOW_INSECURE_HTTP) {
    return new ConfigError(
      'TRANSMITTER_DESTINATION_URL',
      'http:// is refused; use https:// or set TRANSMITTER_ALLOW_INSECURE_HTTP=true',
    );
  }
  if (Boolean(p.TRANSMITTER_CLIENT_CERT) !== Boolean(p.TRANSMITTER_CLIENT_KEY)) {
    const missing = p.TRANSMITTER_CLIENT_CERT ? 'TRANSMITTER_CLIENT_KEY' : 'TRANSMITTER_CLIENT_CERT';
    return new ConfigError(missing, 'must be set together with its pair for mTLS (cert and key)');
  }
  if (p.TRANSMITTER_RETRY_MAX_DELAY_S < p.TRANSMITTER_RETRY_INITIAL_DELAY_S) {
    return new ConfigError(
      'TRANSMITTER_RETRY_MAX_DELAY_S',
      'must be at least TRANSMITTER_RETRY_INITIAL_DELAY_S',
    );
  }
  return undefined;
}

/** Parse the environment. Throws ConfigError (never echoing a secret value). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, now = new Date()): Config {
  const defaultValues = defaults(now);
  const parsed: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(variables) as [VariableName, z.ZodType][]) {
    const raw = env[name] === '' ? undefined : (env[name] ?? defaultValues[name]);
    if (raw === undefined && name === 'TRANSMITTER_DESTINATION_URL') {
      throw new ConfigError(name, 'is required (the https:// URL batches are POSTed to)');
    }
    const result = schema.safeParse(raw);
    if (!result.success) {
      const expected = result.error.issues[0]?.message ?? 'invalid value';
      throw new ConfigError(name, refusal(name, raw, expected));
    }
    parsed[name] = result.data;
  }
  const p = parsed as Parsed;
  const inconsistency = crossCheck(p);
  if (inconsistency) throw inconsistency;
  return toConfig(p);
}

/**
 * nats.js v3 ignores credentials inside a server URL: take them out (so they are never logged)
 * and use them as user/password (or token) unless those variables are set.
 */
function splitCredentials(urls: string[]): {
  servers: string[];
  user?: string;
  password?: string;
  token?: string;
} {
  let user: string | undefined;
  let password: string | undefined;
  const servers = urls.map((raw) => {
    const url = new URL(raw);
    if (!url.username) return raw;
    user ??= decodeURIComponent(url.username);
    password ??= url.password ? decodeURIComponent(url.password) : undefined;
    return `${url.protocol}//${url.host}`;
  });
  if (user !== undefined && password === undefined) return { servers, token: user };
  return { servers, user, password };
}

function toConfig(p: Parsed): Config {
  const natsUrl = p.TRANSMITTER_NATS_URL;
  const natsAuth = natsUrl === 'none' ? undefined : splitCredentials(natsUrl);
  return {
    server: {
      host: p.TRANSMITTER_SERVER_HOST,
      port: p.TRANSMITTER_SERVER_PORT,
      maxConnections: p.TRANSMITTER_SERVER_MAX_CONNECTIONS,
    },
    nats:
      natsUrl === 'none'
        ? undefined
        : {
            servers: natsAuth?.servers ?? [],
            stream: p.TRANSMITTER_NATS_STREAM,
            subjects: p.TRANSMITTER_NATS_SUBJECTS,
            durable: p.TRANSMITTER_NATS_DURABLE,
            ackWaitMs:
              p.TRANSMITTER_NATS_ACK_WAIT_S === undefined ? undefined : ms(p.TRANSMITTER_NATS_ACK_WAIT_S),
            user: p.TRANSMITTER_NATS_USER ?? natsAuth?.user,
            password: p.TRANSMITTER_NATS_PASSWORD ?? natsAuth?.password,
            token: p.TRANSMITTER_NATS_TOKEN ?? natsAuth?.token,
            credsFile: p.TRANSMITTER_NATS_CREDS,
            tlsCaFile: p.TRANSMITTER_NATS_TLS_CA,
          },
    destination: {
      url: p.TRANSMITTER_DESTINATION_URL,
      authToken: p.TRANSMITTER_AUTH_TOKEN,
      clientCertPath: p.TRANSMITTER_CLIENT_CERT,
      clientKeyPath: p.TRANSMITTER_CLIENT_KEY,
      caCertPath: p.TRANSMITTER_CA_CERT,
      allowInsecureHttp: p.TRANSMITTER_ALLOW_INSECURE_HTTP,
      headers: p.TRANSMITTER_HEADERS ?? {},
      compression: p.TRANSMITTER_COMPRESSION,
      bodyFormat: p.TRANSMITTER_BODY_FORMAT,
      concurrency: p.TRANSMITTER_CONCURRENCY,
      requestTimeoutMs: ms(p.TRANSMITTER_REQUEST_TIMEOUT_S),
    },
    batch: {
      maxItems: p.TRANSMITTER_BATCH_SIZE,
      maxBytes: p.TRANSMITTER_BATCH_MAX_BYTES,
      intervalMs: ms(p.TRANSMITTER_BATCH_INTERVAL_S),
    },
    retry: {
      maxAttempts: p.TRANSMITTER_RETRY_MAX_ATTEMPTS,
      initialDelayMs: ms(p.TRANSMITTER_RETRY_INITIAL_DELAY_S),
      multiplier: p.TRANSMITTER_RETRY_BACKOFF_MULTIPLIER,
      maxDelayMs: ms(p.TRANSMITTER_RETRY_MAX_DELAY_S),
    },
    circuit: {
      failureThreshold: p.TRANSMITTER_CIRCUIT_FAILURE_THRESHOLD,
      resetTimeoutMs: ms(p.TRANSMITTER_CIRCUIT_RESET_TIMEOUT_S),
    },
    spool: { dir: p.TRANSMITTER_SPOOL_DIR, maxBytes: p.TRANSMITTER_SPOOL_MAX_BYTES },
    shutdownTimeoutMs: ms(p.TRANSMITTER_SHUTDOWN_TIMEOUT_S),
    readyMaxUnreachableMs: ms(p.TRANSMITTER_READY_MAX_UNREACHABLE_S),
    databaseUrl: p.TRANSMITTER_DATABASE_URL,
    probeId: p.TRANSMITTER_PROBE_ID,
    runId: p.TRANSMITTER_RUN_ID,
    logLevel: p.TRANSMITTER_LOG_LEVEL,
    debug: p.TRANSMITTER_DEBUG,
  };
}

/** Header values shorter than this are not treated as secrets: replacing a "2" would garble every number shown. */
export const MIN_HEADER_SECRET_CHARS = 4;

/** The parts of a configuration that hold secret values. */
export interface SecretSettings {
  destination: { authToken?: string; headers: Record<string, string> };
  nats?: { password?: string; token?: string };
  databaseUrl?: string;
}

/**
 * Every configured secret value: the auth token, the NATS password and token, the database
 * password and the value of every TRANSMITTER_HEADERS entry. The one list behind every Redactor
 * (logs, HTTP responses, dead letters, operator command output).
 */
export function secretsOf(config: SecretSettings): string[] {
  const headerValues = Object.values(config.destination.headers).filter(
    (value) => value.length >= MIN_HEADER_SECRET_CHARS,
  );
  return [
    config.destination.authToken,
    config.nats?.password,
    config.nats?.token,
    databasePassword(config.databaseUrl),
    ...headerValues,
  ].filter((secret): secret is string => secret !== undefined && secret !== '');
}

function databasePassword(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  try {
    const password = new URL(url).password;
    return password === '' ? undefined : decodeURIComponent(password);
  } catch {
    return undefined;
  }
}

/**
 * secretsOf for the operator commands, which do not load (or need) the whole configuration: each
 * secret variable that is set and valid counts; an invalid one is skipped, not an error.
 */
export function secretsOfEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  const valid = <K extends VariableName>(name: K): Parsed[K] | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === '') return undefined;
    const result = variables[name].safeParse(raw);
    return result.success ? (result.data as Parsed[K]) : undefined;
  };
  const natsUrl = valid('TRANSMITTER_NATS_URL');
  let fromUrl: ReturnType<typeof splitCredentials> | undefined;
  try {
    fromUrl = natsUrl === undefined || natsUrl === 'none' ? undefined : splitCredentials(natsUrl);
  } catch {
    fromUrl = undefined; // not a URL: it carries no credentials we could find
  }
  return secretsOf({
    destination: { authToken: valid('TRANSMITTER_AUTH_TOKEN'), headers: valid('TRANSMITTER_HEADERS') ?? {} },
    nats: {
      password: valid('TRANSMITTER_NATS_PASSWORD') ?? fromUrl?.password,
      token: valid('TRANSMITTER_NATS_TOKEN') ?? fromUrl?.token,
    },
    databaseUrl: valid('TRANSMITTER_DATABASE_URL'),
  });
}
