import {
  eventJsonText,
  isExactSequence,
  SECTIONS,
  type EventJson,
  type Item,
  type Section,
} from '../model.js';
import { JsonListBytes, MAX_UTF8_PER_UNIT } from './json-list-bytes.js';

/**
 * The open batch's items: one map per section keyed for dedup, each item kept with its JSON text
 * so the batch body is assembled by concatenation, not serialised twice. Events never merge: only
 * their keys are kept, their JSON goes straight into the body's bytes (JsonListBytes). Merges never
 * change an item's size (timestamps are fixed-width), so the byte count the buffer machine keeps
 * stays exact.
 */

interface Entry {
  /** kept only where a later duplicate merges into it (see MERGES): the JSON is all the body needs */
  item?: Item;
  json: string;
}

export interface SealedBatch<S> {
  id: string;
  createdAt: string;
  itemCount: number;
  /** the uncompressed JSON document as UTF-8, exactly as in the wire format (README "Wire format") */
  body: Buffer;
  /** distinct source subjects, kept with dead letters */
  subjects: string[];
  /** the source handles (e.g. JetStream messages) to acknowledge once the batch is durable */
  sources: S[];
}

export interface Measured {
  isNew: boolean;
  /** bytes the item adds to the body (its JSON plus a separator) */
  bytes: number;
}

const ID_LENGTH = 36;
/** the body ends with the events section (the last of SECTIONS) and the document */
const CLOSE_EVENTS = Buffer.from(']}');
if (SECTIONS.at(-1) !== 'events') throw new Error('BatchBuilder writes the events section last');
const TIME_LENGTH = 24;

type MergedSection = Exclude<Section, 'events'>;

/** The UTF-8 bytes of an item's JSON (a scan of its text; an event in parts knows its own). */
export function jsonBytes(json: EventJson): number {
  return typeof json === 'string' ? Buffer.byteLength(json) : json.head.byteLength + json.data.length + 1;
}

/** At most the UTF-8 bytes of an item's JSON, without scanning it. */
export function maxJsonBytes(json: EventJson): number {
  return typeof json === 'string'
    ? json.length * MAX_UTF8_PER_UNIT
    : json.head.byteLength + json.data.length + 1;
}

function emptySections(): Record<MergedSection, Map<string, Entry>> {
  return {
    nodes_domain: new Map(),
    nodes_ip: new Map(),
    nodes_cert: new Map(),
    edges: new Map(),
  };
}

/** Sections whose duplicates merge; in the others the first item stays as it came. */
const MERGES: ReadonlySet<Section> = new Set(['nodes_domain', 'nodes_ip', 'edges']);

const earlier = (a: string, b: string) => (b < a ? b : a);
const later = (a: string, b: string) => (b > a ? b : a);

/** A node seen again: its sighting widens to the earliest first and the latest last seen. */
function widened<V extends { first_seen: string; last_seen: string }>(v: V, n: V): V {
  return {
    ...v,
    first_seen: earlier(v.first_seen, n.first_seen),
    last_seen: later(v.last_seen, n.last_seen),
  };
}

/** The merge rules (README "How it works") for an item whose key is already in the batch. */
function merge(existing: Item, incoming: Item): Item {
  if (existing.section === 'nodes_domain' && incoming.section === 'nodes_domain') {
    return { ...existing, value: widened(existing.value, incoming.value) };
  }
  if (existing.section === 'nodes_ip' && incoming.section === 'nodes_ip') {
    return { ...existing, value: widened(existing.value, incoming.value) };
  }
  if (existing.section === 'edges' && incoming.section === 'edges') {
    return {
      ...existing,
      value: {
        ...existing.value,
        observed_at: earlier(existing.value.observed_at, incoming.value.observed_at),
      },
    };
  }
  // certificates and events: the first one stays (an event key is its stream sequence).
  return existing;
}

export class BatchBuilder<S> {
  private sections = emptySections();
  /**
   * keys of the open batch's events: a JetStream event's is its stream sequence, kept as a number
   * (its key string would live until the seal, one more object per event for the collector)
   */
  private eventSeqs = new Set<number>();
  private eventKeys = new Set<string>();
  /** with room before the events for the envelope of a batch of events only (see take) */
  private readonly events: JsonListBytes;
  private subjects = new Set<string>();
  /** the subject added last: a stream's messages mostly share one, and a Set hashes every string it is given */
  private lastSubject?: string;
  private sources: S[] = [];
  private count = 0;

