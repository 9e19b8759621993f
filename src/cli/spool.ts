import { loadVariable } from '../config/index.js';
import { decodeBody } from '../spool/batch-codec.js';
import { destinationKey, type BatchState } from '../spool/spool.js';
import { repairCommand } from './spool-repair.js';
import {
  CommandError,
  EXIT_CORRUPT,
  EXIT_FAILED,
  EXIT_OK,
  iso,
  out,
  parseArgs,
  runOnSpool,
  type Prepared,
  type Subcommands,
} from './common.js';

/**
 * `batch-emitter spool list|stats|verify`: read-only views of the spooled (undelivered) batches;
 * undecodable records are reported, not quarantined. `spool quarantine list|show|purge`: the
 * batches the emitter set aside as unreadable; purge (with --yes) is the only command here that
 * writes.
 */

const QUARANTINE_PURGE_USAGE = 'batch-emitter spool quarantine purge <id> | --all [--yes]';

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
    const rows = (await spool.batches.inspect()).map(({ id, state }) => row(id, state));
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
    const destination = (await spool.destination.recorded()) ?? null;
    if (flags.has('--json')) {
      out(JSON.stringify({ dir: spool.dir, destination, ...s }, null, 2));
    } else {
      out(
        `dir: ${spool.dir}`,
        `destination: ${destination ?? '- (none recorded yet)'}`,
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
    const records = (await spool.batches.inspect()).length;
    const problems = await spool.verify(async (state, body) => {
      await decodeBody(state, body);
    });
    for (const p of problems) out(`${p.key}: ${p.reason}`);
    if (problems.length === 0) {
      out(`spool ${spool.dir}: ${records} batch record(s), all decode`);
      return EXIT_OK;
    }
    out(`spool ${spool.dir}: ${problems.length} problem(s) in ${records} batch record(s) and the quarantine`);
    if (problems.some((p) => p.reason.startsWith('quarantined earlier')))
      out('quarantined batches are never sent: inspect them with `batch-emitter spool quarantine show <id>`');
    return EXIT_CORRUPT;
  };
}

function quarantineList(args: string[]): Prepared {
  const usage = 'batch-emitter spool quarantine list [--json]';
  const { positional, flags } = parseArgs(args, { flags: ['--json'] }, usage);
  if (positional.length > 0) throw new CommandError(`unexpected argument ${positional[0]}`);
  return async (spool) => {
    const kept = await spool.quarantine.list();
    const rows = kept.map(({ id, reason, bodyBase64 }) => ({
      id,
      reason,
      hasBody: bodyBase64 !== undefined,
    }));
    if (flags.has('--json')) out(JSON.stringify(rows, null, 2));
    else if (rows.length === 0) out('no quarantined batches');
    else
      out(
        ...rows.map(
          (r) => `${r.id}  body=${r.hasBody ? 'kept' : 'none'}  reason=${JSON.stringify(r.reason)}`,
        ),
      );
    return EXIT_OK;
  };
}

function quarantineShow(args: string[]): Prepared {
  const { positional } = parseArgs(args, {}, 'batch-emitter spool quarantine show <id>');
  const [id, extra] = positional;
  if (id === undefined || extra !== undefined) throw new CommandError('quarantine show needs one batch id');
  return async (spool) => {
    const found = (await spool.quarantine.list()).find((q) => q.id === id);
    if (!found) throw new CommandError(`no quarantined batch ${id}`);
    out(JSON.stringify(found, null, 2));
    return EXIT_OK;
  };
}

function quarantinePurge(args: string[]): Prepared {
  const { positional, flags } = parseArgs(args, { flags: ['--all', '--yes'] }, QUARANTINE_PURGE_USAGE);
  const all = flags.has('--all');
  if (all === (positional.length === 1) || positional.length > 1)
    throw new CommandError(`give one batch id or --all; usage: ${QUARANTINE_PURGE_USAGE}`);
  return async (spool) => {
    const chosen = (await spool.quarantine.list()).filter((q) => all || q.id === positional[0]);
    if (chosen.length === 0) {
      out('no quarantined batches match; nothing to delete');
      return EXIT_OK;
    }
    if (!flags.has('--yes')) {
      out(...chosen.map((q) => `would delete ${q.id}  reason=${JSON.stringify(q.reason)}`));
      out(`dry run: ${chosen.length} quarantined batch(es) would be deleted; add --yes to delete`);
      return EXIT_OK;
    }
    for (const q of chosen) {
      await spool.quarantine.purge(q.id);
      out(`deleted ${q.id}`);
    }
    return EXIT_OK;
  };
}

const RETARGET_USAGE = 'batch-emitter spool retarget [--yes]';

/**
 * Rebind the spool to TRANSMITTER_DESTINATION_URL: its batches (and dead letters replayed later)
 * go there at the next start. Without --yes only says what it would do, and exits 1.
 */
function retarget(args: string[], env: NodeJS.ProcessEnv): Prepared {
  const { positional, flags } = parseArgs(args, { flags: ['--yes'] }, RETARGET_USAGE);
  if (positional.length > 0)
    throw new CommandError(`unexpected argument ${positional[0]}; usage: ${RETARGET_USAGE}`);
  const configured = destinationKey(loadVariable('TRANSMITTER_DESTINATION_URL', env));
  return async (spool) => {
    const recorded = (await spool.destination.recorded()) ?? 'no recorded destination';
    const { batches, deadLetters, quarantined } = await spool.stats();
    const holds = `${batches} batch(es), ${deadLetters} dead letter(s), ${quarantined} quarantined batch(es)`;
    if (recorded === configured) {
      out(`spool ${spool.dir} is already bound to ${configured} (${holds})`);
      return EXIT_OK;
    }
    if (!flags.has('--yes')) {
      out(
        `would rebind spool ${spool.dir} from ${recorded} to ${configured}; ${holds} would go there`,
        'dry run: nothing changed; add --yes to rebind',
      );
      return EXIT_FAILED;
    }
    await spool.destination.record(configured);
    out(
      `spool ${spool.dir} rebound from ${recorded} to ${configured}; its ${holds} go there at the next start`,
    );
    return EXIT_OK;
  };
}

const QUARANTINE: Subcommands = {
  list: quarantineList,
  show: quarantineShow,
  purge: quarantinePurge,
};

function quarantine(args: string[], env: NodeJS.ProcessEnv): Prepared {
  const [sub, ...rest] = args;
  const prepare = sub === undefined ? undefined : QUARANTINE[sub];
  if (!prepare)
    throw new CommandError('spool quarantine needs list, show or purge; see batch-emitter --help');
  return prepare(rest, env);
}

const SUBCOMMANDS: Subcommands = { list, stats, verify, quarantine, retarget };

export function spoolCommand(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  // repair works on a spool that does not open: it cannot be one of the commands run on an open spool
  if (args[0] === 'repair') return repairCommand(args.slice(1), env);
  return runOnSpool('spool', SUBCOMMANDS, args, env);
}
