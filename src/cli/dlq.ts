import { decodeBody } from '../spool/batch-codec.js';
import { SECTIONS } from '../model.js';
import type { DeadLetter, Spool, StoredDeadLetter } from '../spool/spool.js';
import {
  CommandError,
  complain,
  EXIT_CORRUPT,
  EXIT_FAILED,
  EXIT_OK,
  out,
  parseArgs,
  runOnSpool,
  type Prepared,
  type Subcommands,
} from './common.js';

/**
 * `batch-emitter dlq list|show|replay|purge`: the dead letters kept in the spool. Batches refused
 * permanently by the destination can be replayed (back into the spool, fresh attempt count; the
 * next start of the emitter delivers them). Message dead letters (invalid input from JetStream)
 * are kept for inspection only: replay skips them and never deletes them.
 */

const oneLine = (text: string) => text.replace(/\s+/g, ' ').trim();

function listLine(d: DeadLetter): string {
  const fields = [
    d.id,
    d.kind,
    d.at || '-',
    `status=${d.status ?? '-'}`,
    `items=${d.kind === 'batch' ? (d.batch?.itemCount ?? '?') : '-'}`,
    `subjects=${d.subjects.length > 0 ? d.subjects.join(',') : '-'}`,
    `reason=${JSON.stringify(oneLine(d.reason))}`,
  ];
  return fields.join('  ');
}

function listJson(d: DeadLetter) {
  return {
    id: d.id,
    kind: d.kind,
    at: d.at,
    reason: d.reason,
    status: d.status ?? null,
    items: d.kind === 'batch' ? (d.batch?.itemCount ?? null) : null,
    subjects: d.subjects,
  };
}

function list(args: string[]): Prepared {
  const { positional, flags } = parseArgs(args, { flags: ['--json'] }, 'batch-emitter dlq list [--json]');
  if (positional.length > 0) throw new CommandError(`unexpected argument ${positional[0]}`);
  return (spool) => listNow(spool, flags.has('--json'));
}

async function listNow(spool: Spool, json: boolean): Promise<number> {
  const letters = await spool.deadLetters.list();
  if (json) out(JSON.stringify(letters.map(listJson), null, 2));
  else if (letters.length === 0) out('no dead letters');
  else out(...letters.map(listLine));
  return EXIT_OK;
}

function show(args: string[]): Prepared {
  const usage = 'batch-emitter dlq show <id> [--body]';
  const { positional, flags } = parseArgs(args, { flags: ['--body'] }, usage);
  const [id, extra] = positional;
  if (id === undefined || extra !== undefined) throw new CommandError(`usage: ${usage}`);
  return (spool) => showNow(spool, id, flags.has('--body'));
}

async function showNow(spool: Spool, id: string, wholeBody: boolean): Promise<number> {
  let found: StoredDeadLetter | undefined;
  try {
    found = await spool.deadLetters.get(id);
  } catch (error) {
    throw new CommandError(`dead letter ${id} does not decode: ${(error as Error).message}`, EXIT_CORRUPT);
  }
  if (!found) throw new CommandError(`no dead letter ${id}`);
  const { letter, body } = found;
  const record: Record<string, unknown> = { ...letter };
  let code = EXIT_OK;
  if (letter.message) {
    const raw = Buffer.from(letter.message.rawBase64, 'base64');
    record.messageText = raw.toString('utf8');
  }
  if (letter.kind === 'batch') {
    if (!letter.batch || !body) {
      record.body = { error: body ? 'batch state missing' : 'body missing' };
      code = EXIT_CORRUPT;
    } else {
      try {
        const doc = await decodeBody(letter.batch, body);
        const sections = Object.fromEntries(SECTIONS.map((s) => [s, doc[s].length]));
        record.body = {
          encoding: letter.batch.encoding,
          storedBytes: body.length,
          rawBytes: letter.batch.rawBytes,
          batch_id: doc.batch_id,
          probe_id: doc.probe_id,
          run_id: doc.run_id,
          created_at: doc.created_at,
          items: SECTIONS.reduce((n, s) => n + doc[s].length, 0),
          sections,
        };
        if (wholeBody) record.document = doc;
      } catch (error) {
        record.body = { error: `body does not decode: ${(error as Error).message}` };
        code = EXIT_CORRUPT;
      }
    }
  }
  out(JSON.stringify(record, null, 2));
  return code;
}

type Selection = { kind: 'id'; id: string } | { kind: 'all' } | { kind: 'reason'; substring: string };

