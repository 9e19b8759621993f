import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/util/logger.js';

function capture(): { stream: Writable; lines: () => Array<Record<string, unknown>>; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return {
    stream,
    text: () => text,
    lines: () =>
      text
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe('createLogger with secrets', () => {
  it('scrubs every configured secret from the message, fields, nested values and errors', () => {
    const out = capture();
    const logger = createLogger('info', out.stream, ['header-secret-1', 'quo"ted\\secret']);
    logger.info('plain message with header-secret-1 inside');
    logger.warn(
      { excerpt: 'x-api-key=header-secret-1', nested: { list: ['a header-secret-1 b'] }, count: 3 },
      'the receiver said %s',
      'header-secret-1',
    );
    logger.error({ err: new Error('failed with header-secret-1') }, 'with an error');
    logger.info({ body: JSON.stringify({ key: 'quo"ted\\secret' }) }, 'json text holding a quoted secret');
    expect(out.text()).not.toContain('header-secret-1');
    expect(out.text()).not.toContain('ted\\\\secret');
    const [first, second, third] = out.lines();
    expect(first?.msg).toBe('plain message with [redacted] inside');
    expect(second).toMatchObject({
      excerpt: 'x-api-key=[redacted]',
      nested: { list: ['a [redacted] b'] },
      count: 3,
      msg: 'the receiver said [redacted]',
    });
    // the error keeps pino's shape
    expect(third?.err).toMatchObject({ type: 'Error', message: 'failed with [redacted]' });
    expect(String((third?.err as { stack?: unknown }).stack)).toContain('failed with [redacted]');
  });

  it('still applies the redact paths and leaves records without secrets as they were', () => {
    const out = capture();
    const logger = createLogger('info', out.stream);
    logger.info({ authToken: 'anything', batchId: 'b1', n: 2 }, 'ok');
    expect(out.lines()[0]).toMatchObject({ authToken: '[redacted]', batchId: 'b1', n: 2, msg: 'ok' });
  });
});
