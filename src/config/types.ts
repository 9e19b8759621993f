/**
 * The validated configuration the stages read. It holds numbers in milliseconds and parsed lists;
 * nothing here reads the environment.
 */

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
    /** 1 (fastest) .. 9 (smallest) */
    gzipLevel: number;
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
  /** a Stately inspector's WebSocket URL the statecharts stream to; undefined = off */
  inspectUrl?: string;
}

/** The parts of a configuration that hold secret values. */
export interface SecretSettings {
  destination: { url?: string; authToken?: string; headers: Record<string, string> };
  nats?: { password?: string; token?: string };
  databaseUrl?: string;
  inspectUrl?: string;
}
