/**
 * CPU per event of compressing batches at a gzip level, measured in this process: the bench's own
 * batches (one repeated detail text: they compress ~26x) and batches of varied content (random
 * ids, addresses and words from a seeded generator, ~3.4x), which compress and cost as real
 * events do.
 */
import { gzipSync } from 'node:zlib';
import { batchDocument } from './payload.js';
import { S } from './settings.js';

export interface GzipCost {
  level: number;
  /** us of CPU per event */
  benchUs: number;
  variedUs: number;
  /** compressed / raw bytes of one batch */
  benchRatio: number;
  variedRatio: number;
}

/** A deterministic generator (mulberry32): the same varied batch in every run. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS =
  'alpha beta gamma delta error warning info user login logout request response timeout database cache miss hit'.split(
    ' ',
  );

/** A batch document of `count` events of ~330 bytes of varied content. */
export function variedBatchDocument(count: number): string {
  const rnd = seeded(42);
  const int = (n: number) => Math.floor(rnd() * n);
  const hex = (bytes: number) =>
    Array.from({ length: bytes }, () => int(256).toString(16).padStart(2, '0')).join('');
  const events: string[] = [];
  for (let k = 0; k < count; k++) {
    const data = {
      host: `web-${int(200)}.example.com`,
      ip: `10.${int(255)}.${int(255)}.${int(255)}`,
      user: hex(6),
      latency_ms: int(5000),
      status: [200, 201, 404, 500][int(4)],
      msg: Array.from({ length: 6 + int(10) }, () => WORDS[int(WORDS.length)]).join(' '),
      trace: hex(16),
    };
    const published = new Date(1_700_000_000_000 + int(1e8)).toISOString();
    events.push(
      `{"subject":"approved.events","seq":${k + 1},"msg_id":"${hex(12)}","published_at":"${published}","data":${JSON.stringify(data)}}`,
    );
  }
  return `{"batch_id":"varied","nodes_domain":[],"nodes_ip":[],"nodes_cert":[],"edges":[],"events":[${events.join(',')}]}`;
}

function measure(doc: Buffer, level: number, rounds: number): { us: number; ratio: number } {
  let size = 0;
  for (let k = 0; k < 5; k++) size = gzipSync(doc, { level }).length;
  const cpu0 = process.cpuUsage();
  for (let k = 0; k < rounds; k++) gzipSync(doc, { level });
  const cpu = process.cpuUsage(cpu0);
  return { us: (cpu.user + cpu.system) / (rounds * S.batchSize), ratio: size / doc.length };
}

/** The cost at each of `levels`, on batches of S.batchSize events. */
export function gzipCosts(levels: readonly number[], rounds = 20): GzipCost[] {
  const bench = Buffer.from(batchDocument('0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', 1_000_000, S.batchSize));
  const varied = Buffer.from(variedBatchDocument(S.batchSize));
  return levels.map((level) => {
    const b = measure(bench, level, rounds);
    const v = measure(varied, level, rounds);
    return { level, benchUs: b.us, variedUs: v.us, benchRatio: b.ratio, variedRatio: v.ratio };
  });
}
