import { createInspector } from '@statelyai/inspect';
import type { InspectionEvent, Observer } from 'xstate';
import type { Logger } from '../../util/logger.js';
import { Redactor } from '../../util/redact.js';
import { InspectorLink } from './link.js';
import { withheldInspectionEvent } from './withhold.js';

/**
 * Streaming the statecharts to a Stately inspector (TRANSMITTER_INSPECT): the observer the buffer,
 * delivery, breaker and limiter actors are created with, and its WebSocket. Off unless configured.
 */

/** What `createActor(..., { inspect })` takes. */
export type InspectionObserver = Observer<InspectionEvent>;

export interface Inspection {
  readonly inspect: InspectionObserver;
  /** Stop streaming (events still queued for this tick go out first). */
  stop(): Promise<void>;
}

export function openInspection(url: string, logger: Logger, secrets: string[]): Inspection {
  const redactor = new Redactor(secrets);
  const link = new InspectorLink(url, logger);
  const inspector = createInspector(link, {
    serialize: (event) => withheldInspectionEvent(event, (text) => redactor.scrub(text)),
  });
  inspector.start();
  return {
    inspect: inspector.inspect,
    stop: async () => {
      // the inspector hands events to the link on a timer of 0 ms: let those already queued through
      await new Promise((resolve) => setTimeout(resolve, 0));
      inspector.stop();
    },
  };
}