  constructor(
    private readonly probeId: string,
    private readonly runId: string,
  ) {
    this.events = new JsonListBytes(this.envelopeBytes());
  }

  get size(): number {
    return this.count;
  }

  /** Size of a batch document with no items. */
  envelopeBytes(): number {
    const sections = SECTIONS.map((name) => `"${name}":[]`).join(',');
    return Buffer.byteLength(`${this.prefix('x'.repeat(ID_LENGTH), 'x'.repeat(TIME_LENGTH))},${sections}}`);
  }

  /** Serialise the item once; throws on values JSON cannot represent (e.g. a cycle or BigInt). */
  measure(item: Item): Measured & { json: EventJson } {
    const json = this.jsonOf(item);
    const isNew = !this.has(item);
    return { isNew, bytes: isNew ? jsonBytes(json) + 1 : 0, json };
  }

  /** The item's JSON (serialised here unless it came with it); throws as `measure` does. */
  jsonOf(item: Item): EventJson {
    return (item.section === 'events' && item.json) || JSON.stringify(item.value);
  }

  /**
   * Add (or merge) an item; returns the bytes it added to the body (its JSON plus a separator, as
   * `measure` counts them), 0 when it was not new to this batch.
   */
  add(item: Item, json: EventJson, source?: S, subject?: string): number {
    if (source !== undefined) this.sources.push(source);
    if (item.section === 'events') return this.addEvent(item, json, subject);
    const section = this.sections[item.section];
    const existing = section.get(item.key);
    if (existing) {
      const merged = existing.item && merge(existing.item, item);
      if (merged && merged !== existing.item)
        section.set(item.key, { ...existing, item: merged, json: JSON.stringify(merged.value) });
      return 0;
    }
    const text = eventJsonText(json);
    section.set(item.key, { item: MERGES.has(item.section) ? item : undefined, json: text });
    if (subject !== undefined) this.subjects.add(subject);
    this.count += 1;
    return Buffer.byteLength(text) + 1;
  }

  /** Whether the item's key is in this batch already. */
  has(item: Item): boolean {
    if (item.section !== 'events') return this.sections[item.section].has(item.key);
    if (isExactSequence(item.value.seq)) return this.eventSeqs.has(item.value.seq);
    return item.key !== null && this.eventKeys.has(item.key);
  }

  /** An event: the first one of a key stays as it came (a null key is unique: not kept). */
  private addEvent(item: Item & { section: 'events' }, json: EventJson, subject?: string): number {
    const { key, value } = item;
    if (isExactSequence(value.seq)) {
      if (this.eventSeqs.has(value.seq)) return 0;
      this.eventSeqs.add(value.seq);
    } else if (key !== null) {
      if (this.eventKeys.has(key)) return 0;
      this.eventKeys.add(key);
    }
    const bytes = this.events.push(json) + 1;
    if (subject !== undefined && subject !== this.lastSubject) {
      this.subjects.add(subject);
      this.lastSubject = subject;
    }
    this.count += 1;
    return bytes;
  }

  /** Hand over the open batch and start an empty one. */
  take(id: string, createdAt: string): SealedBatch<S> {
    const head = SECTIONS.map((name) => {
      if (name === 'events') return '"events":[';
      return `"${name}":[${[...this.sections[name].values()].map((e) => e.json).join(',')}],`;
    });
    const sealed: SealedBatch<S> = {
      id,
      createdAt,
      itemCount: this.count,
      body: this.events.take(`${this.prefix(id, createdAt)},${head.join('')}`, CLOSE_EVENTS),
      subjects: [...this.subjects],
      sources: this.sources,
    };
    this.sections = emptySections();
    this.eventSeqs = new Set();
    this.eventKeys = new Set();
    this.subjects = new Set();
    this.lastSubject = undefined;
    this.sources = [];
    this.count = 0;
    return sealed;
  }

  private prefix(id: string, createdAt: string): string {
    return `{"batch_id":"${id}","probe_id":${JSON.stringify(this.probeId)},"run_id":${JSON.stringify(this.runId)},"created_at":"${createdAt}"`;
  }
}
