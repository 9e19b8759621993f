/*
 * The /debug page's script (a classic browser script, served as /debug/app.js under a
 * Content-Security-Policy of 'self'): polls debug/machines?view=live every second and fills in the
 * page. It only reads that redacted JSON view and writes text into the page; it never posts
 * anything, never loads another resource and never builds HTML from data.
 */
'use strict';
(function () {
  const POLL_MS = 1000;
  function byId(id) {
    return document.getElementById(id);
  }
  function put(id, text) {
    const el = byId(id);
    if (el) el.textContent = text;
  }
  function meter(id, value, max) {
    const el = byId(id);
    if (!el) return;
    el.max = max > 0 ? max : 1;
    el.value = Math.min(value, el.max);
  }
  function bytes(n) {
    if (typeof n !== 'number') return '–';
    if (n < 1024) return n + ' B';
    if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
    return (n / 1048576).toFixed(1) + ' MiB';
  }
  function seconds(ms) {
    return typeof ms === 'number' ? (ms / 1000).toFixed(ms < 10000 ? 2 : 0) + ' s' : '–';
  }
  function when(iso) {
    if (!iso) return '–';
    const left = (Date.parse(iso) - Date.now()) / 1000;
    const hms = iso.slice(11, 19) + ' UTC';
    return left >= 0 ? hms + ' (in ' + left.toFixed(1) + ' s)' : hms + ' (' + (-left).toFixed(1) + ' s ago)';
  }
  function paths(value) {
    if (typeof value === 'string') return [value];
    const out = [];
    if (value && typeof value === 'object') {
      Object.keys(value).forEach(function (key) {
        out.push(key);
        paths(value[key]).forEach(function (p) {
          out.push(key + '.' + p);
        });
      });
    }
    return out;
  }
  function mark(machine, values, badges) {
    const counts = {};
    values.forEach(function (v) {
      paths(v).forEach(function (p) {
        counts[p] = (counts[p] || 0) + 1;
      });
    });
    const svg = document.querySelector('svg[data-machine="' + machine + '"]');
    if (!svg) return;
    const groups = svg.querySelectorAll('g.state');
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      const n = counts[g.getAttribute('data-state')] || 0;
      if (n > 0) g.classList.add('active');
      else g.classList.remove('active');
      const badge = g.querySelector('text.badge');
      if (badge) badge.textContent = badges && n > 0 ? String(n) : '';
    }
  }
  function renderBuffer(b) {
    if (!b) {
      put('buffer-state', 'not running');
      mark('buffer', []);
      return;
    }
    put('buffer-state', paths(b.state).join(' / '));
    put('buffer-count', b.count + ' / ' + (b.maxItems === undefined ? '?' : b.maxItems));
    put('buffer-bytes', bytes(b.bytes) + ' / ' + bytes(b.maxBatchBytes));
    put('buffer-interval', seconds(b.intervalMs));
    meter('buffer-count-meter', b.count, b.maxItems);
    meter('buffer-bytes-meter', b.bytes, b.maxBatchBytes);
    mark('buffer', [b.state]);
  }
  function renderDeliveries(d, times) {
    const listed = (d && d.listed) || [];
    const active = d ? d.active : 0;
    put('deliveries-active', active + (listed.length < active ? ' (listing ' + listed.length + ')' : ''));
    const body = document.querySelector('#deliveries tbody');
    if (body) {
      while (body.firstChild) body.removeChild(body.firstChild);
      if (listed.length === 0) {
        const empty = document.createElement('tr');
        const td = document.createElement('td');
        td.colSpan = 4;
        td.textContent = 'none';
        empty.appendChild(td);
        body.appendChild(empty);
      }
      listed.forEach(function (x) {
        const tr = document.createElement('tr');
        const state = paths(x.state).join(' / ');
        const attempt = state === 'sending' ? x.attempts + 1 + ' (sending)' : String(x.attempts);
        let next = '–';
        if (state === 'backoff') {
          const at = times && times.nextRetryAt ? times.nextRetryAt[x.batchId] : undefined;
          next = at ? when(at) : x.nextDelayMs !== null ? 'after ' + seconds(x.nextDelayMs) : '?';
        }
        [x.batchId, state, attempt, next].forEach(function (v) {
          const cell = document.createElement('td');
          cell.textContent = v;
          tr.appendChild(cell);
        });
        body.appendChild(tr);
      });
    }
    mark(
      'delivery',
      listed.map(function (x) {
        return x.state;
      }),
      true,
    );
  }
  function renderBreaker(b, times) {
    if (!b) {
      put('breaker-state', 'not running');
      mark('breaker', []);
      return;
    }
    put('breaker-origin', b.origin);
    put('breaker-state', b.state);
    put('breaker-allowed', String(b.allowed));
    put('breaker-inflight', String(b.inFlight));
    put('breaker-waiting', b.waiting === undefined ? '–' : String(b.waiting));
    put('breaker-failures', String(b.consecutiveFailures));
    put('breaker-reset', seconds(b.resetTimeoutMs));
    put('breaker-since', times && times.breaker && times.breaker.since ? when(times.breaker.since) : '–');
    put(
      'breaker-reopen',
      times && times.breaker && times.breaker.reopenAt
        ? when(times.breaker.reopenAt)
        : b.state === 'closed'
          ? 'now (closed)'
          : b.state === 'halfOpen'
            ? 'probing'
            : '–',
    );
    mark('breaker', [b.state]);
  }
  function renderLimiter(l) {
    if (!l) {
      put('limiter-state', 'not running');
      mark('limiter', []);
      return;
    }
    put('limiter-state', l.state);
    put('limiter-mode', l.mode);
    put('limiter-limit', l.limit + ' of ' + l.maxConcurrency);
    put('limiter-rtt', l.rttMs === undefined ? '–' : l.rttMs + ' ms');
    mark('limiter', [l.state]);
  }
  function status(text, stale) {
    const el = byId('status');
    if (!el) return;
    el.textContent = text;
    if (stale) el.classList.add('stale');
    else el.classList.remove('stale');
  }
  function poll() {
    fetch('debug/machines?view=live', { cache: 'no-store', credentials: 'same-origin' })
      .then(function (res) {
        if (!res.ok) throw new Error('HTTP ' + res.status);
        return res.json();
      })
      .then(function (view) {
        const live = view.live || {};
        renderBuffer(live.buffer);
        renderDeliveries(live.deliveries, view.times);
        renderBreaker(live.breaker, view.times);
        renderLimiter(live.limiter);
        status('live, updated ' + new Date().toISOString().slice(11, 19) + ' UTC', false);
      })
      .catch(function (err) {
        status('cannot read debug/machines: ' + err.message, true);
      })
      .then(function () {
        setTimeout(poll, POLL_MS);
      });
  }
  poll();
})();
