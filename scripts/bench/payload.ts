/** The benchmark's data: ~300-byte JSON events carrying their publish time, and pre-built batches. */
import { gzipSync } from 'node:zlib';

const SEVERITIES = ['low', 'medium', 'high'];
const CHECKS = ['tls-expiry', 'dns-dangling', 'open-port', 'weak-cipher'];
const TARGET_BYTES = 300;
const enc = new TextEncoder();

export interface BenchEvent {
  /** epoch ms at publish: the sink computes publish -> delivered latency from it */
  t: number;
  i: number;
  kind: string;
  host: string;
  check: string;
  severity: string;
  probe: string;
  detail: string;
}

function event(i: number, t: number, detail: string): BenchEvent {
  return {
    t,
    i,
    kind: 'finding',
    host: `host-${i}.bench.example`,
    check: CHECKS[i % CHECKS.length] as string,
    severity: SEVERITIES[i % SEVERITIES.length] as string,
    probe: 'bench-probe',
    detail,
  };
}

// pad `detail` so a typical event serialises to about TARGET_BYTES
const base = JSON.stringify(event(100_000, Date.now(), '')).length;
const DETAIL = 'certificate chain verified; next check scheduled; '
  .repeat(8)
  .slice(0, Math.max(0, TARGET_BYTES - base));

export function eventJson(i: number, t: number): string {
  return JSON.stringify(event(i, t, DETAIL));
}

export function eventBytes(i: number, t: number): Uint8Array {
  return enc.encode(eventJson(i, t));
}

export const EVENT_BYTES = eventJson(100_000, Date.now()).length;

/**
 * A gzipped batch document in the wire format (README "Wire format") holding `count` events as the emitter
 * would wrap them (`{subject, seq, msg_id, published_at, data}`).
 */
export function gzipBatch(id: string, firstSeq: number, count: number, level: number): Buffer {
  return gzipSync(batchDocument(id, firstSeq, count), { level });
}

/** The uncompressed batch document gzipBatch compresses. */
export function batchDocument(id: string, firstSeq: number, count: number): string {
  const now = Date.now();
  const events: string[] = [];
  for (let k = 0; k < count; k++) {
    const seq = firstSeq + k;
    events.push(
      `{"subject":"approved.bench","seq":${seq},"msg_id":"APPROVED:${seq}","published_at":"${new Date(now).toISOString()}","data":${eventJson(seq, now)}}`,
    );
  }
  const doc =
    `{"batch_id":"${id}","probe_id":"bench-probe","run_id":"bench-run","created_at":"${new Date(now).toISOString()}",` +
    `"nodes_domain":[],"nodes_ip":[],"nodes_cert":[],"edges":[],"events":[${events.join(',')}]}`;
  return doc;
}
