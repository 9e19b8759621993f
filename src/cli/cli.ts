import { isOperatorCommand, runOperatorCommand } from './operator.js';
import { runMachinesCommand } from './machines.js';
import { usageFrom, wantsHelp } from './usage.js';
import { ConfigError, loadConfig, secretsOf, variablesHelp } from '../config/index.js';
import { Emitter } from '../emitter.js';
import { startServer } from '../observe/server.js';
import { createMetrics } from '../observe/metrics.js';
import { Redactor } from '../util/redact.js';
import { TransportConfigError } from '../delivery/http-transport.js';
import { SpoolDestinationError } from '../spool/destination.js';
import { VERSION } from '../util/version.js';
import { watchNpmParent } from '../util/parent-watch.js';

const HELP = `batch-emitter ${VERSION}

Usage:
  batch-emitter run            consume approved.* from NATS JetStream, spool, deliver (npm start)
  batch-emitter run --help     the TRANSMITTER_* variables run reads: default and meaning
  batch-emitter --help         this text
  batch-emitter --version      the version
  batch-emitter machines [--format mermaid|json] [--machine buffer|delivery|breaker|limiter[,...]] [--out DIR]
                               the buffer, delivery, breaker and limiter statecharts from their definitions:
                               Mermaid stateDiagram-v2 (default) or JSON graphs; needs no variable;
                               --out DIR writes one <machine>.mmd each, every file a diagram of its own

Operator commands (the emitter must be stopped: LevelDB allows one process per spool):
  batch-emitter dlq list [--json]                      dead letters: id, kind, at, status, items, subjects, reason
  batch-emitter dlq show <id> [--body]                 one dead letter as JSON; a batch's body summarised
                                                       (--body: the whole document)
  batch-emitter dlq replay <id> | --all | --reason <substring>
                                                       dead-lettered batches back into the spool with a fresh
                                                       attempt count (delivered at the next start); message
                                                       dead letters (invalid input) are skipped and kept
  batch-emitter dlq purge <id> | --all | --reason <substring> [--yes]
                                                       delete dead letters; without --yes only a dry run
  batch-emitter spool list [--json]                    spooled batches: id, createdAt, items, bytes, attempts,
                                                       parked, notBefore, lastError
  batch-emitter spool stats [--json]                   destination, totals: batches, bytes, oldest, dead letters,
                                                       quarantined
  batch-emitter spool verify                           decode every record, print each problem, change nothing;
                                                       exit 0 when clean, 3 when any record does not decode
  batch-emitter spool quarantine list [--json] | show <id> | purge <id> | --all [--yes]
                                                       batches set aside as unreadable (never sent): list,
                                                       one with what was kept of it, or delete them (without
                                                       --yes only a dry run)
  batch-emitter spool retarget [--yes]                 bind the spool to TRANSMITTER_DESTINATION_URL (its batches
                                                       go there at the next start); without --yes only a dry run
  batch-emitter spool repair [--yes]                   a spool LevelDB will not open (a data file or CURRENT
                                                       deleted, a disk that lost blocks): rebuild its index from
                                                       the files left (records only in missing files are gone),
                                                       then say what it holds; without --yes only a dry run
  --reason matches a case-insensitive substring of the dead letter's reason (e.g. http_400).

Tracing and the ledger:
  batch-emitter trace <batch-id | stream-seq | --subject S --seq N> [--json] [--url U]
                                                       the story of one batch or message: received, sealed
                                                       (trigger), spooled, each attempt (status, duration,
                                                       breaker), and the end: delivered, split, dead-lettered,
                                                       parked, quarantined or still in the stream. Reads a
                                                       stopped spool directly; while an emitter holds it, asks
                                                       its GET /debug/trace (TRANSMITTER_DEBUG=true) at
                                                       TRANSMITTER_SERVER_HOST:PORT, or at --url
  batch-emitter ledger list [--status S] [--since T] [--limit N] [--json]
                                                       ledger records, newest first: id, status, items, bytes,
                                                       http, attempts, created_at, sent_at, completed_at, error;
                                                       --since an ISO time or a span (15m, 2h, 7d); limit 100
  batch-emitter ledger show <batch-id>                 one record as JSON with its trace facts
  The ledger is the one the service uses: PostgreSQL with TRANSMITTER_DATABASE_URL, else the
  LevelDB <TRANSMITTER_SPOOL_DIR>/ledger (which, like the spool, needs the emitter stopped).

Configuration is read from TRANSMITTER_* environment variables (see README.md);
TRANSMITTER_DESTINATION_URL is required for run. The operator commands read only
TRANSMITTER_SPOOL_DIR (default ./spool; spool retarget also TRANSMITTER_DESTINATION_URL); they
exit 1 when the spool is missing or in use. A bad value, or an unknown TRANSMITTER_* variable,
exits with code 2 and a line naming it.
SIGTERM / SIGINT: stop intake, seal the open batch, wait for deliveries (bounded), exit 0;
exit 1 when the spool kept failing until the shutdown timeout or its directory was replaced
(what could not be written stays unacknowledged in JetStream).
A second SIGTERM / SIGINT stops waiting for deliveries (what is undelivered stays spooled).
SIGHUP is logged and ignored (there is nothing to reload). Started by npm or npx, it stops as on
SIGTERM when that npm process is gone.
`;

