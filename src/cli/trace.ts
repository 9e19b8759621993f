import { OPTIONS } from '../config/index.js';
import {
  TRACE_USAGE,
  TraceQueryError,
  traceParamsOf,
  traceQueryOf,
  type TraceQuery,
} from '../observe/trace/query.js';
import { traceStory, type TraceStory } from '../observe/trace/story.js';
import { traceText } from '../observe/trace/text.js';
import { Spool, SpoolError } from '../spool/spool.js';
import { CommandError, EXIT_OK, out, parseArgs, spoolDirFromEnv } from './common.js';
import { consumerFactsFromEnv } from './consumer-facts.js';
import { openLedgerToRead, type LedgerSourceOptions } from './ledger-source.js';

/**
 * `batch-emitter trace <batch-id | stream-seq | --subject S --seq N> [--json] [--url U]`: the
 * story of one batch or message. On a stopped spool it reads the spool and the ledger directly;
 * while an emitter holds the spool (LevelDB allows one process) it asks that emitter's
 * `GET /debug/trace` (TRANSMITTER_DEBUG=true there), at TRANSMITTER_SERVER_HOST:PORT or --url.
 */

const FETCH_TIMEOUT_MS = 15_000;

export const TRACE_HELP = `Usage: ${TRACE_USAGE} [--url U]

The story of one batch (by id) or one JetStream message (by stream sequence, optionally with the
subject it was published on): when its items were received, why its batch was sealed (size, bytes,
interval, manual, shutdown), when it was spooled, each attempt (time, HTTP status or error kind,
duration, idempotency-key, the breaker's state), the next retry, and the end: delivered, split into
which batches (each followed), dead-lettered (reason), parked, quarantined, or "not seen: still in
the stream" with the consumer's counts.

Read from the spool (TRANSMITTER_SPOOL_DIR), its dead letters and quarantine, and the ledger
(TRANSMITTER_DATABASE_URL, else <spool>/ledger). While an emitter holds the spool, the trace is
asked of that emitter: GET /debug/trace (it needs TRANSMITTER_DEBUG=true) at
TRANSMITTER_SERVER_HOST:TRANSMITTER_SERVER_PORT, or at --url. For a message in no batch, the
consumer's counts are asked of NATS: by the running emitter, or, when it is stopped, with the
service's own configuration (the TRANSMITTER_* variables it runs with).

  --json     the story as JSON (the document /debug/trace serves, with readFrom: where it was read)
  --url U    ask the emitter at U (e.g. http://127.0.0.1:8020) instead of reading the spool
`;

interface Told {
  story: TraceStory;
  /** where it was read: a spool directory or a running emitter's URL */
  from: string;
}

function queryOf(positional: string[], values: Map<string, string>): TraceQuery {
  if (positional.length > 1)
    throw new CommandError(`unexpected argument ${positional[1]}; usage: ${TRACE_USAGE}`);
  try {
    return traceQueryOf({
      target: positional[0],
      seq: values.get('--seq'),
      subject: values.get('--subject'),
    });
  } catch (error) {
    if (error instanceof TraceQueryError) throw new CommandError(error.message);
    throw error;
  }
}

/** The running emitter's address as the service reads it (0.0.0.0 / :: mean this host). */
function serverUrlFromEnv(env: NodeJS.ProcessEnv): string {
  const read = (name: 'TRANSMITTER_SERVER_HOST' | 'TRANSMITTER_SERVER_PORT') => {
    const raw = env[name];
    const parsed = OPTIONS[name].kind.text.safeParse(
      raw === undefined || raw === '' ? OPTIONS[name].default : raw,
    );
    if (!parsed.success)
      throw new CommandError(`${name} is not valid: ${parsed.error.issues[0]?.message ?? ''}`);
    return String(parsed.data);
  };
  const host = read('TRANSMITTER_SERVER_HOST');
  const reachable =
    host === '0.0.0.0' || host === ''
      ? '127.0.0.1'
      : host === '::'
        ? '[::1]'
        : host.includes(':')
          ? `[${host}]`
          : host;
  return `http://${reachable}:${read('TRANSMITTER_SERVER_PORT')}`;
}

async function traceStopped(
  spool: Spool,
  query: TraceQuery,
  env: NodeJS.ProcessEnv,
  options: LedgerSourceOptions,
): Promise<Told> {
  const source = await openLedgerToRead(env, { ...options, lockedOk: true });
  try {
    const consumer = consumerFactsFromEnv(env);
    const story = await traceStory(
      { spool, ...(source ? { ledger: source.ledger } : {}), ...(consumer ? { consumer } : {}) },
      query,
    );
    return {
      story,
      from: `the stopped spool ${spool.dir}${source ? ` and the ledger (${source.where})` : ' (no ledger)'}`,
    };
  } finally {
    await source?.ledger.close();
  }
}

async function traceRunning(base: string, query: TraceQuery, dir: string): Promise<Told> {
  const url = `${base.replace(/\/+$/, '')}/debug/trace?${traceParamsOf(query)}`;
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
    throw new CommandError(
      `${base} does not answer (${cause}): the emitter using the spool ${dir} is asked there; ` +
        'give its address with --url, or stop it to trace the spool directly',
    );
  }
  const body = (await response.json().catch(() => ({}))) as { error?: string };
  if (response.status === 404)
    throw new CommandError(
      `${base} serves no /debug/trace (the emitter using the spool ${dir} is asked there): ` +
        'run it with TRANSMITTER_DEBUG=true, or stop it to trace the spool directly',
    );
  if (!response.ok)
    throw new CommandError(`${url}: HTTP ${response.status}: ${body.error ?? 'no reason given'}`);
  return { story: body as TraceStory, from: `the running emitter at ${base}` };
}

export async function traceCommand(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  options: LedgerSourceOptions = {},
): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    out(TRACE_HELP.trimEnd());
    return EXIT_OK;
  }
  const { positional, flags, values } = parseArgs(
    args,
    { flags: ['--json'], values: ['--seq', '--subject', '--url'] },
    TRACE_USAGE,
  );
  const query = queryOf(positional, values);
  const dir = spoolDirFromEnv(env);
  const url = values.get('--url');
  let told: Told;
  let spool: Spool | undefined;
  if (url === undefined)
    try {
      spool = await Spool.openExisting(dir);
    } catch (error) {
      if (!(error instanceof SpoolError && error.code === 'SPOOL_LOCKED')) {
        throw new CommandError(
          error instanceof SpoolError && error.code === 'SPOOL_NOT_FOUND'
            ? `no spool at ${dir}`
            : (error as Error).message,
        );
      }
    }
  if (spool) {
    try {
      told = await traceStopped(spool, query, env, options);
    } finally {
      await spool.close();
    }
  } else {
    told = await traceRunning(url ?? serverUrlFromEnv(env), query, dir);
  }
  if (flags.has('--json')) out(JSON.stringify({ ...told.story, readFrom: told.from }, null, 2));
  else out(traceText(told.story), `(read from ${told.from})`);
  return EXIT_OK;
}
