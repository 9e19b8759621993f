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

/** Waits while intake is paused, then offers the item; resolves once its batch is durable. */
export async function offerInProcess(intake: Intake, events: EmitterEvents, item: Item): Promise<void> {
  const waiting = intake.whenAccepting();
  if (waiting) await waiting;
  const durable = intake.offer(item);
  events.emit('received', { section: item.section, source: 'api', count: 1 });
  await durable;
}
