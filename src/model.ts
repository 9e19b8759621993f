import { z } from 'zod';
import { EventHead } from './event-head.js';

/**
 * The data model: zod schemas of the graph items and generic events, the batch wire document,
 * and subject routing (the subjects table in README "Wire format").
 */

/** Both reasons a timestamp is refused; neither quotes the value (see contentFreeIssue). */
const NOT_RFC3339 = 'expected an RFC 3339 timestamp';
const OUTSIDE_YEARS = 'outside years 0000-9999 in UTC';

/**
 * RFC 3339 timestamp, normalised to a fixed-width UTC ISO string so merges never change sizes and
 * two timestamps compare as strings. An offset can carry a valid time out of years 0000-9999 in
 * UTC, which that form cannot write.
 */
const timestamp = z.iso
  .datetime({ offset: true, error: (issue) => (issue.input === undefined ? 'missing' : NOT_RFC3339) })
  .transform((v, ctx) => {
    const ms = Date.parse(v);
    const iso = Number.isNaN(ms) ? '' : new Date(ms).toISOString();
    if (iso.length === 24) return iso;
    ctx.issues.push({ code: 'custom', input: v, message: iso === '' ? NOT_RFC3339 : OUTSIDE_YEARS });
    return z.NEVER;
  });

const label = (max: number) => z.string().min(1).max(max);

/** The shapes as a batch document holds them; input adds the order of its times (below). */
const NodeDomainFields = z.object({
  host: label(253),
  apex: label(253),
  first_seen: timestamp,
  last_seen: timestamp,
});

const NodeIPFields = z.object({
  ip: z.union([z.ipv4(), z.ipv6()], { error: 'expected an IPv4 or IPv6 address' }),
  first_seen: timestamp,
  last_seen: timestamp,
});

const NodeCertFields = z.object({
  spki_sha256: z
    .string()
    .regex(/^[A-Za-z0-9+/=_-]{16,128}$/, { error: 'expected a SHA-256 hash (hex or base64)' }),
  subject_cn: z.string().max(1024),
  issuer_cn: z.string().max(1024),
  not_before: timestamp,
  not_after: timestamp,
});

export const NodeDomainSchema = NodeDomainFields.refine((v) => v.first_seen <= v.last_seen, {
  path: ['first_seen'],
  error: 'later than last_seen',
});

export const NodeIPSchema = NodeIPFields.refine((v) => v.first_seen <= v.last_seen, {
  path: ['first_seen'],
  error: 'later than last_seen',
});

export const NodeCertSchema = NodeCertFields.refine((v) => v.not_before <= v.not_after, {
  path: ['not_after'],
  error: 'earlier than not_before',
});

export const EDGE_TYPES = ['RESOLVES_TO', 'USES_NS', 'ALIAS_OF', 'USES_MX', 'LINKS_TO', 'USES_CERT'] as const;

export const EdgeSchema = z.object({
  type: z.enum(EDGE_TYPES, { error: `expected one of ${EDGE_TYPES.join(', ')}` }),
  source: label(2048),
  target: label(2048),
  observed_at: timestamp,
  probe_id: label(256),
  run_id: label(256),
});

export type NodeDomain = z.output<typeof NodeDomainSchema>;
export type NodeIP = z.output<typeof NodeIPSchema>;
export type NodeCert = z.output<typeof NodeCertSchema>;
export type Edge = z.output<typeof EdgeSchema>;
export type Node = NodeDomain | NodeIP | NodeCert;

/** A generic event as it appears in a batch's `events[]`. `seq` is null for in-process adds. */
export interface EventRecord {
  subject: string;
  seq: number | null;
  msg_id: string;
  published_at: string;
  data: Record<string, unknown>;
}

export const SECTIONS = ['nodes_domain', 'nodes_ip', 'nodes_cert', 'edges', 'events'] as const;
export type Section = (typeof SECTIONS)[number];

/** One validated item on its way into a batch, with the key that dedups it inside a batch. */
export type Item =
  | { section: 'nodes_domain'; key: string; value: NodeDomain }
  | { section: 'nodes_ip'; key: string; value: NodeIP }
  | { section: 'nodes_cert'; key: string; value: NodeCert }
  | { section: 'edges'; key: string; value: Edge }
  /**
   * `json`: the record already serialised (see eventJson); without it the builder serialises
   * `value`. `key` null: keyed by its stream sequence (`value.seq`), or unique by construction (an
   * in-process add's fresh id), never looked up.
   */
  | { section: 'events'; key: string | null; value: EventRecord; json?: EventJson };

