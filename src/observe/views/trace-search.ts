/**
 * The /debug page's trace search box: a form whose script (assets/debug-trace.js, served as
 * /debug/trace.js) asks `/debug/trace` and shows the printed story. Kept apart from the page's
 * layout so either can change alone.
 */

export const TRACE_SCRIPT = 'debug/trace.js';

export function traceSearchHtml(): string {
  return (
    '<section id="trace" class="trace"><h2>Trace a batch or an event</h2>' +
    '<form id="trace-form" role="search">' +
    '<label>batch id or stream sequence <input id="trace-target" name="target" required size="40" autocomplete="off"></label> ' +
    '<label>subject (optional) <input id="trace-subject" name="subject" size="24" autocomplete="off"></label> ' +
    '<button type="submit">trace</button></form>' +
    '<pre id="trace-out" aria-live="polite"></pre></section>'
  );
}
