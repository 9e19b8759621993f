/** The bench's side of the sink process (sink.ts, forked): commands over IPC, stats as they come. */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { children, exited, HERE, sleep } from './context.js';
import type { LatencyReport, SinkCommand, SinkMode, SinkReply, SinkStats } from './sink.js';

export type SinkCommandBody = SinkCommand extends infer C
  ? C extends unknown
    ? Omit<C, 'id'>
    : never
  : never;

export class Sink {
  latest: SinkStats & { atMs: number } = {
    events: 0,
    distinct: 0,
    batches: 0,
    duplicateBatches: 0,
    refused: 0,
    wireBytes: 0,
    badBodies: 0,
    atMs: 0,
  };
  private nextId = 1;
  private readonly waiting = new Map<number, (r: LatencyReport | undefined) => void>();
  private readonly listeners = new Set<(s: Sink['latest']) => void>();

  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
  ) {
    child.on('message', (m: SinkReply) => {
      if (m.type === 'stats') {
        this.latest = { ...m.stats, atMs: m.atMs };
        for (const l of this.listeners) l(this.latest);
      } else if (m.type === 'done') {
        this.waiting.get(m.id)?.(m.report);
        this.waiting.delete(m.id);
      }
    });
  }

  /** the sink process (its CPU shares the machine with the emitter) */
  get pid(): number | undefined {
    return this.child.pid;
  }

  static async start(): Promise<Sink> {
    const child = fork(join(HERE, 'sink.ts'), [], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    children.add(child);
    const port = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`sink exited (${code}) before listening`)));
      child.on('message', (m: SinkReply) => {
        if (m.type === 'listening') resolve(m.port);
      });
    });
    return new Sink(child, `http://127.0.0.1:${port}/ingest`);
  }

  private request(cmd: SinkCommandBody): Promise<LatencyReport | undefined> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.child.send({ ...cmd, id });
    });
  }

  /** Clear the counters; resolves once a fresh stats message has arrived. */
  async reset(): Promise<void> {
    await this.request({ cmd: 'reset' });
    await this.nextStats();
  }

  async mode(mode: SinkMode): Promise<void> {
    await this.request({ cmd: 'mode', mode });
  }

  async recordLatencyFrom(fromMs: number): Promise<void> {
    await this.request({ cmd: 'latency', fromMs });
  }

  async latencyReport(): Promise<LatencyReport> {
    return (await this.request({ cmd: 'latency-report' })) as LatencyReport;
  }

  onStats(listener: (s: Sink['latest']) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  nextStats(): Promise<Sink['latest']> {
    return new Promise((resolve) => {
      const off = this.onStats((s) => {
        off();
        resolve(s);
      });
    });
  }

  /** Resolves with the sink's clock time when `distinct` reaches `target`, or rejects after `timeoutS`. */
  until(target: number, timeoutS: number, onTick?: (s: Sink['latest']) => void): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`sink has ${this.latest.distinct} of ${target} events after ${timeoutS} s`));
      }, timeoutS * 1000);
      const check = (s: Sink['latest']) => {
        onTick?.(s);
        if (s.distinct < target) return;
        clearTimeout(timer);
        off();
        resolve(s.atMs);
      };
      const off = this.onStats(check);
    });
  }

  async close(): Promise<void> {
    await Promise.race([this.request({ cmd: 'exit' }), sleep(1000)]);
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
    await exited(this.child);
  }
}
