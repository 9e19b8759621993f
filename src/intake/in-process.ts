import {
  eventJson,
  itemFromEdge,
  itemFromEvent,
  parseEdge,
  parseEventData,
  parseNode,
  type Item,
} from '../model.js';
import type { EmitterEvents } from '../observe/events.js';
import { uuidv7 } from '../util/ids.js';
import type { Intake } from './intake.js';

/**
 * In-process adds (addEdge, addNode, add): validated into items here (InvalidItemError on bad
 * input), then offered to the intake like any message. They enter at the buffer, never at the
 * ingress, and resolve only once the item's batch is durable in the spool.
 */

export const inProcessItem = {
  edge: (edge: unknown): Item => itemFromEdge(parseEdge(edge)),
  /** a NodeDomain, NodeIP or NodeCert, told apart by shape */
  node: (node: unknown): Item => parseNode(node),
  /**
   * a generic event under `subject`; with `text` (the JSON `data` was parsed from) the batch
   * carries that text instead of serialising `data` again
   */
  event: (subject: string, data: unknown, text?: string): Item => {
    const record = {
      subject,
      seq: null,
      msg_id: uuidv7(),
      published_at: new Date().toISOString(),
      data: parseEventData(data, text),
    };
    return itemFromEvent(record, text === undefined ? undefined : eventJson(record, text));
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
      if (waiting) return waiting.then(() => offerNow(intake, this.events, item));
      return offerNow(intake, this.events, item);
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }
}

/** Offers the item; resolves once its batch is durable. */
function offerNow(intake: Intake, events: EmitterEvents, item: Item): Promise<void> {
  const durable = intake.offer(item);
  events.emit('received', { section: item.section, source: 'api', count: 1 });
  return durable;
}