/**
 * An event's JSON, as text or in two parts: the record's own fields up to `"data":` (its head,
 * written as bytes: see EventHead), then the publisher's body as its bytes (a JetStream message's:
 * copied into the batch as they are, no string of the whole record and no UTF-8 encoding of the
 * body again). The JSON is head + data + `}`.
 */
export type EventJson = string | { readonly head: EventHead; readonly data: Uint8Array };

export const BatchDocumentSchema = z.object({
  batch_id: z.string(),
  probe_id: z.string(),
  run_id: z.string(),
  created_at: z.string(),
  // not the input rules: a batch spooled before a rule was added must still decode
  nodes_domain: z.array(NodeDomainFields),
  nodes_ip: z.array(NodeIPFields),
  nodes_cert: z.array(NodeCertFields),
  edges: z.array(EdgeSchema),
  events: z.array(
    z.object({
      subject: z.string(),
      seq: z.number().nullable(),
      msg_id: z.string(),
      published_at: z.string(),
      data: z.record(z.string(), z.unknown()),
    }),
  ),
});
export type BatchDocument = z.output<typeof BatchDocumentSchema>;

export function itemFromNodeDomain(value: NodeDomain): Item {
  return { section: 'nodes_domain', key: value.host, value };
}
export function itemFromNodeIP(value: NodeIP): Item {
  return { section: 'nodes_ip', key: value.ip, value };
}
export function itemFromNodeCert(value: NodeCert): Item {
  return { section: 'nodes_cert', key: value.spki_sha256, value };
}
export function itemFromEdge(value: Edge): Item {
  return { section: 'edges', key: `${value.type}\u0000${value.source}\u0000${value.target}`, value };
}
/**
 * Whether a stream sequence is exactly what the server sent: JetStream's are 64-bit, a number holds
 * whole numbers exactly only up to 2^53. Beyond that, two messages can read as one sequence: such
 * a message is neither deduplicated nor looked up by its sequence (a duplicate may go out, nothing
 * is lost).
 */
export function isExactSequence(seq: number | null | undefined): seq is number {
  return Number.isSafeInteger(seq);
}

/**
 * Events dedup by stream sequence (`value.seq`: no key string is made for them); in-process events
 * (no sequence) by their own id.
 */
export function itemFromEvent(value: EventRecord, json?: EventJson): Item {
  const key = value.seq === null ? `id:${value.msg_id}` : null;
  return { section: 'events', key, value, json };
}

/**
 * The record's JSON as JSON.stringify writes it, but with `data` as the publisher's own text (valid
 * JSON: it was parsed to be checked): no second serialisation per event, and numbers beyond double
 * precision stay as they were sent.
 */
export function eventJson(record: Omit<EventRecord, 'data'>, dataText: string): string {
  return `${eventHead(record).text()}${dataText}}`;
}

/** eventJson in parts, with `data` the UTF-8 bytes of the publisher's text (valid JSON, no BOM). */
export function eventJsonParts(record: Omit<EventRecord, 'data'>, data: Uint8Array): EventJson {
  return { head: eventHead(record), data };
}

function eventHead(record: Omit<EventRecord, 'data'> | CheckedEventRecord): EventHead {
  if (record instanceof CheckedEventRecord) return record.head();
  const { subject, seq, msg_id, published_at } = record;
  return new EventHead(subject, seq, msg_id, '', published_at);
}

/** The text of an event's JSON (what the batch holds, as a string). */
export function eventJsonText(json: EventJson): string {
  return typeof json === 'string' ? json : `${json.head.text()}${Buffer.from(json.data).toString('utf8')}}`;
}

/** Why an input was refused: the field path and the problem, ready for a dead letter or an error. */
export class InvalidItemError extends Error {
  readonly code = 'INVALID_ITEM';
  constructor(
    readonly reason: string,
    readonly field?: string,
  ) {
    super(field ? `${field}: ${reason}` : reason);
    this.name = 'InvalidItemError';
  }
}

/** A value's JSON kind, the most a reason says about the value itself. */
function kindOf(value: unknown): string {
  if (value === null) return 'null';
  return Array.isArray(value) ? 'array' : typeof value;
}

/**
 * Zod's own messages for the issues our schemas leave to it, reworded from the issue's shape only:
 * a reason reaches logs, stats and dead letters, and must never quote input (it may hold secrets).
 */
