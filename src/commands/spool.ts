import { decodeBody } from '../batch-codec.js';
import type { BatchState, Spool } from '../spool.js';
import {
  CommandError,
  EXIT_CORRUPT,
  EXIT_OK,
  iso,
  out,
  parseArgs,
  spoolDirFromEnv,
  withSpool,
} from './common.js';

/**
 * `batch-emitter spool list|stats|verify`: read-only views of the spooled (undelivered) batches.
 * None of them writes a record: undecodable records are reported, not quarantined.
 */

export const SPOOL_USAGE = `batch-emitter spool list [--json]
  batch-emitter spool stats [--json]
  batch-emitter spool verify`;

type Prepared = (spool: Spool) => Promise<number>;

function row(id: string, state: BatchState | undefined) {
  if (!state) return { id, error: 'state record does not decode' };
  return {
    id,
    createdAt: state.createdAt,
    items: state.itemCount,
    storedBytes: state.storedBytes,
    attempts: state.attempts,
    parked: state.parked ?? false,
    notBefore: iso(state.notBefore) ?? null,
    lastError: state.lastError ?? null,
  };
}

function line(r: ReturnType<typeof row>): string {
  if ('error' in r) return `${r.id}  ${r.error}`;
  return [
    r.id,
    r.createdAt,
    `items=${r.items}`,
    `bytes=${r.storedBytes}`,
    `attempts=${r.attempts}`,
    `parked=${r.parked ? 'yes' : 'no'}`,
    `notBefore=${r.notBefore ?? '-'}`,
    `lastError=${r.lastError === null ? '-' : JSON.stringify(r.lastError)}`,
  ].join('  ');
}

function list(args: string[]): Prepared {
  const { positional, flags } = parseArgs(args, { flags: ['--json'] }, 'batch-emitter spool list [--json]');
  if (positional.length > 0) throw new CommandError(`unexpected argument ${positional[0]}`);
  return async (spool) => {
    const rows = (await spool.inspectStates()).map(({ id, state }) => row(id, state));
    if (flags.has('--json')) out(JSON.stringify(rows, null, 2));
    else if (rows.length === 0) out('no spooled batches');
    else out(...rows.map(line));
    return EXIT_OK;
  };
}

function stats(args: string[]): Prepared {
  const { positional, flags } = parseArgs(args, { flags: ['--json'] }, 'batch-emitter spool stats [--json]');
  if (positional.length > 0) throw new CommandError(`unexpected argument ${positional[0]}`);
  return async (spool) => {
    const s = await spool.stats();
    if (flags.has('--json')) {
      out(JSON.stringify({ dir: spool.dir, ...s }, null, 2));
    } else {
      out(
        `dir: ${spool.dir}`,
        `batches: ${s.batches}`,
        `bytes: ${s.bytes}`,
        `oldestCreatedAt: ${s.oldestCreatedAt ?? '-'}`,
        `deadLetters: ${s.deadLetters}`,
        `quarantined: ${s.quarantined}`,
      );
    }
    return EXIT_OK;
  };
}

function verify(args: string[]): Prepared {
  const { positional } = parseArgs(args, {}, 'batch-emitter spool verify');
  if (positional.length > 0) throw new CommandError(`unexpected argument ${positional[0]}`);
  return async (spool) => {
    const records = (await spool.inspectStates()).length;
    const problems = await spool.verify(async (state, body) => {
      await decodeBody(state, body);
    });
    for (const p of problems) out(`${p.key}: ${p.reason}`);
    if (problems.length === 0) {
      out(`spool ${spool.dir}: ${records} batch record(s), all decode`);
      return EXIT_OK;
    }
    out(`spool ${spool.dir}: ${problems.length} problem(s) in ${records} batch record(s) and the quarantine`);
    return EXIT_CORRUPT;
  };
}

const SUBCOMMANDS: Record<string, (args: string[]) => Prepared> = { list, stats, verify };

export async function spoolCommand(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [sub, ...rest] = args;
  const prepare = sub === undefined ? undefined : SUBCOMMANDS[sub];
  if (!prepare) {
    throw new CommandError(
      sub === undefined
        ? `spool needs a command: list, stats or verify; see batch-emitter --help`
        : `unknown spool command ${JSON.stringify(sub)}; see batch-emitter --help`,
    );
  }
  const run = prepare(rest);
  return withSpool(spoolDirFromEnv(env), run);
}
