import { itemFromEdge, itemFromEvent, parseEdge, parseEventData, parseNode, type Item } from '../model.js';
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
  /** a generic event under `subject` */
  event: (subject: string, data: unknown): Item =>
    itemFromEvent({
      subject,
      seq: null,
      msg_id: uuidv7(),
      published_at: new Date().toISOString(),
      data: parseEventData(data),
    }),
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

  event(subject: string, data: unknown): Promise<void> {
    return this.offer(() => inProcessItem.event(subject, data));
  }

  private async offer(make: () => Item): Promise<void> {
    const intake = this.intake();
    await offerInProcess(intake, this.events, make());
  }
}

/** Waits while intake is paused, then offers the item; resolves once its batch is durable. */
async function offerInProcess(intake: Intake, events: EmitterEvents, item: Item): Promise<void> {
  const waiting = intake.whenAccepting();
  if (waiting) await waiting;
  const durable = intake.offer(item);
  events.emit('received', { section: item.section, source: 'api', count: 1 });
  await durable;
}
