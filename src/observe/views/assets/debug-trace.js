/*
 * The /debug page's trace search (a classic browser script, served as /debug/trace.js under a
 * Content-Security-Policy of 'self'): asks debug/trace for the story of a batch id or a stream
 * sequence (with an optional subject) and shows it as text; `#trace=<id or sequence>` in the
 * page's address asks at load. It only reads; it never builds HTML from data (the story is put in
 * as text).
 */
'use strict';
(function () {
  function byId(id) {
    return document.getElementById(id);
  }
  function queryOf(target, subject) {
    const param = /^[0-9]+$/.test(target) ? 'seq' : 'batch';
    const parts = [param + '=' + encodeURIComponent(target)];
    if (param === 'seq' && subject) parts.push('subject=' + encodeURIComponent(subject));
    parts.push('format=text');
    return parts.join('&');
  }
  function show(text) {
    const out = byId('trace-out');
    if (out) out.textContent = text;
  }
  function search(event) {
    if (event) event.preventDefault();
    const target = byId('trace-target').value.trim();
    const subject = byId('trace-subject').value.trim();
    if (!target) return;
    show('tracing ' + target + '…');
    fetch('debug/trace?' + queryOf(target, subject), { headers: { accept: 'text/plain, application/json' } })
      .then(function (response) {
        return response.text().then(function (text) {
          if (response.ok) return text;
          try {
            return 'cannot trace: ' + JSON.parse(text).error;
          } catch {
            return 'cannot trace: HTTP ' + response.status;
          }
        });
      })
      .then(show, function (error) {
        show('cannot trace: ' + error.message);
      });
  }
  /** `/debug#trace=<batch id or sequence>[&subject=<s>]` opens the page with that trace shown. */
  function fromHash() {
    const match = /^#trace=([^&]+)(?:&subject=(.+))?$/.exec(document.location.hash);
    if (!match) return;
    byId('trace-target').value = decodeURIComponent(match[1]);
    byId('trace-subject').value = match[2] ? decodeURIComponent(match[2]) : '';
    search();
  }
  function start() {
    const form = byId('trace-form');
    if (!form) return;
    form.addEventListener('submit', search);
    fromHash();
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
