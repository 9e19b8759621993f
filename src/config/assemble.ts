import { ConfigError } from './error.js';
import type { Values, VariableName } from './options.js';
import type { Config, NatsConfig } from './types.js';

/**
 * From read values to the Config the stages use: the checks that involve two values, then the
 * shape (milliseconds, NATS credentials taken out of URLs). It never sees where values came from.
 */

type NameOf = (variable: VariableName) => string;

export function configOf(v: Values, nameOf: NameOf): Config {
  const inconsistency = crossCheck(v, nameOf);
  if (inconsistency) throw inconsistency;
  return toConfig(v);
}

/** Why a pair of values is inconsistent, or undefined when it is fine. */
function crossCheck(v: Values, nameOf: NameOf): ConfigError | undefined {
  if (v.TRANSMITTER_DESTINATION_URL.startsWith('http://') && !v.TRANSMITTER_ALLOW_INSECURE_HTTP) {
    return new ConfigError(
      nameOf('TRANSMITTER_DESTINATION_URL'),
      `http:// is refused; use https:// or set ${nameOf('TRANSMITTER_ALLOW_INSECURE_HTTP')}=true`,
    );
  }
  if (Boolean(v.TRANSMITTER_CLIENT_CERT) !== Boolean(v.TRANSMITTER_CLIENT_KEY)) {
    const missing = v.TRANSMITTER_CLIENT_CERT ? 'TRANSMITTER_CLIENT_KEY' : 'TRANSMITTER_CLIENT_CERT';
    return new ConfigError(nameOf(missing), 'must be set together with its pair for mTLS (cert and key)');
  }
  if (v.TRANSMITTER_RETRY_MAX_DELAY_S < v.TRANSMITTER_RETRY_INITIAL_DELAY_S) {
    return new ConfigError(
      nameOf('TRANSMITTER_RETRY_MAX_DELAY_S'),
      `must be at least ${nameOf('TRANSMITTER_RETRY_INITIAL_DELAY_S')}`,
    );
  }
  return undefined;
}

const ms = (s: number) => Math.round(s * 1000);

interface NatsCredentials {
  servers: string[];
  user?: string;
  password?: string;
  token?: string;
}

/**
 * nats.js v3 ignores credentials inside a server URL: take them out (so they are never logged)
 * and use them as user/password (or token) unless those variables are set.
 */
export function splitCredentials(urls: string[]): NatsCredentials {
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

function natsOf(v: Values): NatsConfig | undefined {
  if (v.TRANSMITTER_NATS_URL === 'none') return undefined;
  const fromUrl = splitCredentials(v.TRANSMITTER_NATS_URL);
  return {
    servers: fromUrl.servers,
    stream: v.TRANSMITTER_NATS_STREAM,
    subjects: v.TRANSMITTER_NATS_SUBJECTS,
    durable: v.TRANSMITTER_NATS_DURABLE,
    ackWaitMs: v.TRANSMITTER_NATS_ACK_WAIT_S === undefined ? undefined : ms(v.TRANSMITTER_NATS_ACK_WAIT_S),
    user: v.TRANSMITTER_NATS_USER ?? fromUrl.user,
    password: v.TRANSMITTER_NATS_PASSWORD ?? fromUrl.password,
    token: v.TRANSMITTER_NATS_TOKEN ?? fromUrl.token,
    credsFile: v.TRANSMITTER_NATS_CREDS,
    tlsCaFile: v.TRANSMITTER_NATS_TLS_CA,
  };
}

function destinationOf(v: Values): Config['destination'] {
  return {
    url: v.TRANSMITTER_DESTINATION_URL,
    authToken: v.TRANSMITTER_AUTH_TOKEN,
    clientCertPath: v.TRANSMITTER_CLIENT_CERT,
    clientKeyPath: v.TRANSMITTER_CLIENT_KEY,
    caCertPath: v.TRANSMITTER_CA_CERT,
    allowInsecureHttp: v.TRANSMITTER_ALLOW_INSECURE_HTTP,
    headers: v.TRANSMITTER_HEADERS ?? {},
    compression: v.TRANSMITTER_COMPRESSION,
    gzipLevel: v.TRANSMITTER_GZIP_LEVEL,
    bodyFormat: v.TRANSMITTER_BODY_FORMAT,
    concurrency: v.TRANSMITTER_CONCURRENCY,
    requestTimeoutMs: ms(v.TRANSMITTER_REQUEST_TIMEOUT_S),
  };
}

function toConfig(v: Values): Config {
  return {
    server: {
      host: v.TRANSMITTER_SERVER_HOST,
      port: v.TRANSMITTER_SERVER_PORT,
      maxConnections: v.TRANSMITTER_SERVER_MAX_CONNECTIONS,
    },
    nats: natsOf(v),
    destination: destinationOf(v),
    batch: {
      maxItems: v.TRANSMITTER_BATCH_SIZE,
      maxBytes: v.TRANSMITTER_BATCH_MAX_BYTES,
      intervalMs: ms(v.TRANSMITTER_BATCH_INTERVAL_S),
    },
    retry: {
      maxAttempts: v.TRANSMITTER_RETRY_MAX_ATTEMPTS,
      initialDelayMs: ms(v.TRANSMITTER_RETRY_INITIAL_DELAY_S),
      multiplier: v.TRANSMITTER_RETRY_BACKOFF_MULTIPLIER,
      maxDelayMs: ms(v.TRANSMITTER_RETRY_MAX_DELAY_S),
    },
    circuit: {
      failureThreshold: v.TRANSMITTER_CIRCUIT_FAILURE_THRESHOLD,
      resetTimeoutMs: ms(v.TRANSMITTER_CIRCUIT_RESET_TIMEOUT_S),
    },
    spool: { dir: v.TRANSMITTER_SPOOL_DIR, maxBytes: v.TRANSMITTER_SPOOL_MAX_BYTES },
    shutdownTimeoutMs: ms(v.TRANSMITTER_SHUTDOWN_TIMEOUT_S),
    readyMaxUnreachableMs: ms(v.TRANSMITTER_READY_MAX_UNREACHABLE_S),
    databaseUrl: v.TRANSMITTER_DATABASE_URL,
    probeId: v.TRANSMITTER_PROBE_ID,
    runId: v.TRANSMITTER_RUN_ID,
    logLevel: v.TRANSMITTER_LOG_LEVEL,
    debug: v.TRANSMITTER_DEBUG,
    inspectUrl: v.TRANSMITTER_INSPECT,
  };
}
