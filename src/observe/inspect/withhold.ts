import type { StatelyInspectionEvent } from '@statelyai/inspect';
import { toPlain } from '../../util/redact.js';

/**
 * What an inspection event may carry off the process: the machines' states, events and context,
 * never message content. The statecharts hold no items (intake keeps them outside the buffer
 * actor), but a delivery's outcome may quote the destination's answer (`bodyExcerpt`), which can
 * echo items; such fields, and any item list or body that ever reached a machine, go out as a note
 * of their size. Every string passes `scrub` (the configured secrets).
 */

/** Fields never sent as they are: item lists, bodies, quoted answers. */
const CONTENT_FIELDS = new Set(['items', 'body', 'bodyExcerpt']);

export function withheldInspectionEvent(
  event: StatelyInspectionEvent,
  scrub: (text: string) => string,
): StatelyInspectionEvent {
  return withheld(toPlain(event, scrub)) as StatelyInspectionEvent;
}

function withheld(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withheld);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) {
    out[key] = CONTENT_FIELDS.has(key) ? sizeNote(field) : withheld(field);
  }
  return out;
}

function sizeNote(field: unknown): unknown {
  if (typeof field === 'string') return `[withheld: ${field.length} characters]`;
  if (Array.isArray(field)) return `[withheld: ${field.length} items]`;
  if (field !== null && typeof field === 'object') return '[withheld]';
  return field;
}
