import type { createInspector, StatelyInspectionEvent } from '@statelyai/inspect';
import { WebSocket } from 'ws';
import type { Logger } from '../../util/logger.js';

/**
 * The WebSocket to a Stately inspector, for `createInspector` of @statelyai/inspect. It sends
 * each inspection event as one JSON text message, as the package's own WebSocket inspector does,
 * so its relay (`createInspectorServer`) and receivers read it unchanged. It is written here
 * rather than taken from `createWebSocketInspector` because that one retries an unreachable
 * inspector every 5 s forever, even after stop() (the host process then never exits), and tells
 * nobody. This one never touches delivery: a failure is logged once (until it connects again),
 * retried with a growing wait on an unref'd timer, events meanwhile wait in a bounded backlog
 * (the oldest dropped), and a slow inspector loses events rather than growing the heap.
 */

/** what `createInspector` sends through (the package does not export the type by name) */
type Adapter = Parameters<typeof createInspector>[0];

const BACKLOG_LIMIT = 1000;
/** unsent bytes on an open socket beyond which events are dropped */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
/** the waits between connection attempts: doubling from the first to the max */
export interface RetryTiming {
  firstMs: number;
  maxMs: number;
}

const RETRY: RetryTiming = { firstMs: 1000, maxMs: 30_000 };
const HANDSHAKE_TIMEOUT_MS = 5000;
const CLOSE_GRACE_MS = 1000;

export class InspectorLink implements Adapter {
  private socket?: WebSocket;
  private backlog: string[] = [];
  private retryMs: number;
  private retry?: NodeJS.Timeout;
  private stopped = true;
  /** a failure was logged and nothing has connected since */
  private failureLogged = false;
  /** events dropped since the last report (backlog full, or the inspector too slow) */
  private dropped = 0;

  constructor(
    private readonly url: string,
    private readonly logger: Logger,
    private readonly timing: RetryTiming = RETRY,
  ) {
    this.retryMs = timing.firstMs;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  send(event: StatelyInspectionEvent): void {
    if (this.stopped) return;
    const text = JSON.stringify(event);
    const socket = this.socket;
    if (socket?.readyState !== WebSocket.OPEN) return this.keep(text);
    if (socket.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.dropped += 1;
      return;
    }
    socket.send(text, () => undefined);
  }

  /** Close after the events already handed over are sent; never waits on the inspector for long. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.retry);
    this.backlog = [];
    const socket = this.socket;
    this.socket = undefined;
    if (socket?.readyState === WebSocket.OPEN) {
      socket.close(1000, 'emitter closed');
      setTimeout(() => socket.terminate(), CLOSE_GRACE_MS).unref();
    } else {
      socket?.terminate();
    }
  }

  private keep(text: string): void {
    this.backlog.push(text);
    if (this.backlog.length > BACKLOG_LIMIT) {
      this.backlog.shift();
      this.dropped += 1;
    }
  }

  private connect(): void {
    const socket = new WebSocket(this.url, { handshakeTimeout: HANDSHAKE_TIMEOUT_MS });
    this.socket = socket;
    socket.on('open', () => this.opened(socket));
    socket.on('error', (error) => this.failed(error.message));
    socket.on('close', () => {
      if (this.socket !== socket || this.stopped) return;
      this.socket = undefined;
      this.failed('connection closed');
      this.retryLater();
    });
  }

  private opened(socket: WebSocket): void {
    if (this.stopped) return;
    this.retryMs = this.timing.firstMs;
    this.failureLogged = false;
    const backlog = this.backlog;
    this.backlog = [];
    const dropped = this.dropped;
    this.dropped = 0;
    this.logger.info({ url: this.url, backlog: backlog.length, dropped }, 'inspector connected');
    for (const text of backlog) socket.send(text, () => undefined);
  }

  private failed(reason: string): void {
    if (this.stopped || this.failureLogged) return;
    this.failureLogged = true;
    this.logger.warn(
      { url: this.url, err: reason },
      'inspector unreachable; retrying in the background, delivery is not affected',
    );
  }

  private retryLater(): void {
    clearTimeout(this.retry);
    this.retry = setTimeout(() => {
      if (!this.stopped) this.connect();
    }, this.retryMs).unref();
    this.retryMs = Math.min(this.timing.maxMs, this.retryMs * 2);
  }
}
