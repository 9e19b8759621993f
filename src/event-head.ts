/**
 * The head of an event's JSON in a batch: `{"subject":…,"seq":…,"msg_id":…,"published_at":…,"data":`,
 * as JSON.stringify writes those fields, kept as UTF-8 parts and written straight into the batch's
 * buffer. At full speed every event had its head built as a string, joined, then flattened and
 * encoded: about 330 bytes of garbage per event for the collector.
 *
 * The parts are shared: the subject's, the stream's id prefix and the publish time's change rarely
 * from one event to the next, so each is encoded once and remembered until it changes. What is per
 * event is the sequence, written as digits where it appears (after `"seq":` and, for the default
 * message id `<stream>:<seq>`, at the end of the id).
 */

/** Printable ASCII but `"` and `\`: JSON.stringify would only add the quotes. */
const NOTHING_TO_ESCAPE = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** JSON.stringify of a string, without its serialiser for the usual subject, id and time. */
function jsonString(text: string): string {
  return NOTHING_TO_ESCAPE.test(text) ? `"${text}"` : JSON.stringify(text);
}

/** One encoded part for the last key seen: a stream's events mostly share theirs. */
class LastPart {
  private key: string | undefined;
  private bytes = Buffer.alloc(0);

  constructor(private readonly encode: (key: string) => string) {}

  of(key: string): Buffer {
    if (key !== this.key) {
      this.bytes = Buffer.from(this.encode(key), 'utf8');
      this.key = key;
    }
    return this.bytes;
  }
}

const subjectPart = new LastPart((subject) => `{"subject":${jsonString(subject)},"seq":`);
/**
 * the id up to its sequence, without the closing quote: JSON escapes character by character, so the
 * escaped `<stream>:` followed by the digits is the escaped whole id
 */
const streamIdPart = new LastPart((stream) => `,"msg_id":${jsonString(`${stream}:`).slice(0, -1)}`);
/** starts with the id's closing quote */
const tailPart = new LastPart((publishedAt) => `","published_at":${jsonString(publishedAt)},"data":`);

export class EventHead {
  private readonly subject: Buffer;
  private readonly seq: number | null;
  /** `,"msg_id":"` and the id (escaped), without its closing quote */
  private readonly id: Buffer;
  /** whether the id ends with the sequence (the default id) */
  private readonly idEndsWithSeq: boolean;
  private readonly tail: Buffer;
  /** the head's UTF-8 bytes */
  readonly byteLength: number;

  /**
   * `msgId` undefined: the default id, `<idStream>:<seq>` (a number then). Positional, not an
   * object of fields: one head is made per event.
   */
  constructor(
    subject: string,
    seq: number | null,
    msgId: string | undefined,
    idStream: string,
    publishedAt: string,
  ) {
    this.subject = subjectPart.of(subject);
    this.seq = seq;
    this.idEndsWithSeq = msgId === undefined;
    if (msgId === undefined && seq === null) throw new TypeError('a default message id needs a sequence');
    this.id =
      msgId === undefined
        ? streamIdPart.of(idStream)
        : Buffer.from(`,"msg_id":${jsonString(msgId).slice(0, -1)}`, 'utf8');
    this.tail = tailPart.of(publishedAt);
    const seqBytes = digitCount(seq);
    this.byteLength =
      this.subject.length +
      seqBytes +
      this.id.length +
      (this.idEndsWithSeq ? seqBytes : 0) +
      this.tail.length;
  }

  /** Write the head at `at` (there must be room for byteLength); returns where it ends. */
  write(buf: Buffer, at: number): number {
    buf.set(this.subject, at);
    at = writeSeq(buf, at + this.subject.length, this.seq);
    buf.set(this.id, at);
    at += this.id.length;
    if (this.idEndsWithSeq) at = writeSeq(buf, at, this.seq);
    buf.set(this.tail, at);
    return at + this.tail.length;
  }

  /** The head as text. */
  text(): string {
    const buf = Buffer.allocUnsafe(this.byteLength);
    this.write(buf, 0);
    return buf.toString('utf8');
  }
}

/** Whether the sequence is written digit by digit (else as String() writes it, as JSON.stringify does). */
function inDigits(seq: number | null): seq is number {
  return seq !== null && Number.isSafeInteger(seq) && seq >= 0;
}

/** The bytes of a sequence as JSON.stringify writes it. */
function digitCount(seq: number | null): number {
  if (!inDigits(seq)) return String(seq).length;
  let count = 1;
  for (let rest = seq; rest >= 10; rest = Math.floor(rest / 10)) count += 1;
  return count;
}

function writeSeq(buf: Buffer, at: number, seq: number | null): number {
  if (!inDigits(seq)) return at + buf.write(String(seq), at, 'latin1');
  const end = at + digitCount(seq);
  let rest = seq;
  for (let i = end - 1; i >= at; i--) {
    buf[i] = 48 + (rest % 10);
    rest = Math.floor(rest / 10);
  }
  return end;
}