const contentFreeIssue: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      return issue.input === undefined ? 'missing' : `expected ${issue.expected}, got ${kindOf(issue.input)}`;
    case 'too_big':
      return issue.origin === 'string'
        ? `longer than ${issue.maximum} characters`
        : `too big (at most ${issue.maximum})`;
    case 'too_small':
      if (issue.origin === 'string')
        return issue.minimum === 1 ? 'empty' : `shorter than ${issue.minimum} characters`;
      return `too small (at least ${issue.minimum})`;
    default:
      return `invalid (${issue.code})`;
  }
};
const PARSE_OPTIONS = { error: contentFreeIssue };

function parseWith<S extends z.ZodType>(schema: S, data: unknown, what: string): z.output<S> {
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  // again for the wording: per-parse options halve zod's speed, so only refused input pays for them
  const issue = schema.safeParse(data, PARSE_OPTIONS).error?.issues[0];
  const field = issue && issue.path.length > 0 ? `${what}.${issue.path.join('.')}` : what;
  throw new InvalidItemError(issue?.message ?? 'invalid', field);
}

export const parseNodeDomain = (data: unknown): NodeDomain =>
  parseWith(NodeDomainSchema, data, 'node_domain');
export const parseNodeIP = (data: unknown): NodeIP => parseWith(NodeIPSchema, data, 'node_ip');
export const parseNodeCert = (data: unknown): NodeCert => parseWith(NodeCertSchema, data, 'node_cert');
export const parseEdge = (data: unknown): Edge => parseWith(EdgeSchema, data, 'edge');

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A node told apart by its shape, as a probe's AddNode does. */
export function parseNode(data: unknown): Item {
  if (!isPlainObject(data)) throw new InvalidItemError('expected a node object', 'node');
  if ('spki_sha256' in data) return itemFromNodeCert(parseNodeCert(data));
  if ('ip' in data) return itemFromNodeIP(parseNodeIP(data));
  if ('host' in data) return itemFromNodeDomain(parseNodeDomain(data));
  throw new InvalidItemError('expected a NodeDomain (host), NodeIP (ip) or NodeCert (spki_sha256)', 'node');
}

/** Deeper than this, many receivers' JSON parsers give up (Python's stops near 1000): refuse early. */
export const MAX_EVENT_DEPTH = 64;

/** Recursion is bounded by `limit`, so a hostile depth cannot overflow the stack here. */
function depthExceeds(value: unknown, limit: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (limit === 0) return true;
  if (Array.isArray(value)) {
    for (const child of value) if (depthExceeds(child, limit - 1)) return true;
    return false;
  }
  for (const key in value) {
    if (depthExceeds((value as Record<string, unknown>)[key], limit - 1)) return true;
  }
  return false;
}

/** Occurrences of `char` in `text`, counted up to `max` (indexOf is native: cheaper than a char loop). */
function countUpTo(text: string, char: string, max: number): number {
  let n = 0;
  for (let i = text.indexOf(char); i >= 0 && n < max; i = text.indexOf(char, i + 1)) n++;
  return n;
}

/**
 * The same limit on a JSON text (valid JSON: brackets outside strings). Checked on the text that is
 * sent, not the parsed value: a duplicate key may hide a deep value from JSON.parse, not from the
 * receiver.
 */
