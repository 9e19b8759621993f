import { itemFromEdge, parseEdge, parseEventData, parseNode, type EventRecord, type Item } from '../model.js';
import type { EmitterEvents } from '../observe/events.js';
import { uuidv7 } from '../util/ids.js';
import { isoTime } from '../util/iso-time.js';
import type { Intake } from './intake.js';

/**
 * In-process adds (addEdge, addNode, add): validated into items here (InvalidItemError on bad
 * input), then offered to the intake like any message. They enter at the buffer, never at the
 * ingress, and resolve only once the item's batch is durable in the spool.
 */

/** subjects as JSON strings, for the last few subjects (a pino transport has one per level) */
const subjectJson = new Map<string, string>();
const SUBJECTS_KEPT = 64;

function jsonOfSubject(subject: string): string {
  let json = subjectJson.get(subject);
  if (json === undefined) {
    json = JSON.stringify(subject);
    if (subjectJson.size >= SUBJECTS_KEPT) subjectJson.clear();
    subjectJson.set(subject, json);
  }
  return json;
}

/**
 * An in-process event's JSON as JSON.stringify writes it, with `data` as the caller's own text
 * (eventJson, model.ts): its id and time are ours (hex digits and an ISO time), nothing to escape.
 */
function inProcessEventJson(record: Omit<EventRecord, 'data'>, dataText: string): string {
  return `{"subject":${jsonOfSubject(record.subject)},"seq":null,"msg_id":"${record.msg_id}","published_at":"${record.published_at}","data":${dataText}}`;
}

export const inProcessItem = {
  edge: (edge: unknown): Item => itemFromEdge(parseEdge(edge)),
  /** a NodeDomain, NodeIP or NodeCert, told apart by shape */
  node: (node: unknown): Item => parseNode(node),
  /**
   * a generic event under `subject`; with `text` (the JSON `data` was parsed from) the batch
   * carries that text instead of serialising `data` again. Its id is new: no dedup key.
   */
  event: (subject: string, data: unknown, text?: string): Item => {
    const nowMs = Date.now();
    const record: EventRecord = {
      subject,
      seq: null,
      msg_id: uuidv7(nowMs),
      published_at: isoTime(nowMs),
      data: parseEventData(data, text),
    };
    if (text === undefined) return { section: 'events', key: null, value: record };
    return { section: 'events', key: null, value: record, json: inProcessEventJson(record, text) };
  },
};

/** The emitter's add methods: `intake` throws when adding is not possible (not started, closing). */
export class InProcessInput {
  constructor(
    private readonly intake: () => Intake,
    private readonly events: EmitterEvents,
  ) {}

  edge(edge: unknown): Promise<void> {
    return this.offer(() => inProcessItem.edge(edge));
  }

  node(node: unknown): Promise<void> {
    return this.offer(() => inProcessItem.node(node));
  }

  event(subject: string, data: unknown, text?: string): Promise<void> {
    return this.offer(() => inProcessItem.event(subject, data, text));
  }

  /**
   * Offers the item at once when intake accepts (the promise is its batch's, shared by every item
   * of that batch: no promise per item), else once it accepts again. Bad input rejects.
   */
  private offer(make: () => Item): Promise<void> {
    try {
      const intake = this.intake();
      const item = make();
      const waiting = intake.whenAccepting();
      if (waiting) return waiting.then(() => this.offerNow(intake, item));
      return this.offerNow(intake, item);
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  /** Offers the item; resolves once its batch is durable. */
  private offerNow(intake: Intake, item: Item): Promise<void> {
    const durable = intake.offer(item);
    // counted at once: `emitter.stats` right after an add counts it
    this.events.emit('received', { section: item.section, source: 'api', count: 1 });
    return durable;
  }
}
