import { request } from 'node:http';
import type { NatsConnection } from '@nats-io/transport-node';
import { consumerState } from '../scripts/chaos/common.js';

/** Looking at a running emitter child from a test: polling, its HTTP base URL, /ready, its durable. */

/** Resolves once `pred` holds; fails naming `what` after `timeoutMs` (polls every 50 ms). */
export async function until(
  pred: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The HTTP base URL from the emitter's `running` log line. */
export function httpUrl(output: string): string | undefined {
  const line = output.split('\n').find((l) => l.includes('"msg":"running"'));
  return line === undefined ? undefined : (JSON.parse(line) as { http?: string }).http;
}

export interface ReadyAnswer {
  status: number;
  failing: string[];
  reasons: string[];
}

/** GET /ready on a fresh connection (a keep-alive socket would outlive a killed emitter). */
export function getReady(base: string): Promise<ReadyAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(new URL('/ready', base), { agent: false, timeout: 2000 }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => {
        const body = JSON.parse(text) as { failing?: string[]; reasons?: string[] };
        resolve({ status: res.statusCode ?? 0, failing: body.failing ?? [], reasons: body.reasons ?? [] });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Messages of the APPROVED stream the durable has not acknowledged (pending or ack pending). */
export async function unacked(nc: NatsConnection, durable: string): Promise<number> {
  const state = await consumerState(nc, 'APPROVED', durable);
  return (state?.pending ?? 0) + (state?.ackPending ?? 0);
}
