/**
 * Keeping secrets out of HTTP responses: configured secret values are replaced wherever they
 * occur, and so are credentials embedded in URLs (`scheme://user:pass@host`) and bearer tokens.
 */

const CENSOR = '[redacted]';
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@"'<>]+@/gi;
const BEARER = /\b(bearer\s+)[A-Za-z0-9\-._~+/]+=*/gi;

export class Redactor {
  private readonly secrets: string[];

  constructor(secrets: Array<string | undefined>) {
    const given = secrets.filter((s): s is string => typeof s === 'string' && s.length > 0);
    // also as it reads inside JSON text (a quote or backslash in a secret is escaped there);
    // longest first, so a secret containing another is replaced whole
    const escaped = given.map((s) => JSON.stringify(s).slice(1, -1));
    this.secrets = [...new Set([...given, ...escaped])].sort((a, b) => b.length - a.length);
  }

  scrub(text: string): string {
    let out = text.replace(URL_CREDENTIALS, `$1${CENSOR}@`).replace(BEARER, `$1${CENSOR}`);
    for (const secret of this.secrets) out = out.split(secret).join(CENSOR);
    return out;
  }
}

/** A guard for the stack, far above any real structure served (cycles are caught by `ancestors`). */
const MAX_DEPTH = 200;

function isActorRef(value: object): value is { id?: unknown; sessionId: string } {
  const v = value as { sessionId?: unknown; send?: unknown };
  return typeof v.sessionId === 'string' && typeof v.send === 'function';
}

/**
 * A JSON-safe copy: functions dropped, cycles and XState actor refs replaced by markers, Maps,
 * Sets, Dates, Errors and bigints turned into plain values, `toJSON()` honoured once per value
 * as JSON.stringify does (XState's transitions return a copy of themselves, toJSON included:
 * calling it on the result again never ends).
 */
export function toPlain(
  value: unknown,
  scrub: (text: string) => string = (t) => t,
  ancestors: object[] = [],
  depth = 0,
  fromToJSON = false,
): unknown {
  if (value === null) return null;
  switch (typeof value) {
    case 'string':
      return scrub(value);
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : null;
    case 'bigint':
      return value.toString();
    case 'function':
    case 'symbol':
    case 'undefined':
      return undefined;
  }
  const obj = value as object;
  if (ancestors.includes(obj)) return '[circular]';
  if (depth >= MAX_DEPTH) return '[too deep]';
  if (isActorRef(obj)) return { actor: scrub(String(obj.id ?? obj.sessionId)) };
  if (obj instanceof Date) return Number.isNaN(obj.getTime()) ? null : obj.toISOString();
  if (obj instanceof Error) return { name: obj.name, message: scrub(obj.message) };
  const toJSON = (obj as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function' && !fromToJSON) {
    const converted: unknown = toJSON.call(obj);
    if (converted !== obj) return toPlain(converted, scrub, ancestors, depth, true);
  }
  const next = [...ancestors, obj];
  if (Array.isArray(obj)) return obj.map((v) => toPlain(v, scrub, next, depth + 1) ?? null);
  if (obj instanceof Set) return [...obj].map((v) => toPlain(v, scrub, next, depth + 1) ?? null);
  const entries: Array<[unknown, unknown]> = obj instanceof Map ? [...obj.entries()] : Object.entries(obj);
  const out: Record<string, unknown> = {};
  for (const [key, v] of entries) {
    const plain = toPlain(v, scrub, next, depth + 1);
    if (plain !== undefined) out[scrub(String(key))] = plain;
  }
  return out;
}

/** JSON text of `toPlain(value)`, every string (keys included) passed through `scrub`. */
export function safeJson(value: unknown, scrub?: (text: string) => string): string {
  return JSON.stringify(toPlain(value, scrub) ?? null);
}
