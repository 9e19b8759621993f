import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { SinkRequest } from './sink.js';

/** Publishing sample approved.* traffic and counting what a sink received. */

export interface Published {
  subject: string;
  /** the identity of the item as it appears in a delivered batch */
  key: string;
  data: unknown;
}

const T0 = Date.UTC(2026, 0, 1);
const iso = (offsetS: number) => new Date(T0 + offsetS * 1000).toISOString();

/** A deterministic mix of domain, ip and cert nodes, edges and generic events, all distinct. */
export function sampleMessages(count: number, prefix = 'm'): Published[] {
  const out: Published[] = [];
  for (let i = 0; i < count; i++) {
    const host = `${prefix}${i}.example.test`;
    switch (i % 5) {
      case 0:
        out.push({
          subject: 'approved.domain',
          key: `d:${host}`,
          data: { host, apex: 'example.test', first_seen: iso(i), last_seen: iso(i + 1) },
        });
        break;
      case 1: {
        const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
        out.push({
          subject: 'approved.ip',
          key: `i:${ip}`,
          data: { ip, first_seen: iso(i), last_seen: iso(i) },
        });
        break;
      }
      case 2:
        out.push({
          subject: 'approved.edge',
          key: `e:RESOLVES_TO|${host}|10.0.0.${i & 255}`,
          data: {
            type: 'RESOLVES_TO',
            source: host,
            target: `10.0.0.${i & 255}`,
            observed_at: iso(i),
            probe_id: 'probe-1',
            run_id: 'run-1',
          },
        });
        break;
      case 3: {
        const spki = i.toString(16).padStart(64, '0');
        out.push({
          subject: 'approved.cert',
          key: `c:${spki}`,
          data: {
            spki_sha256: spki,
            subject_cn: host,
            issuer_cn: 'Test CA',
            not_before: iso(0),
            not_after: iso(86400),
          },
        });
        break;
      }
      default:
        out.push({
          subject: 'approved.finding',
          key: `v:${prefix}${i}`,
          data: { id: `${prefix}${i}`, severity: 'low', note: 'x'.repeat(200) },
        });
    }
  }
  return out;
}

/** Every item key found in the delivered bodies, with repetitions. */
export function deliveredKeys(requests: SinkRequest[]): string[] {
  const keys: string[] = [];
  for (const r of requests) {
    const b = r.body as Record<string, Array<Record<string, unknown>>>;
    if (!b || typeof b !== 'object') continue;
    for (const n of b.nodes_domain ?? []) keys.push(`d:${String(n.host)}`);
    for (const n of b.nodes_ip ?? []) keys.push(`i:${String(n.ip)}`);
    for (const n of b.nodes_cert ?? []) keys.push(`c:${String(n.spki_sha256)}`);
    for (const e of b.edges ?? []) keys.push(`e:${String(e.type)}|${String(e.source)}|${String(e.target)}`);
    for (const e of b.events ?? []) keys.push(`v:${String((e.data as { id?: unknown }).id)}`);
  }
  return keys;
}

export function successfulRequests(
  requests: SinkRequest[],
  okStatuses: (r: SinkRequest) => boolean = () => true,
): SinkRequest[] {
  return requests.filter(okStatuses);
}

export async function publishAll(natsUrl: string, messages: Published[], window = 500): Promise<void> {
  const nc = await connect({ servers: natsUrl });
  try {
    const js = jetstream(nc);
    const encoder = new TextEncoder();
    for (let i = 0; i < messages.length; i += window) {
      await Promise.all(
        messages
          .slice(i, i + window)
          .map((m) => js.publish(m.subject, encoder.encode(JSON.stringify(m.data)))),
      );
    }
  } finally {
    await nc.close();
  }
}

export async function publishRaw(natsUrl: string, subject: string, payload: Uint8Array): Promise<void> {
  const nc = await connect({ servers: natsUrl });
  try {
    await jetstream(nc).publish(subject, payload);
  } finally {
    await nc.close();
  }
}

export async function tempDir(name: string): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `be-${name}-`));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** A sink.waitFor predicate: every one of `messages` has been delivered at least once. */
export function allDelivered(messages: Published[]): (requests: SinkRequest[]) => boolean {
  const wanted = new Set(messages.map((m) => m.key));
  return (rs) => new Set(deliveredKeys(rs).filter((k) => wanted.has(k))).size === wanted.size;
}