const RUN_HELP = `batch-emitter run: the variables it reads (an empty one with a default is refused)

`;

export const EXIT_CONFIG = 2;

/** One line for an operator: what is wrong, never a stack trace, never a secret. */
function startupFailure(error: unknown, redactor = new Redactor([])): { line: string; code: number } {
  const message = redactor.scrub((error as Error).message);
  if (error instanceof ConfigError || error instanceof TransportConfigError)
    return { line: `batch-emitter: invalid configuration: ${message}`, code: EXIT_CONFIG };
  if (error instanceof SpoolDestinationError)
    return { line: `batch-emitter: refusing to start: ${message}`, code: EXIT_CONFIG };
  return { line: `batch-emitter: cannot start: ${message}`, code: 1 };
}

/**
 * Every signal is logged. The first SIGTERM or SIGINT starts the stop (the promise resolves with
 * it); another during the stop hurries it: no more waiting for deliveries, the spool still closed
 * cleanly. SIGHUP (a service manager's "reload") is ignored: there is nothing to reload. Started by
 * npm or npx, the loss of that npm process stops it as a SIGTERM would (src/util/parent-watch.ts).
 */
function watchSignals(emitter: Emitter): Promise<NodeJS.Signals> {
  const { logger } = emitter;
  return new Promise((resolve) => {
    let stopping = false;
    let endParentWatch = (): void => undefined;
    const stop = (signal: NodeJS.Signals): void => {
      if (!stopping) {
        stopping = true;
        endParentWatch();
        logger.info({ signal }, 'stopping');
        resolve(signal);
        return;
      }
      logger.warn(
        { signal },
        `${signal} again while stopping: hurrying: not waiting for deliveries any longer; ` +
          'the spool is still closed cleanly and keeps every undelivered batch for the next start',
      );
      emitter.hurry();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    process.on('SIGHUP', (signal) => logger.warn({ signal }, 'SIGHUP ignored: nothing to reload'));
    endParentWatch = watchNpmParent({ logger, onGone: () => stop('SIGTERM') });
  });
}

async function run(): Promise<number> {
  let emitter: Emitter;
  try {
    emitter = new Emitter(loadConfig());
    // every refusal of the configuration comes before the HTTP server and the spool are opened
    emitter.checkConfig();
  } catch (error) {
    const { line, code } = startupFailure(error);
    process.stderr.write(`${line}\n`);
    return code;
  }
  const stopped = watchSignals(emitter);
  const { config } = emitter;
  const status = emitter.statusSource();
  const metrics = createMetrics(emitter.events, () => emitter.statusSnapshot(), {
    jetstreamPending: () => status.jetstreamPending?.() ?? Promise.resolve(undefined),
    spoolStats: () => status.spoolStats?.() ?? Promise.resolve(undefined),
  });
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  try {
    // the server answers /health during replay; /ready stays 503 until the consumer is bound
    server = await startServer({
      host: config.server.host,
      port: config.server.port,
      maxConnections: config.server.maxConnections,
      status,
      events: emitter.events,
      metrics,
      debug: config.debug,
      logger: emitter.logger,
      redact: secretsOf(config),
    });
    await emitter.start();
  } catch (error) {
    await server?.close();
    metrics.close();
    const { line, code } = startupFailure(error, new Redactor(secretsOf(config)));
    process.stderr.write(`${line}\n`);
    return code;
  }
  emitter.logger.info(
    { version: VERSION, destination: new URL(config.destination.url).origin, http: server.url },
    'running',
  );
  await stopped;
  await emitter.close();
  await server.close();
  metrics.close();
  // what close could not make durable stays unacknowledged in the stream: say so to the supervisor
  return emitter.closedDurably ? 0 : 1;
}

export async function main(argv: string[]): Promise<number> {
  // spool, dead-letter and ledger files are readable by the owner only, whichever command writes them
  process.umask(0o077);
  const [command] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(HELP);
    return command === undefined ? 1 : 0;
  }
  if (command === '--version') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  if (wantsHelp(argv.slice(1))) {
    const usage = command === 'run' ? `${RUN_HELP}${variablesHelp()}` : usageFrom(HELP, command);
    if (usage !== undefined) {
      process.stdout.write(usage);
      return 0;
    }
  }
  if (command === 'run') {
    if (argv.length === 1) return run();
    process.stderr.write(
      `batch-emitter: run takes no arguments, not ${argv[1]}; see batch-emitter run --help\n`,
    );
    return EXIT_CONFIG;
  }
  if (isOperatorCommand(command)) return runOperatorCommand(command, argv.slice(1));
  if (command === 'machines') return runMachinesCommand(argv.slice(1));
  process.stderr.write(
    `batch-emitter: unknown command ${JSON.stringify(command)}; see batch-emitter --help\n`,
  );
  return 1;
}
