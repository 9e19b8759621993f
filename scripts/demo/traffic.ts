/** The demo's sample traffic: domain, ip and cert nodes, edges and findings, with duplicates. */
import { createHash } from 'node:crypto';
import type { Section } from './sink.js';

export interface Sample {
  subject: string;
  payload: Uint8Array;
  section: Section;
  key: string;
  duplicate: boolean;
}

const T0 = Date.UTC(2026, 0, 1);
const iso = (s: number) => new Date(T0 + s * 1000).toISOString();

type Push = (kind: string, section: Section, key: string, data: unknown, duplicate?: boolean) => void;

/** Ten messages about group `g`, in publishing order. */
function group(g: number, push: Push): (() => void)[] {
  const host = `host-${g}.demo.example`;
  const ip = `10.${(g >> 16) & 255}.${(g >> 8) & 255}.${g & 255}`;
  const spki = createHash('sha256').update(`demo-cert-${g}`).digest('hex');
  const t = g * 60;
  const edge = (type: string, source: string, target: string, at: number) => ({
    type,
    source,
    target,
    observed_at: iso(at),
    probe_id: 'demo-probe',
    run_id: 'demo-run',
  });
  const domain = (from: number, to: number) => ({
    host,
    apex: 'demo.example',
    first_seen: iso(from),
    last_seen: iso(to),
  });
  const finding = (check: string, severity: string) => ({
    id: `f-${g}-${check.slice(0, 3)}`,
    host,
    check,
    severity,
  });
  return [
    () => push('domain', 'nodes_domain', host, domain(t, t + 60)),
    () => push('ip', 'nodes_ip', ip, { ip, first_seen: iso(t), last_seen: iso(t + 60) }),
    () =>
      push('cert', 'nodes_cert', spki, {
        spki_sha256: spki,
        subject_cn: host,
        issuer_cn: 'Demo CA',
        not_before: iso(0),
        not_after: iso(365 * 86400),
      }),
    () => push('edge', 'edges', `RESOLVES_TO|${host}|${ip}`, edge('RESOLVES_TO', host, ip, t + 10)),
    () => push('edge', 'edges', `RESOLVES_TO|${host}|${ip}`, edge('RESOLVES_TO', host, ip, t + 5), true),
    () => push('domain', 'nodes_domain', host, domain(t - 30, t + 120), true),
    () => push('edge', 'edges', `USES_CERT|${host}|${spki}`, edge('USES_CERT', host, spki, t + 20)),
    () =>
      push('edge', 'edges', `ALIAS_OF|www.${host}|${host}`, edge('ALIAS_OF', `www.${host}`, host, t + 30)),
    () =>
      push(
        'finding',
        'events',
        `f-${g}-tls`,
        finding('tls-expiry', ['low', 'medium', 'high'][g % 3] as string),
      ),
    () => push('finding', 'events', `f-${g}-dns`, finding('dns-dangling', 'low')),
  ];
}

/**
 * `count` messages in groups of ten: per group one domain, ip and cert node, three distinct edges,
 * two generic `finding` events, and two duplicates (the same edge seen again earlier, the same
 * domain seen over a wider window) that the batch dedup merges into the originals.
 */
export function sampleTraffic(count: number, prefix: string): Sample[] {
  const enc = new TextEncoder();
  const out: Sample[] = [];
  const push: Push = (kind, section, key, data, duplicate = false) =>
    out.push({
      subject: `${prefix}.${kind}`,
      payload: enc.encode(JSON.stringify(data)),
      section,
      key,
      duplicate,
    });
  for (let g = 0; out.length < count; g++) for (const make of group(g, push)) if (out.length < count) make();
  return out;
}
