import { describe, expect, it } from 'vitest';
import { ackCommands } from '../../src/ingress/jetstream-ack-publisher.js';

/** The bytes of a durable batch's acks: one `PUB <ack subject> 4` with `+ACK` per message, in order. */

const asText = (replies: string[]) => replies.map((r) => `PUB ${r} 4\r\n+ACK\r\n`).join('');

describe('ackCommands', () => {
  it('writes one PUB of +ACK per ack subject, in the order given', () => {
    const replies = Array.from(
      { length: 1000 },
      (_, i) => `$JS.ACK.EVENTS.emitter.1.${i + 1}.${i + 1}.1764554400000000000.${999 - i}`,
    );
    const out = ackCommands(replies);
    expect(out.toString('latin1')).toBe(asText(replies));
    expect(out.length).toBe(Buffer.byteLength(asText(replies)));
  });

  it('encodes a stream or consumer name beyond ASCII as UTF-8', () => {
    const replies = [
      '$JS.ACK.EVENTS.e.1.1.1.1.0',
      '$JS.ACK.ÉVÉNEMENTS.émetteur.1.2.2.1.0',
      '$JS.ACK.流.c.1.3.3.1.0',
    ];
    expect(ackCommands(replies).toString('utf8')).toBe(asText(replies));
    // last, and long: more bytes than the room an ASCII subject of its length would have had
    const last = [...replies, `$JS.ACK.${'流'.repeat(40)}.c.1.4.4.1.0`];
    expect(ackCommands(last).toString('utf8')).toBe(asText(last));
  });

  it('writes nothing for no acks', () => {
    expect(ackCommands([])).toHaveLength(0);
  });
});
