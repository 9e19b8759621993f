/**
 * `npm run demo`: the main job end to end on this machine.
 *
 *   publisher --JetStream--> Emitter (batch, spool, ack, gzip POST, retry) --> loopback HTTP sink
 *
 * Uses the NATS server at TRANSMITTER_NATS_URL (default nats://127.0.0.1:4222) when one answers,
 * otherwise starts its own `nats-server -c nats.conf` on a free port with a temp store. Everything
 * the demo creates (stream, temp dirs, its nats-server, the sink) is removed at the end, also on
 * Ctrl-C (exit 130). The demo itself is scripts/demo/main.ts.
 *
 * `npm run demo` runs this file under the tsx CLI, which SIGKILLs its child when the child has not
 * acknowledged a Ctrl-C within ~60 ms: a demo busy publishing cannot promise that, and its cleanup
 * (the stream on a shared server, its nats-server, temp dirs) takes longer. So this process only
 * starts the demo in a child `node --import tsx` (no such deadline there), relays signals to it and
 * exits with its code.
 */
import { spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const USAGE =
  'usage: npm run demo\n' +
  '  TRANSMITTER_NATS_URL=<url>  the NATS server to use when it answers (default nats://127.0.0.1:4222);\n' +
  '                              otherwise the demo starts a private nats-server\n';

function parseCommandLine(): void {
  try {
    const { values } = parseArgs({ options: { help: { type: 'boolean', short: 'h' } }, strict: true });
    if (!values.help) return;
    process.stdout.write(USAGE);
    process.exit(0);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}`);
    process.exit(64);
  }
}

parseCommandLine();
const child = spawn(
  process.execPath,
  ['--import', import.meta.resolve('tsx'), fileURLToPath(new URL('./demo/main.ts', import.meta.url))],
  { stdio: 'inherit' },
);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
child.once('error', (error) => {
  process.stderr.write(`demo FAILED: cannot start node: ${error.message}\n`);
  process.exit(1);
});
child.once('exit', (code, signal) => process.exit(code ?? 128 + (signal ? osConstants.signals[signal] : 0)));