export function textDepthExceeds(text: string, limit: number): boolean {
  // nesting needs an opening bracket per level: with few of them in all, skip the scan (most events)
  if (countUpTo(text, '{', limit + 1) + countUpTo(text, '[', limit + 1) <= limit) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

/** `text`, when given, is the JSON the data was parsed from and what will be sent. */
export function parseEventData(data: unknown, text?: string): Record<string, unknown> {
  if (!isPlainObject(data)) throw new InvalidItemError('expected a JSON object', 'data');
  if (text === undefined ? depthExceeds(data, MAX_EVENT_DEPTH) : textDepthExceeds(text, MAX_EVENT_DEPTH)) {
    throw new InvalidItemError(`nested deeper than ${MAX_EVENT_DEPTH} levels`, 'data');
  }
  return data;
}

export type SubjectRoute = 'nodes_domain' | 'nodes_ip' | 'nodes_cert' | 'edges' | 'events';

// compared in place, not looked up: a lookup would cut out and hash the token of every message
const ROUTES: readonly (readonly [string, SubjectRoute])[] = [
  ['domain', 'nodes_domain'],
  ['ip', 'nodes_ip'],
  ['cert', 'nodes_cert'],
  ['edge', 'edges'],
];

/** `approved.domain` -> nodes_domain, ... ; any other subject (other or more tokens) -> events. */
export function routeSubject(subject: string): SubjectRoute {
  const dot = subject.indexOf('.');
  if (dot < 0 || subject.includes('.', dot + 1)) return 'events';
  const length = subject.length - dot - 1;
  for (const [token, route] of ROUTES) {
    if (token.length === length && subject.startsWith(token, dot + 1)) return route;
  }
  return 'events';
}

export interface SourceMeta {
  subject: string;
  seq: number | null;
  /** the publisher's message id; undefined for the default, `<stream>:<seq>` */
  msgId: string | undefined;
  stream: string;
  publishedAt: string;
}

/** The message id an event carries: the publisher's, or `<stream>:<seq>`. */
export function messageIdOf(meta: Pick<SourceMeta, 'msgId' | 'stream' | 'seq'>): string {
  return meta.msgId ?? `${meta.stream}:${meta.seq}`;
}

/**
 * Turn a decoded message body into a batch item according to its subject; an event keeps `text`
 * (the body `data` was parsed from) as its data, as `bytes` when given (exactly `text` in UTF-8).
 * Throws InvalidItemError.
 */
export function itemFromMessage(data: unknown, meta: SourceMeta, text?: string, bytes?: Uint8Array): Item {
  return itemFromRoute(routeSubject(meta.subject), data, meta, text, bytes);
}

/** itemFromMessage with the subject's route already known. */
export function itemFromRoute(
  route: SubjectRoute,
  data: unknown,
  meta: SourceMeta,
  text?: string,
  bytes?: Uint8Array,
): Item {
  switch (route) {
    case 'nodes_domain':
      return itemFromNodeDomain(parseNodeDomain(data));
    case 'nodes_ip':
      return itemFromNodeIP(parseNodeIP(data));
    case 'nodes_cert':
      return itemFromNodeCert(parseNodeCert(data));
    case 'edges':
      return itemFromEdge(parseEdge(data));
    case 'events': {
      const record = {
        subject: meta.subject,
        seq: meta.seq,
        msg_id: messageIdOf(meta),
        published_at: meta.publishedAt,
        data: parseEventData(data, text),
      };
      if (text === undefined) return itemFromEvent(record);
      return itemFromEvent(record, bytes ? eventJsonParts(record, bytes) : eventJson(record, text));
    }
  }
}

/**
 * An event whose body (`bytes`: UTF-8, no BOM) was checked to be a JSON object within the depth
 * limit without being parsed: the batch takes the bytes as they are, and `data` is parsed only if
 * something reads it (nothing on the way to the batch does).
 */
export function itemFromCheckedEvent(meta: SourceMeta, bytes: Uint8Array): Item {
  const record = new CheckedEventRecord(meta, bytes);
  return itemFromEvent(record, eventJsonParts(record, bytes));
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * `data` is a getter: a spread drops it. The body is a true private field and `toJSON` writes the
 * record as a plain one would be: JSON.stringify never sees the body's bytes in its place.
 */
class CheckedEventRecord implements EventRecord {
  readonly subject: string;
  readonly seq: number | null;
  readonly published_at: string;
  readonly #msgId: string | undefined;
  readonly #stream: string;
  readonly #body: Uint8Array;

  constructor(meta: SourceMeta, body: Uint8Array) {
    this.subject = meta.subject;
    this.seq = meta.seq;
    this.#msgId = meta.msgId;
    this.#stream = meta.stream;
    this.published_at = meta.publishedAt;
    this.#body = body;
  }

  /** made when read: nothing on the way to the batch reads it (the head writes the default id's parts) */
  get msg_id(): string {
    return messageIdOf({ msgId: this.#msgId, stream: this.#stream, seq: this.seq });
  }

  head(): EventHead {
    return new EventHead(this.subject, this.seq, this.#msgId, this.#stream, this.published_at);
  }

  get data(): Record<string, unknown> {
    return JSON.parse(utf8.decode(this.#body)) as Record<string, unknown>;
  }

  toJSON(): EventRecord {
    const { subject, seq, msg_id, published_at } = this;
    return { subject, seq, msg_id, published_at, data: this.data };
  }
}
