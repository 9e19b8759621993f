import { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../src/util/logger.js';
import { findNpmParent, watchNpmParent, type ProcessTable } from '../../src/util/parent-watch.js';

/** A process table held in a map: pid -> [parent, comm]; `self` is this process's parent pid. */
function table(procs: Record<number, [number, string]>, self: { ppid: number }): ProcessTable {
  return {
    ppid: () => self.ppid,
    stat: (pid) => (procs[pid] ? { parent: procs[pid][0], comm: procs[pid][1] } : undefined),
  };
}

const NPM_ENV = { npm_lifecycle_event: 'npx', npm_execpath: '/usr/lib/node_modules/npm/bin/npm-cli.js' };

function logged(): { logger: ReturnType<typeof createLogger>; lines: () => string } {
  let out = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      out += chunk.toString();
      done();
    },
  });
  return { logger: createLogger('info', sink), lines: () => out };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('findNpmParent', () => {
  it('npm start with exec: npm is the parent', () => {
    const procs = table({ 10: [1, 'npm start'] }, { ppid: 10 });
    expect(findNpmParent(NPM_ENV, procs)).toEqual({ npmPid: 10, chain: [{ pid: 0, parent: 10 }] });
  });

  it('npx batch-emitter run: npm is the parent of the sh -c', () => {
    const procs = table({ 20: [10, 'sh'], 10: [1, 'npm exec batch-'] }, { ppid: 20 });
    expect(findNpmParent(NPM_ENV, procs)).toEqual({
      npmPid: 10,
      chain: [
        { pid: 0, parent: 20 },
        { pid: 20, parent: 10 },
      ],
    });
  });

  it('not without npm variables, whoever the parent is', () => {
    const procs = table({ 10: [1, 'npm start'] }, { ppid: 10 });
    expect(findNpmParent({}, procs)).toBeUndefined();
  });

  it('not when the variables are only inherited (npm is not the parent or the shell parent)', () => {
    // e.g. started under `npm test` by a test runner, or `nohup ... &` from an npm script
    expect(findNpmParent(NPM_ENV, table({ 30: [10, 'node'], 10: [1, 'npm test'] }, { ppid: 30 }))).toBe(
      undefined,
    );
    // re-parented to init already: the shell that backgrounded it exited
    expect(findNpmParent(NPM_ENV, table({ 1: [0, 'systemd'] }, { ppid: 1 }))).toBeUndefined();
    expect(findNpmParent(NPM_ENV, table({ 20: [5, 'sh'], 5: [1, 'bash'] }, { ppid: 20 }))).toBeUndefined();
  });
});

describe('watchNpmParent', () => {
  it('stops once, with the warning, when the sh -c is re-parented (npx killed)', () => {
    vi.useFakeTimers();
    const procs: Record<number, [number, string]> = { 20: [10, 'sh'], 10: [1, 'npm exec batch-'] };
    const self = { ppid: 20 };
    const { logger, lines } = logged();
    const onGone = vi.fn();
    watchNpmParent({ logger, onGone, env: NPM_ENV, table: table(procs, self) });
    vi.advanceTimersByTime(5000);
    expect(onGone).not.toHaveBeenCalled();
    procs[20] = [1, 'sh']; // SIGKILL to npx: the shell lives on under init
    delete procs[10];
    vi.advanceTimersByTime(1000);
    expect(onGone).toHaveBeenCalledTimes(1);
    expect(lines()).toContain(
      'the npm process that started the emitter is gone (pid 10): stopping as on SIGTERM',
    );
    vi.advanceTimersByTime(5000);
    expect(onGone).toHaveBeenCalledTimes(1);
  });

  it('a /proc entry it cannot read (out of file descriptors) is not taken for npm gone', () => {
    vi.useFakeTimers();
    const procs: Record<number, [number, string]> = { 20: [10, 'sh'], 10: [1, 'npm exec batch-'] };
    const unreadable = { now: false };
    const base = table(procs, { ppid: 20 });
    const onGone = vi.fn();
    watchNpmParent({
      logger: logged().logger,
      onGone,
      env: NPM_ENV,
      table: { ppid: base.ppid, stat: (pid) => (unreadable.now ? 'unknown' : base.stat(pid)) },
    });
    unreadable.now = true;
    vi.advanceTimersByTime(5000);
    expect(onGone).not.toHaveBeenCalled();
    unreadable.now = false;
    procs[20] = [1, 'sh'];
    vi.advanceTimersByTime(1000);
    expect(onGone).toHaveBeenCalledTimes(1);
  });

  it('stops when this process is re-parented (npm start killed)', () => {
    vi.useFakeTimers();
    const self = { ppid: 10 };
    const onGone = vi.fn();
    watchNpmParent({
      logger: logged().logger,
      onGone,
      env: NPM_ENV,
      table: table({ 10: [1, 'npm start'] }, self),
    });
    self.ppid = 1;
    vi.advanceTimersByTime(1000);
    expect(onGone).toHaveBeenCalledTimes(1);
  });

  it('never fires when npm did not start it, nor after it was ended', () => {
    vi.useFakeTimers();
    const self = { ppid: 10 };
    const onGone = vi.fn();
    const procs = table({ 10: [1, 'bash'] }, self);
    const { logger, lines } = logged();
    watchNpmParent({ logger, onGone, env: NPM_ENV, table: procs });
    self.ppid = 1;
    vi.advanceTimersByTime(5000);
    expect(onGone).not.toHaveBeenCalled();
    expect(lines()).toBe('');

    const npmSelf = { ppid: 10 };
    const end = watchNpmParent({
      logger,
      onGone,
      env: NPM_ENV,
      table: table({ 10: [1, 'npm start'] }, npmSelf),
    });
    end();
    npmSelf.ppid = 1;
    vi.advanceTimersByTime(5000);
    expect(onGone).not.toHaveBeenCalled();
  });
});
