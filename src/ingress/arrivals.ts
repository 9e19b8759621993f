import type { Section } from '../model.js';
import type { EmitterEvents } from '../observe/events.js';

/**
 * JetStream arrivals, counted per section and reported as one `received` event per section and
 * turn of the event loop (one event per message cost 4% of the CPU). Counts only, never content.
 */
export class Arrivals {
  private readonly counts = new Map<Section, number>();

  constructor(private readonly events: EmitterEvents) {}

  count(section: Section): void {
    if (this.counts.size === 0) setImmediate(() => this.report());
    this.counts.set(section, (this.counts.get(section) ?? 0) + 1);
  }

  /** Report what was counted so far (also called when the source stops). */
  report(): void {
    for (const [section, count] of this.counts)
      this.events.emit('received', { section, source: 'jetstream', count });
    this.counts.clear();
  }
}
