import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LevelLedger } from '../../src/observe/ledger/index.js';
import { tempDir } from '../../harness/workload.js';
import { Spool } from '../../src/spool/spool.js';
import { uuidv7 } from '../../src/util/ids.js';
import { traceQueryOf, traceQueryOfParams, traceParamsOf } from '../../src/observe/trace/query.js';
import { traceStory } from '../../src/observe/trace/story.js';
import { traceText } from '../../src/observe/trace/text.js';
import { spoolRecord } from '../support/spool-record.js';

/**
 * The ends of a story that the integration tests do not reach, on a real spool in a temp dir
 * (no ledger): a kept dead letter with the delivery machine's history, a quarantined batch, a
 * message refused as input, an unknown batch, a subject that does not match, and a message the
 * consumer acknowledged but nothing holds.
 */

let spool: Spool;
let remove: () => Promise<void>;

beforeEach(async () => {
  const dir = await tempDir('trace-story');
  remove = dir.remove;
  spool = await Spool.open(dir.path);
});
afterEach(async () => {
  await spool.close();
  await remove();
});

describe('trace story', () => {
  it('a dead-lettered batch: reason, status and the attempts from the dead letter history', async () => {
    const { state, body } = spoolRecord();
    await spool.batches.put({ ...state, trigger: 'manual' }, body, [7]);
    await spool.deadLetters.moveBatch(state.id, {
      reason: 'http_400',
      at: '2026-01-01T00:00:00.000Z',
      status: 400,
      subjects: state.subjects,
      history: [
        { attempt: 1, outcome: { kind: 'permanent', status: 400, reason: 'http_400', durationMs: 5 } },
      ],
    });
    const story = await traceStory({ spool }, { seq: 7, subject: 'approved.other' });
    expect(story.event).toMatchObject({
      foundIn: 'sequence index',
      batchId: state.id,
      subjectMismatch: true,
    });
    expect(story.batch).toMatchObject({ trigger: 'manual', items: 1, subjects: ['approved.x'] });
    expect(story.batch?.attempts).toEqual([
      { n: 1, at: '', durationMs: 5, kind: 'permanent', status: 400, reason: 'http_400' },
    ]);
    expect(story.batch?.end).toEqual({
      kind: 'dead_lettered',
      at: '2026-01-01T00:00:00.000Z',
      reason: 'http_400',
      kept: true,
      status: 400,
    });
    const text = traceText(story);
    expect(text).toContain('note: that batch holds no message on approved.other');
    expect(text).toContain('attempt 1  time not recorded  HTTP 400 permanent (http_400)  5 ms');
    expect(text).toContain('dead-lettered at 2026-01-01T00:00:00.000Z: http_400 (in the dead letters');
  });

  it('a quarantined batch, and a batch of which nothing is known', async () => {
    const { state, body } = spoolRecord();
    await spool.batches.put(state, body);
    await spool.quarantine.takeBatch(state.id, 'body checksum mismatch');
    const quarantined = await traceStory({ spool }, { batch: state.id });
    expect(quarantined.batch?.end).toEqual({ kind: 'quarantined', reason: 'body checksum mismatch' });
    expect(traceText(quarantined)).toContain(
      'quarantined as unreadable: body checksum mismatch (never sent)',
    );

    const unknown = await traceStory({ spool }, { batch: uuidv7() });
    expect(unknown.batch?.end.kind).toBe('unknown');
    expect(unknown.batch?.attempts).toEqual([]);
  });

  it('a message refused as input is found among the dead letters by its sequence', async () => {
    await spool.deadLetters.addMessage({
      id: uuidv7(),
      kind: 'message',
      reason: 'invalid_json: Unexpected token',
      at: '2026-01-02T00:00:00.000Z',
      subjects: ['approved.bad'],
      message: { subject: 'approved.bad', seq: 42, rawBase64: '', rawBytes: 0, truncated: false },
    });
    const story = await traceStory({ spool }, { seq: 42, subject: 'approved.bad' });
    expect(story.event).toMatchObject({
      foundIn: 'dead letters',
      deadLetter: { reason: 'invalid_json: Unexpected token' },
    });
    expect(traceText(story)).toContain('refused as input at 2026-01-02T00:00:00.000Z');
    // the same sequence on another subject is another message
    expect(
      (await traceStory({ spool }, { seq: 42, subject: 'approved.good' })).event?.deadLetter,
    ).toBeUndefined();
  });

  it('a delivered batch gone from the spool and the index is found through the ledger by its sequence', async () => {
    const dir = await tempDir('trace-ledger');
    const ledger = await LevelLedger.open(join(dir.path, 'ledger'), { logger: pino({ level: 'silent' }) });
    try {
      const id = uuidv7();
      ledger.record({
        id,
        status: 'success',
        itemCount: 3,
        httpStatus: 200,
        retryCount: 1,
        completedAt: Date.parse('2026-01-03T00:00:00.000Z'),
        trace: { trigger: 'bytes', seqs: [[20, 22]], subjects: ['approved.ip'] },
      });
      await ledger.flush();
      const story = await traceStory({ spool, ledger }, { seq: 21, subject: 'approved.ip' });
      expect(story.event).toMatchObject({ foundIn: 'ledger', batchId: id });
      expect(story.event?.subjectMismatch).toBeUndefined();
      expect(story.batch).toMatchObject({ trigger: 'bytes', items: 3, seqs: [[20, 22]] });
      expect(story.batch?.end).toEqual({ kind: 'delivered', at: '2026-01-03T00:00:00.000Z', status: 200 });
    } finally {
      await ledger.close();
      await dir.remove();
    }
  });

  it('not seen: what the consumer says decides between "still in the stream" and "acknowledged"', async () => {
    const noConsumer = await traceStory({ spool }, { seq: 5 });
    expect(noConsumer.notSeen?.note).toContain('the consumer could not be asked');
    const consumer = async () => ({ pending: 3, ackPending: 1, ackFloor: 10 });
    const acked = await traceStory({ spool, consumer }, { seq: 5 });
    expect(acked.notSeen?.note).toContain('the consumer acknowledged it');
    const waiting = await traceStory({ spool, consumer }, { seq: 11 });
    expect(waiting.notSeen).toEqual({
      note: 'not seen: still in the stream (not yet taken into a durable batch)',
      consumer: { pending: 3, ackPending: 1, ackFloor: 10 },
    });
  });
});

describe('trace query', () => {
  it('takes a batch id, a sequence, or a subject with a sequence; refuses anything else by name', () => {
    const id = uuidv7();
    expect(traceQueryOf({ target: id.toUpperCase() })).toEqual({ batch: id });
    expect(traceQueryOf({ target: '17' })).toEqual({ seq: 17 });
    expect(traceQueryOf({ seq: '17', subject: 'approved.ip' })).toEqual({ seq: 17, subject: 'approved.ip' });
    expect(() => traceQueryOf({})).toThrow('give one batch id or one stream sequence');
    expect(() => traceQueryOf({ target: '0' })).toThrow(
      'is neither a batch id (a UUID) nor a stream sequence',
    );
    expect(() => traceQueryOf({ seq: '1.5' })).toThrow('"1.5" is not a stream sequence');
    expect(() => traceQueryOf({ target: id, subject: 'a' })).toThrow('--subject goes with a stream sequence');
    expect(() => traceQueryOf({ target: id, seq: '3' })).toThrow('give one batch id or one stream sequence');
    for (const q of [{ batch: id }, { seq: 9 }, { seq: 9, subject: 'approved.x' }] as const)
      expect(traceQueryOfParams(new URLSearchParams(traceParamsOf(q)))).toEqual(q);
  });
});
