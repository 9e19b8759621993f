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
  function duration(ms) {
    if (typeof ms !== 'number') return '–';
    return ms < 1000 ? Math.round(ms) + ' ms' : (ms / 1000).toFixed(ms < 10000 ? 1 : 0) + ' s';
  }
  function clock(ms) {
    return new Date(ms).toISOString().slice(11, 19) + ' UTC';
  }
  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
  }
  function emptyRow(body, columns) {
    const tr = document.createElement('tr');
    const td = document.createElement('td');
    td.colSpan = columns;
    td.textContent = 'none';
    tr.appendChild(td);
    body.appendChild(tr);
  }
  /** one chip per attempt: its status (or reason) and duration, coloured by outcome */
  function chip(text, cls, title) {
    const el = document.createElement('span');
    el.className = 'chip ' + cls;
    el.textContent = text;
    el.title = title;
    return el;
  }
  function attemptChips(cell, attempts, inFlight, now) {
    (attempts || []).forEach(function (a) {
      const what = a.status !== undefined ? String(a.status) : a.reason || a.outcome;
      const title =
        'attempt ' +
        a.attempt +
        ' at ' +
        clock(a.startedAt) +
        ': ' +
        a.outcome +
        (a.status !== undefined ? ', HTTP ' + a.status : '') +
        (a.reason ? ' (' + a.reason + ')' : '') +
        ', ' +
        duration(a.durationMs);
      cell.appendChild(chip(what + ' · ' + duration(a.durationMs), a.outcome, title));
    });
    if (inFlight) {
      const elapsed = Math.max(0, now - inFlight.startedAt);
      cell.appendChild(
        chip(
          'sending · ' + duration(elapsed),
          'sending',
          'attempt ' + inFlight.attempt + ' in flight since ' + clock(inFlight.startedAt),
        ),
      );
    }
    if (!cell.firstChild) cell.textContent = '–';
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
  function renderDeliveries(d, times, history) {
    const listed = (d && d.listed) || [];
    const active = d ? d.active : 0;
    const batches = (history && history.batches) || {};
    const now = history ? history.now : Date.now();
    put('deliveries-active', active + (listed.length < active ? ' (listing ' + listed.length + ')' : ''));
    const body = document.querySelector('#deliveries tbody');
    if (body) {
      clear(body);
      if (listed.length === 0) emptyRow(body, 5);
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
        const past = batches[x.batchId] || {};
        const cell = document.createElement('td');
        cell.className = 'attempts';
        attemptChips(cell, past.attempts, past.inFlight, now);
        tr.appendChild(cell);
        body.appendChild(tr);
      });
    }
    renderFinished((history && history.finished) || [], now);
    mark(
      'delivery',
      listed.map(function (x) {
        return x.state;
      }),
      true,
    );
  }
  function renderFinished(finished, now) {
    const body = document.querySelector('#finished tbody');
    if (!body) return;
    clear(body);
    if (finished.length === 0) emptyRow(body, 3);
    finished.forEach(function (f) {
      const tr = document.createElement('tr');
      [f.batchId, f.result + ' (' + clock(f.at) + ')'].forEach(function (v) {
        const cell = document.createElement('td');
        cell.textContent = v;
        tr.appendChild(cell);
      });
      const cell = document.createElement('td');
      cell.className = 'attempts';
      attemptChips(cell, f.history, undefined, now);
      tr.appendChild(cell);
      body.appendChild(tr);
    });
  }
  const SVG_NS = 'http://www.w3.org/2000/svg';
  function svgEl(name, attrs, text) {
    const el = document.createElementNS(SVG_NS, name);
    Object.keys(attrs).forEach(function (k) {
      el.setAttribute(k, String(attrs[k]));
    });
    if (text !== undefined) el.textContent = text;
    return el;
  }
  const KINDS = ['success', 'retryable', 'split', 'permanent'];
  /**
   * The origin's last minutes as a strip: the breaker's state as a band along the top, attempts
   * per interval as stacked bars by outcome, a time axis below.
   */
  function renderStrip(origin, breakerNow, now) {
    const host = byId('origin-strip');
    if (!host || !origin) return;
    const W = 560;
    const BAND_Y = 2;
    const BAND_H = 10;
    const BARS_Y = 16;
    const BARS_H = 44;
    const AXIS_Y = 74;
    const svg = svgEl('svg', {
      xmlns: SVG_NS,
      class: 'strip',
      viewBox: '0 0 ' + W + ' 80',
      width: W,
      height: 80,
      role: 'img',
      'font-size': 10,
      'font-family': 'ui-monospace, Menlo, Consolas, monospace',
    });
    const from = now - origin.windowMs;
    const x = function (t) {
      return Math.max(0, Math.min(W, ((t - from) / origin.windowMs) * W));
    };
    // the breaker's band: the state at the window's start, then each change
    let state =
      origin.breakerAtStart || (origin.breaker[0] && origin.breaker[0].from) || breakerNow || 'closed';
    let since = from;
    const segments = [];
    origin.breaker.forEach(function (c) {
      segments.push([since, c.at, state]);
      state = c.to;
      since = c.at;
    });
    segments.push([since, now, state]);
    segments.forEach(function (s) {
      const x0 = x(s[0]);
      const w = Math.max(1, x(s[1]) - x0);
      const band = svgEl('rect', { class: 'band band-' + s[2], x: x0, y: BAND_Y, width: w, height: BAND_H });
      band.appendChild(svgEl('title', {}, 'breaker ' + s[2] + ' from ' + clock(Math.max(s[0], from))));
      svg.appendChild(band);
    });
    // attempts per interval, stacked by outcome
    const totals = origin.buckets.map(function (b) {
      return KINDS.reduce(function (n, k) {
        return n + b[k];
      }, 0);
    });
    const max = Math.max.apply(null, [1].concat(totals));
    const bw = Math.max(2, (origin.bucketMs / origin.windowMs) * W - 2);
    origin.buckets.forEach(function (b, i) {
      let y = BARS_Y + BARS_H;
      const x0 = x(b.start) + 1;
      KINDS.forEach(function (k) {
        if (!b[k]) return;
        const h = Math.max(1, (b[k] / max) * BARS_H);
        y -= h;
        const bar = svgEl('rect', { class: 'bar ' + k, x: x0, y: y, width: bw, height: h });
        bar.appendChild(svgEl('title', {}, clock(b.start) + ': ' + b[k] + ' ' + k + ' of ' + totals[i]));
        svg.appendChild(bar);
      });
    });
    svg.appendChild(
      svgEl('line', { class: 'axis', x1: 0, x2: W, y1: BARS_Y + BARS_H + 0.5, y2: BARS_Y + BARS_H + 0.5 }),
    );
    const minutes = Math.round(origin.windowMs / 60000);
    for (let m = minutes; m >= 0; m--) {
      const tx = x(now - m * 60000);
      const anchor = m === minutes ? 'start' : m === 0 ? 'end' : 'middle';
      svg.appendChild(
        svgEl(
          'text',
          { class: 'tick', x: tx, y: AXIS_Y, 'text-anchor': anchor },
          m === 0 ? 'now' : '−' + m + ' min',
        ),
      );
    }
    put('origin-peak', '(bars: attempts per ' + origin.bucketMs / 1000 + ' s, highest ' + max + ')');
    clear(host);
    host.appendChild(svg);
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
        const history = view.history;
        renderDeliveries(live.deliveries, view.times, history);
        renderBreaker(live.breaker, view.times);
        if (history) renderStrip(history.origin, live.breaker && live.breaker.state, history.now);
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
