import { describe, expect, it } from 'vitest';
import { parseAckSubject } from '../../src/ingress/delivery-facts.js';
import { isExactSequence } from '../../src/model.js';

// 2026-11-26T05:00:00.123456789Z in nanoseconds
const NANOS = '1795669200123456789';
const facts = (reply: string) => ({ reply, seq: 4711, deliveryCount: 2, publishedMs: 1795669200123 });

describe('parseAckSubject', () => {
  it('reads the three fields the emitter needs from every ack subject format', () => {
    const old = `$JS.ACK.APPROVED.batch-emitter.2.4711.99.${NANOS}.17`;
    const withDomain = `$JS.ACK._.ACCHASH.APPROVED.batch-emitter.2.4711.99.${NANOS}.17`;
    const withRandom = `$JS.ACK.hub.ACCHASH.APPROVED.batch-emitter.2.4711.99.${NANOS}.17.x9Yz`;
    for (const reply of [old, withDomain, withRandom]) expect(parseAckSubject(reply)).toEqual(facts(reply));
  });

  it('refuses anything else, so the caller falls back to the client library', () => {
    expect(parseAckSubject('_INBOX.abc.def')).toBeUndefined();
    expect(parseAckSubject('$JS.ACK.APPROVED.c.2.4711')).toBeUndefined();
    expect(parseAckSubject(`$JS.ACK.APPROVED.c.two.4711.99.${NANOS}.17`)).toBeUndefined();
    expect(parseAckSubject(`$JS.ACK.a.b.c.d.e.f.g.h.i.j.k.l.m`)).toBeUndefined();
    expect(parseAckSubject(`$JS.ACK.APPROVED.c.2.47x1.99.${NANOS}.17`)).toBeUndefined();
    expect(parseAckSubject(`$JS.ACK.APPROVED.c.2.4711.99.1795669200123x56789.17`)).toBeUndefined();
    expect(parseAckSubject(`$JS.ACK.APPROVED.c.2.4711.99.17956x9200123456789.17`)).toBeUndefined();
    expect(parseAckSubject(`$JS.ACK.APPROVED.c.2.4711.99.12x45.17`)).toBeUndefined();
  });

  it('reads a stream sequence past 2^53 inexact, which is never used as a key (the ack subject is kept whole)', () => {
    const reply = `$JS.ACK.APPROVED.c.2.9007199254740993.99.${NANOS}.17`;
    const parsed = parseAckSubject(reply);
    expect(parsed).toMatchObject({ reply, deliveryCount: 2 });
    expect(parsed?.seq).toBe(9007199254740992);
    expect(isExactSequence(parsed?.seq)).toBe(false);
    expect(parseAckSubject(`$JS.ACK.APPROVED.c.2.4711.9007199254740993.${NANOS}.17`)?.seq).toBe(4711);
  });

  it('reads the publish time to the exact millisecond, which the nanoseconds as a double are not', () => {
    // as a double, 1795669200123999999 ns rounds up into the next millisecond
    const late = parseAckSubject('$JS.ACK.APPROVED.c.1.5.5.1795669200123999999.0');
    expect(late?.publishedMs).toBe(1795669200123);
    expect(parseAckSubject('$JS.ACK.APPROVED.c.1.5.5.999999.0')?.publishedMs).toBe(0);
    expect(parseAckSubject('$JS.ACK.APPROVED.c.1.5.5.1000000.0')?.publishedMs).toBe(1);
  });
});
