import type { Ledger } from '../ledger/ledger.js';
import type { Spool } from '../../spool/spool.js';
import type { TraceQuery } from './query.js';
import { traceStory, type ConsumerFacts, type TraceStory } from './story.js';

/** The running emitter's parts a trace reads (as far as they are open). */
export interface LiveTraceStages {
  spool?: Spool;
  ledger?: { ledger: Ledger };
  ingress?: { consumerState(): Promise<ConsumerFacts | undefined> };
}

/** A trace needs the spool; before it is open (or after it closed) there is nothing to read. */
export class TraceUnavailableError extends Error {
  readonly code = 'TRACE_UNAVAILABLE';
  constructor() {
    super('the spool is not open');
    this.name = 'TraceUnavailableError';
  }
}

/** How long a trace waits for the ledger's queued updates to be written before reading it. */
const LEDGER_FLUSH_WAIT_MS = 1000;

/** A trace inside the running process (what `/debug/trace` answers). */
export async function liveTrace(stages: LiveTraceStages, query: TraceQuery): Promise<TraceStory> {
  const { spool } = stages;
  if (!spool?.handle.isOpen) throw new TraceUnavailableError();
  const ledger = stages.ledger?.ledger;
  if (ledger) {
    // the last attempts may still be queued: give the write a moment, never hang on a down database
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      ledger.flush(),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, LEDGER_FLUSH_WAIT_MS))),
    ]);
    clearTimeout(timer);
  }
  const ingress = stages.ingress;
  return traceStory(
    { spool, ledger, ...(ingress ? { consumer: () => ingress.consumerState() } : {}) },
    query,
  );
}
