// pino: every log line becomes an event `log.<level>` (the line's JSON object as its data).
// The transport runs in pino's worker thread; when the process exits it flushes, waits for
// deliveries (at most closeTimeoutS, default 5 s) and closes. What is not delivered by then stays
// in the spool for the next start. Lines a full spool cannot take are counted on stderr.
import pino from 'pino';

// The worker sees no signals, and SIGTERM's default action (kill, systemd, Docker) ends the process
// before pino's exit handler runs: make it a normal exit, so the transport flushes its open batch.
process.on('SIGTERM', () => process.exit(0));

const logger = pino({
  transport: {
    target: 'batch-emitter/pino',
    options: {
      destinationUrl: process.env.DESTINATION_URL ?? 'https://logs.example.com/v1/batch',
      spoolDir: process.env.SPOOL_DIR ?? './log-spool',
      allowInsecureHttp: process.env.ALLOW_INSECURE_HTTP === 'true',
    },
  },
});

logger.info({ order: 1 }, 'order placed');
logger.warn({ order: 1, retry: 1 }, 'payment slow');
logger.error({ order: 2 }, 'payment refused');
