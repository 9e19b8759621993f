import { ConfigError, loadConfig } from './config.js';
import { Emitter } from './emitter.js';
import { startServer } from './http/server.js';
import { createMetrics } from './metrics.js';
import { TransportConfigError } from './transport/http-transport.js';
import { VERSION } from './version.js';

const HELP = `batch-emitter ${VERSION}

Usage:
  batch-emitter run            consume approved.* from NATS JetStream, spool, deliver (npm start)
  batch-emitter --help         this text
  batch-emitter --version      the version

Configuration is read from TRANSMITTER_* environment variables (see README.md);
TRANSMITTER_DESTINATION_URL is required. A bad value exits with code 2 and a line naming it.
SIGTERM / SIGINT: stop intake, seal the open batch, wait for deliveries (bounded), exit 0.
`;

export const EXIT_CONFIG = 2;

/** One line for an operator: what is wrong, never a stack trace, never a secret. */
function startupFailure(error: unknown): { line: string; code: number } {
  if (error instanceof ConfigError)
    return { line: `batch-emitter: invalid configuration: ${error.message}`, code: EXIT_CONFIG };
  if (error instanceof TransportConfigError)
    return { line: `batch-emitter: invalid configuration: ${error.message}`, code: EXIT_CONFIG };
  return { line: `batch-emitter: cannot start: ${(error as Error).message}`, code: 1 };
}

async function run(): Promise<number> {
  process.umask(0o077);
  let emitter: Emitter;
  try {
    emitter = new Emitter(loadConfig());
  } catch (error) {
    const { line, code } = startupFailure(error);
    process.stderr.write(`${line}\n`);
    return code;
  }
  const stopped = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  try {
    await emitter.start();
  } catch (error) {
    const { line, code } = startupFailure(error);
    process.stderr.write(`${line}\n`);
    return code;
  }
  emitter.logger.info(
    { version: VERSION, destination: new URL(emitter.config.destination.url).origin },
    'running',
  );
  const signal = await stopped;
  emitter.logger.info({ signal }, 'stopping');
  await emitter.close();
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [command] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(HELP);
    return command === undefined ? 1 : 0;
  }
  if (command === '--version') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  if (command === 'run') return run();
  process.stderr.write(
    `batch-emitter: unknown command ${JSON.stringify(command)}; see batch-emitter --help\n`,
  );
  return 1;
}
