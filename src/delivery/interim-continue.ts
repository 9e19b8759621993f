import type { Socket } from 'node:net';
import type { buildConnector as BuildConnector } from 'undici';
import { buildConnector } from './undici-parts.js';

/**
 * undici 7's HTTP/1.1 parser destroys the socket on any `100 Continue` ("bad response"), although
 * RFC 9110 (section 15.2) requires a client to accept 1xx responses it did not ask for. Such a
 * destination stores every batch and is still never seen to succeed. undici has no option for it
 * and an interceptor runs after the parser, so the fix sits below the parser: a connector whose
 * sockets drop interim `100` responses from the bytes undici reads. Other 1xx codes undici
 * handles itself.
 *
 * Where a response starts is known without parsing HTTP because the pool runs with pipelining 1:
 * a response only ever follows the head of the request just written, so the filter looks at the
 * first bytes read after each request head and at nothing else.
 */

const STATUS_100 = /^HTTP\/1\.[01] 100(?:[ \r])/;
/** bytes needed to decide whether a response starts with a 100 status line */
const STATUS_PREFIX = 'HTTP/1.1 100 '.length;
/** an interim response larger than this is not dropped: undici then refuses it as before */
const MAX_INTERIM_BYTES = 16 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');
const REQUEST_LINE = /^[A-Z]+ \S+ HTTP\/1\.1\r\n/;

function couldStart100(prefix: Buffer): boolean {
  const text = prefix.toString('latin1');
  return 'HTTP/1.1 100 '.startsWith(text) || 'HTTP/1.0 100 '.startsWith(text);
}

export class InterimFilter {
  /** true between a request head and the first byte of its final response */
  private atResponseStart = true;
  private held: Buffer | undefined;

  /** A request head was written: the next bytes read start its response. */
  requestWritten(): void {
    this.atResponseStart = true;
  }

  /** Pass a chunk read from the socket; returns what the parser may see (possibly empty). */
  push(chunk: Buffer): Buffer {
    if (!this.atResponseStart) return chunk;
    let data = this.held ? Buffer.concat([this.held, chunk]) : chunk;
    this.held = undefined;
    for (;;) {
      if (data.length < STATUS_PREFIX) {
        if (!couldStart100(data)) return this.passFrom(data);
        this.held = data;
        return Buffer.alloc(0);
      }
      if (!STATUS_100.test(data.subarray(0, STATUS_PREFIX).toString('latin1'))) return this.passFrom(data);
      const end = data.indexOf(HEAD_END);
      if (end === -1) {
        if (data.length > MAX_INTERIM_BYTES) return this.passFrom(data);
        this.held = data;
        return Buffer.alloc(0);
      }
      data = data.subarray(end + HEAD_END.length);
      if (data.length === 0) return data;
    }
  }

  private passFrom(data: Buffer): Buffer {
    this.atResponseStart = false;
    return data;
  }
}

/** Make `socket` drop interim 100 responses before undici's parser reads them. */
function skipInterimContinue<S extends Socket>(socket: S): S {
  const filter = new InterimFilter();
  const read = socket.read.bind(socket);
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  socket.read = ((size?: number) => {
    if (size === 0) return read(0);
    for (;;) {
      const chunk = read(size) as Buffer | string | null;
      if (chunk === null) return null;
      const passed = filter.push(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk);
      if (passed.length > 0) return passed;
    }
  }) as S['read'];
  socket.write = ((...args: unknown[]) => {
    if (typeof args[0] === 'string' && REQUEST_LINE.test(args[0])) filter.requestWritten();
    return write(...args);
  }) as S['write'];
  return socket;
}

/** undici's own connector with the interim-100 filter on every socket it opens. */
export function continueTolerantConnector(options: BuildConnector.BuildOptions): BuildConnector.connector {
  const connect = buildConnector(options);
  return (opts, callback) =>
    connect(opts, (error, socket) => {
      if (error !== null) callback(error, null);
      else callback(null, skipInterimContinue(socket as Socket));
    });
}