function selection(args: string[], usage: string, flags: readonly string[] = []) {
  const parsed = parseArgs(args, { flags: ['--all', ...flags], values: ['--reason'] }, usage);
  const ways = [
    parsed.positional.length > 0,
    parsed.flags.has('--all'),
    parsed.values.has('--reason'),
  ].filter(Boolean).length;
  if (ways !== 1 || parsed.positional.length > 1) {
    throw new CommandError(`name exactly one of <id>, --all, --reason <substring>; usage: ${usage}`);
  }
  const reason = parsed.values.get('--reason');
  if (reason === '') throw new CommandError('--reason needs a non-empty substring');
  const sel: Selection =
    parsed.positional[0] !== undefined
      ? { kind: 'id', id: parsed.positional[0] }
      : reason !== undefined
        ? { kind: 'reason', substring: reason }
        : { kind: 'all' };
  return { sel, flags: parsed.flags };
}

/** The selected dead letters; an unknown id is an error. Reason match: case-insensitive substring. */
async function select(spool: Spool, sel: Selection): Promise<DeadLetter[]> {
  if (sel.kind === 'id') {
    let found: StoredDeadLetter | undefined;
    try {
      found = await spool.deadLetters.get(sel.id);
    } catch {
      found = {
        letter: {
          id: sel.id,
          kind: 'batch',
          reason: 'dead letter record does not decode',
          at: '',
          subjects: [],
        },
      };
    }
    if (!found) throw new CommandError(`no dead letter ${sel.id}`);
    return [found.letter];
  }
  const all = await spool.deadLetters.list();
  if (sel.kind === 'all') return all;
  const needle = sel.substring.toLowerCase();
  return all.filter((d) => d.reason.toLowerCase().includes(needle));
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

function replay(args: string[]): Prepared {
  const { sel } = selection(args, 'batch-emitter dlq replay <id> | --all | --reason <substring>');
  return (spool) => replayNow(spool, sel);
}

async function replayNow(spool: Spool, sel: Selection): Promise<number> {
  const letters = await select(spool, sel);
  let replayed = 0;
  let skipped = 0;
  let failed = 0;
  for (const letter of letters) {
    if (letter.kind === 'message') {
      skipped += 1;
      out(`skipped ${letter.id}: message dead letter (invalid input), kept for inspection`);
      continue;
    }
    if (await spool.deadLetters.replay(letter.id).catch(() => false)) {
      replayed += 1;
      out(`replayed ${letter.id} (${plural(letter.batch?.itemCount ?? 0, 'item')})`);
    } else {
      failed += 1;
      complain(`cannot replay ${letter.id}: its batch state or body is missing; kept`);
    }
  }
  const parts = [`replayed ${plural(replayed, 'batch', 'batches')} into the spool`];
  if (skipped > 0) {
    parts.push(
      `skipped ${plural(skipped, 'message dead letter')} (invalid input cannot be replayed as a batch; kept for inspection)`,
    );
  }
  if (failed > 0) parts.push(`${failed} could not be replayed`);
  out(`${parts.join('; ')}.`);
  if (replayed > 0) out('the emitter delivers them when it next starts.');
  if (sel.kind === 'id' && replayed === 0) return EXIT_FAILED;
  return failed > 0 ? EXIT_FAILED : EXIT_OK;
}

function purge(args: string[]): Prepared {
  const usage = 'batch-emitter dlq purge <id> | --all | --reason <substring> [--yes]';
  const { sel, flags } = selection(args, usage, ['--yes']);
  return (spool) => purgeNow(spool, sel, flags.has('--yes'));
}

async function purgeNow(spool: Spool, sel: Selection, yes: boolean): Promise<number> {
  const letters = await select(spool, sel);
  if (letters.length === 0) {
    out('no dead letters match; nothing to delete');
    return EXIT_OK;
  }
  if (!yes) {
    out(...letters.map((d) => `would delete ${listLine(d)}`));
    out(`dry run: ${plural(letters.length, 'dead letter')} would be deleted; add --yes to delete`);
    return EXIT_OK;
  }
  for (const d of letters) {
    await spool.deadLetters.purge(d.id);
    out(`deleted ${d.id}`);
  }
  out(`deleted ${plural(letters.length, 'dead letter')}`);
  return EXIT_OK;
}

const SUBCOMMANDS: Subcommands = {
  list,
  show,
  replay,
  purge,
};

export function dlqCommand(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return runOnSpool('dlq', SUBCOMMANDS, args, env);
}
