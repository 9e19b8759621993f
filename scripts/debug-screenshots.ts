/**
 * A screenshot of /debug in Chromium (1400 px wide) for the README: a real emitter with debug on
 * that delivered a few batches, then met a 503 outage: the breaker open, batches backing off
 * (the attempts show the successes, then the failures).
 *
 *   npx tsx scripts/debug-screenshots.ts [name]   # writes docs/<name>.png (default debug-after)
 */
import { fileURLToPath } from 'node:url';
import { launchChromium } from '../harness/chromium.js';
import { startDebugEmitter } from '../harness/debug-emitter.js';

const prefix = process.argv[2] ?? 'debug-after';
const docs = fileURLToPath(new URL('../docs/', import.meta.url));
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

const emitter = await startDebugEmitter();
const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1800 } });
  await emitter.add(12);
  await wait(1500);
  emitter.outage();
  await emitter.add(12);
  await wait(4000);
  await page.goto(`${emitter.url}/debug`);
  await page.waitForSelector('#status:not(.stale)');
  await wait(1200);
  await page.screenshot({ path: `${docs}${prefix}.png`, fullPage: true });
  process.stdout.write(`wrote ${docs}${prefix}.png\n`);
} finally {
  await browser.close();
  await emitter.close();
}
