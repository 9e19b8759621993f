/** The TRANSMITTER_* environment of an emitter under test: fast batches, a loopback sink. */
export function testEnv(opts: {
  natsUrl?: string;
  sinkUrl: string;
  spoolDir: string;
  extra?: Record<string, string>;
}): Record<string, string> {
  return {
    TRANSMITTER_NATS_URL: opts.natsUrl ?? 'none',
    TRANSMITTER_DESTINATION_URL: opts.sinkUrl,
    TRANSMITTER_ALLOW_INSECURE_HTTP: 'true',
    TRANSMITTER_SPOOL_DIR: opts.spoolDir,
    TRANSMITTER_SERVER_HOST: '127.0.0.1',
    TRANSMITTER_SERVER_PORT: '0',
    TRANSMITTER_BATCH_SIZE: '500',
    TRANSMITTER_BATCH_INTERVAL_S: '0.2',
    TRANSMITTER_RETRY_INITIAL_DELAY_S: '0.05',
    TRANSMITTER_RETRY_MAX_DELAY_S: '0.5',
    TRANSMITTER_CIRCUIT_RESET_TIMEOUT_S: '0.2',
    TRANSMITTER_NATS_ACK_WAIT_S: '3',
    TRANSMITTER_PROBE_ID: 'probe-test',
    TRANSMITTER_RUN_ID: 'run-test',
    TRANSMITTER_LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
    ...opts.extra,
  };
}
