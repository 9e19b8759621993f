import { describe, expect, it } from 'vitest';
import { BatchBuilder } from '../../src/intake/batch-builder.js';
import { inProcessItem } from '../../src/intake/in-process.js';
import { BatchDocumentSchema, itemFromEdge, itemFromEvent, parseEdge, parseNode } from '../../src/model.js';

const edge = (observed: string, probe = 'p1') =>
  itemFromEdge(
    parseEdge({
      type: 'RESOLVES_TO',
      source: 'a.example',
      target: '192.0.2.1',
      observed_at: observed,
      probe_id: probe,
      run_id: 'r',
    }),
  );

describe('batch builder', () => {
  it('dedups edges keeping the earliest observed_at, and merges node first/last seen', () => {
    const b = new BatchBuilder<string>('probe', 'run');
    for (const item of [
      edge('2024-01-02T00:00:00Z'),
      edge('2024-01-01T00:00:00Z', 'p2'),
      parseNode({
        host: 'a.example',
        apex: 'example',
        first_seen: '2024-01-05T00:00:00Z',
        last_seen: '2024-01-06T00:00:00Z',
      }),
      parseNode({
        host: 'a.example',
        apex: 'example',
        first_seen: '2024-01-03T00:00:00Z',
        last_seen: '2024-01-04T00:00:00Z',
      }),
      parseNode({
        ip: '192.0.2.1',
        first_seen: '2024-01-03T00:00:00+02:00',
        last_seen: '2024-01-04T00:00:00Z',
      }),
    ]) {
      const m = b.measure(item);
      b.add(item, m.json, 'ack');
    }
    expect(b.size).toBe(3);
    const sealed = b.take('0190a0b0-0000-7000-8000-000000000000', '2024-01-01T00:00:00.000Z');
    expect(sealed.sources).toHaveLength(5);
    const doc = BatchDocumentSchema.parse(JSON.parse(sealed.body.toString()));
    expect(doc.edges).toEqual([
      {
        type: 'RESOLVES_TO',
        source: 'a.example',
        target: '192.0.2.1',
        observed_at: '2024-01-01T00:00:00.000Z',
        probe_id: 'p1',
        run_id: 'r',
      },
    ]);
    expect(doc.nodes_domain[0]).toMatchObject({
      first_seen: '2024-01-03T00:00:00.000Z',
      last_seen: '2024-01-06T00:00:00.000Z',
    });
    expect(doc.nodes_ip[0]?.first_seen).toBe('2024-01-02T22:00:00.000Z');
    expect(b.size).toBe(0);
  });

  it('dedups events by stream sequence and measures exactly', () => {
    const b = new BatchBuilder<number>('probe', 'run');
    const ev = (seq: number) =>
      itemFromEvent({
        subject: 'approved.x',
        seq,
        msg_id: `m${seq}`,
        published_at: '2024-01-01T00:00:00.000Z',
        data: { n: seq },
      });
    let bytes = 0;
    for (const seq of [1, 2, 2, 3]) {
      const item = ev(seq);
      const m = b.measure(item);
      bytes += m.bytes;
      b.add(item, m.json, seq);
    }
    const sealed = b.take('0190a0b0-0000-7000-8000-000000000000', '2024-01-01T00:00:00.000Z');
    expect(JSON.parse(sealed.body.toString()).events.map((e: { seq: number }) => e.seq)).toEqual([1, 2, 3]);
    expect(Buffer.byteLength(sealed.body)).toBeLessThanOrEqual(b.envelopeBytes() + bytes);
    expect(Buffer.byteLength(sealed.body)).toBeGreaterThanOrEqual(b.envelopeBytes() + bytes - 5);
  });

  it('keeps every event whose stream sequence is beyond 2^53: two of them may read as one number', () => {
    const b = new BatchBuilder<number>('probe', 'run');
    const big = 2 ** 60; // 2 ** 60 + 1 reads as this too
    for (const n of [1, 2]) {
      const item = itemFromEvent({
        subject: 'approved.x',
        seq: big,
        msg_id: `m${n}`,
        published_at: '',
        data: { n },
      });
      expect(b.measure(item).isNew).toBe(true);
      b.add(item, b.measure(item).json, n);
    }
    const sealed = b.take('0190a0b0-0000-7000-8000-000000000000', '2024-01-01T00:00:00.000Z');
    expect(JSON.parse(sealed.body.toString()).events.map((e: { msg_id: string }) => e.msg_id)).toEqual([
      'm1',
      'm2',
    ]);
  });

  it('keeps every in-process event (a null key: unique by construction), and measures them exactly', () => {
    const b = new BatchBuilder<number>('probe', 'run');
    let bytes = 0;
    for (const n of [1, 1, 2]) {
      const item = inProcessItem.event('log.info', { n }, `{"n":${n}}`);
      expect(item.key).toBeNull();
      const m = b.measure(item);
      expect(m.isNew).toBe(true);
      bytes += m.bytes;
      b.add(item, m.json);
    }
    const sealed = b.take('0190a0b0-0000-7000-8000-000000000000', '2024-01-01T00:00:00.000Z');
    const doc = BatchDocumentSchema.parse(JSON.parse(sealed.body.toString()));
    expect(doc.events.map((e) => e.data)).toEqual([{ n: 1 }, { n: 1 }, { n: 2 }]);
    expect(new Set(doc.events.map((e) => e.msg_id)).size).toBe(3);
    expect(Buffer.byteLength(sealed.body)).toBeLessThanOrEqual(b.envelopeBytes() + bytes);
    expect(Buffer.byteLength(sealed.body)).toBeGreaterThanOrEqual(b.envelopeBytes() + bytes - 5);
  });

  it('keeps a body of many events with other sections and non-ASCII data whole, batch after batch', () => {
    const b = new BatchBuilder<number>('probe', 'run');
    for (const round of [0, 1]) {
      const seqs = Array.from({ length: 1500 }, (_, i) => round * 10_000 + i);
      for (const seq of seqs) {
        const item = itemFromEvent({
          subject: `approved.x${seq % 3}`,
          seq,
          msg_id: `m${seq}`,
          published_at: '2024-01-01T00:00:00.000Z',
          data: { text: `événement ${seq} 😀`.repeat(3) },
        });
        b.add(item, b.measure(item).json, seq, `approved.x${seq % 3}`);
      }
      const e = edge('2024-01-02T00:00:00Z');
      b.add(e, b.measure(e).json, -1, 'approved.edge');
      const sealed = b.take('0190a0b0-0000-7000-8000-000000000000', '2024-01-01T00:00:00.000Z');
      const doc = BatchDocumentSchema.parse(JSON.parse(sealed.body.toString()));
      expect(doc.events.map((x) => x.seq)).toEqual(seqs);
      expect(doc.events[7]?.data).toEqual({ text: `événement ${seqs[7]} 😀`.repeat(3) });
      expect(doc.edges).toHaveLength(1);
      expect(sealed.itemCount).toBe(1501);
      expect(sealed.subjects.sort()).toEqual(['approved.edge', 'approved.x0', 'approved.x1', 'approved.x2']);
    }
  });
});
