/**
 * `new Date(ms).toISOString()`, remembering the last one: a burst of JetStream messages shares its
 * millisecond, and every event carries its publish time in this form.
 */
let last = { ms: NaN, text: '' };

export function isoTime(ms: number): string {
  if (ms !== last.ms) last = { ms, text: new Date(ms).toISOString() };
  return last.text;
}
