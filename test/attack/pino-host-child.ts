import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';

/**
 * Child process of test/attack/pino-transport.test.ts: a host logging ATTACK_LINES lines through
 * the batch-emitter pino transport (options: JSON in ATTACK_OPTIONS), then, by ATTACK_MODE:
 * `exit` calls process.exit(0) at once; `stay` prints `logged` and keeps running until a signal
 * (no handler of its own: what a plain pino host does; with ATTACK_SIGTERM=exit it handles SIGTERM
 * with process.exit(0), as the README advises). Run with `node --import tsx`.
 */

const target = fileURLToPath(new URL('../fixtures/pino-target.mjs', import.meta.url));
const options = JSON.parse(process.env.ATTACK_OPTIONS ?? '{}') as Record<string, unknown>;
const lines = Number(process.env.ATTACK_LINES ?? '10000');
const mode = process.env.ATTACK_MODE ?? 'exit';

if (process.env.ATTACK_SIGTERM === 'exit') process.on('SIGTERM', () => process.exit(0));

const logger = pino({ level: 'trace', transport: { target, options } });
const padBytes = Number(process.env.ATTACK_PAD ?? '0');
const started = Date.now();
for (let i = 0; i < lines; i++)
  logger.info({ n: i, pad: randomBytes(padBytes).toString('base64') }, `line ${i}`);
process.stdout.write(`logged ${Date.now() - started} ms\n`);
if (mode === 'exit') process.exit(0);
else setInterval(() => undefined, 60_000);
