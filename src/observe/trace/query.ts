/**
 * What `batch-emitter trace` and `GET /debug/trace` are asked about: one batch (by id), or one
 * message by its JetStream stream sequence, optionally with the subject it was published on.
 */

export type TraceQuery = { batch: string } | { seq: number; subject?: string };

/** A trace question that cannot be asked: what is wrong with it, in one line. */
export class TraceQueryError extends Error {
  readonly code = 'TRACE_QUERY_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'TraceQueryError';
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SEQ = /^[1-9][0-9]{0,15}$/;

export const TRACE_USAGE = 'batch-emitter trace <batch-id | stream-seq | --subject S --seq N> [--json]';

function seqOf(text: string): number {
  if (!SEQ.test(text) || !Number.isSafeInteger(Number(text)))
    throw new TraceQueryError(`${JSON.stringify(text)} is not a stream sequence (a whole number from 1)`);
  return Number(text);
}

/**
 * The query from its parts: `target` is a batch id or a stream sequence; `seq` and `subject`
 * come from `--seq` / `--subject` (or `?seq=` / `?subject=`).
 */
export function traceQueryOf(parts: {
  target?: string;
  batch?: string;
  seq?: string;
  subject?: string;
}): TraceQuery {
  const { target, batch, seq, subject } = parts;
  const given = [target, batch, seq].filter((v) => v !== undefined);
  if (given.length !== 1)
    throw new TraceQueryError(`give one batch id or one stream sequence; usage: ${TRACE_USAGE}`);
  if (subject !== undefined && (subject.length === 0 || /\s/.test(subject)))
    throw new TraceQueryError(`${JSON.stringify(subject)} is not a subject`);
  if (batch !== undefined || (target !== undefined && !SEQ.test(target))) {
    const id = (batch ?? target) as string;
    if (!UUID.test(id))
      throw new TraceQueryError(`${JSON.stringify(id)} is neither a batch id (a UUID) nor a stream sequence`);
    if (subject !== undefined)
      throw new TraceQueryError('--subject goes with a stream sequence, not a batch id');
    return { batch: id.toLowerCase() };
  }
  const n = seqOf((seq ?? target) as string);
  return subject === undefined ? { seq: n } : { seq: n, subject };
}

/** The query as `/debug/trace` takes it: `?batch=<id>`, `?seq=<n>` or `?subject=<s>&seq=<n>`. */
export function traceQueryOfParams(params: URLSearchParams): TraceQuery {
  const one = (name: string) => params.get(name) ?? undefined;
  return traceQueryOf({ batch: one('batch'), seq: one('seq'), subject: one('subject') });
}

/** The query string that asks `/debug/trace` the same question. */
export function traceParamsOf(query: TraceQuery): string {
  const params = new URLSearchParams();
  if ('batch' in query) params.set('batch', query.batch);
  else {
    if (query.subject !== undefined) params.set('subject', query.subject);
    params.set('seq', String(query.seq));
  }
  return params.toString();
}
