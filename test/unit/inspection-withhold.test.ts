import type { StatelyInspectionEvent } from '@statelyai/inspect';
import { describe, expect, it } from 'vitest';
import { createActor, createMachine } from 'xstate';
import { withheldInspectionEvent } from '../../src/observe/inspect/withhold.js';
import { Redactor } from '../../src/util/redact.js';

describe('withheldInspectionEvent', () => {
  it('sends item lists, bodies and quoted answers as their size, scrubs secrets, names actor refs', () => {
    const redactor = new Redactor(['s3cret-token']);
    const ref = createActor(createMachine({ id: 'limiter' }), { id: 'limiter' });
    const event = {
      type: '@xstate.snapshot',
      event: {
        type: 'RELEASE',
        ref,
        outcome: { kind: 'permanent', status: 400, bodyExcerpt: 'echo {"k":"v"}' },
      },
      snapshot: {
        value: 'sending',
        context: {
          limiter: ref,
          items: [{ data: 'item one' }, { data: 'item two' }],
          body: { events: [{ data: 'item three' }] },
          history: [{ attempt: 1, outcome: { kind: 'retryable', reason: 'ECONNRESET near s3cret-token' } }],
        },
      },
      sessionId: 'x:1',
      rootId: 'x:1',
      createdAt: '0',
      id: null,
      _version: 'test',
    } as unknown as StatelyInspectionEvent;

    const out = withheldInspectionEvent(event, (text) => redactor.scrub(text));

    expect(out).toMatchObject({
      event: {
        type: 'RELEASE',
        ref: { actor: 'limiter' },
        outcome: { bodyExcerpt: '[withheld: 14 characters]' },
      },
      snapshot: {
        value: 'sending',
        context: {
          limiter: { actor: 'limiter' },
          items: '[withheld: 2 items]',
          body: '[withheld]',
          history: [{ attempt: 1, outcome: { reason: 'ECONNRESET near [redacted]' } }],
        },
      },
    });
    expect(JSON.stringify(out)).not.toMatch(/item (one|two|three)|s3cret|"k"/);
  });
});
