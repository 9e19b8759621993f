import { readFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../../harness/chromium.js';
import { startDebugEmitter, type DebugEmitter } from '../../harness/debug-emitter.js';

/**
 * The /debug page as Chromium draws it (Debian's chromium, headless, 1400x1800), served by a real
 * emitter with debug on that delivered some batches and then met a 503 outage: in every card no
 * two state boxes or transition labels overlap, every text stays inside its box, no arrow runs
 * through another transition's label, and the card holds its drawings at full size.
 */

/** the checks that run in the page (a browser script: test/support/browser/debug-geometry.js) */
const browserScript = readFileSync(new URL('../support/browser/debug-geometry.js', import.meta.url), 'utf8');
const GEOMETRY = `${browserScript}\nproblems();`;
const CARDS = `${browserScript}\ncards();`;

interface Problem {
  card: string;
  what: string;
}

let emitter: DebugEmitter;
let browser: Browser;
let page: Page;

async function machines(): Promise<{
  live: { breaker: { state: string } | null; deliveries: { listed: Array<{ attempts: number }> } };
}> {
  return (await fetch(`${emitter.url}/debug/machines?view=live`)).json() as never;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  emitter = await startDebugEmitter();
  browser = await launchChromium();
  await emitter.add(12);
  await emitter.sink.waitFor((rs) => rs.length >= 2, 30_000);
  emitter.outage();
  await emitter.add(12);
  await until('the breaker opens and a batch has failed attempts', async () => {
    const view = await machines();
    return view.live.breaker?.state === 'open' && view.live.deliveries.listed.some((d) => d.attempts > 0);
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 1800 } });
  await page.goto(`${emitter.url}/debug`);
  await page.waitForSelector('#status:not(.stale)', { timeout: 20_000 });
  await page.waitForSelector('#deliveries .chip.retryable', { timeout: 20_000 });
  await page.waitForSelector('#origin-strip svg rect.bar', { timeout: 20_000 });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await emitter?.close();
});

describe('/debug in Chromium (1400x1800)', () => {
  it('no two state boxes or transition labels overlap, texts stay in their boxes, no arrow crosses a label', async () => {
    const problems = (await page.evaluate(GEOMETRY)) as Problem[];
    expect(problems).toEqual([]);
  });

  it('each card fits the window (width and height) and draws its statechart at full size', async () => {
    const cards = (await page.evaluate(CARDS)) as Array<Record<string, number> & { id: string }>;
    expect(cards.map((c) => c.id)).toEqual([
      'machine-buffer',
      'machine-delivery',
      'machine-breaker',
      'machine-limiter',
    ]);
    for (const card of cards) {
      expect(card.cardRight, card.id).toBeLessThanOrEqual(1400);
      // (the deliveries' card grows with the batches listed: 12 here)
      expect(card.height, card.id).toBeLessThanOrEqual(1800);
      expect(card.overflowX, card.id).toBeLessThanOrEqual(0);
      expect(card.svgLeft, card.id).toBeGreaterThanOrEqual(0);
      expect(card.svgRight, card.id).toBeGreaterThanOrEqual(0);
      expect(card.scale, card.id).toBeCloseTo(1, 2);
    }
  });

  it('shows each batch its attempts and the origin its last minutes', async () => {
    const chips = await page.locator('#deliveries .chip.retryable').first().textContent();
    expect(chips).toMatch(/^503 · \d+ ms$/);
    expect(await page.locator('#finished .chip.success').count()).toBeGreaterThan(0);
    expect(await page.locator('#origin-strip rect.bar.success').count()).toBeGreaterThan(0);
    expect(await page.locator('#origin-strip rect.bar.retryable').count()).toBeGreaterThan(0);
    expect(await page.locator('#origin-strip rect.band.band-open').count()).toBeGreaterThan(0);
    expect(await page.locator('#origin-strip text').allTextContents()).toEqual([
      '−5 min',
      '−4 min',
      '−3 min',
      '−2 min',
      '−1 min',
      'now',
    ]);
  });
});
