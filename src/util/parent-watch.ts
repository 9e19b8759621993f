import { readFileSync } from 'node:fs';
import type { Logger } from './logger.js';

/**
 * Stopping when the npm process that started the emitter is gone. npm forwards only SIGTERM and
 * SIGINT to its direct child, and `npx batch-emitter run` puts `sh -c` between them, which Debian's
 * dash does not `exec` away: a SIGTERM to npx, or a SIGHUP / SIGKILL to npm, ends npm and leaves the
 * emitter running with the spool locked. So when npm started it (npm's variables in the
 * environment, and npm its parent or the parent of its `sh -c`), the emitter polls its ancestry
 * and stops as on SIGTERM once that chain breaks (a dead process's children are re-parented).
 * Started any other way (directly, systemd, tini, `nohup ... &`, setsid) it never watches: a
 * parent going away is then no reason to stop.
 */

/** One link of the ancestry that must hold: `pid`'s parent is still `parent`. */
interface Link {
  pid: number;
  parent: number;
}

export interface NpmParent {
  /** the npm (or npx) process */
  npmPid: number;
  /** the links from this process up to npm, each checked on every poll */
  chain: Link[];
}

/** How the process table is read; injectable so the decision is testable without processes. */
export interface ProcessTable {
  /** this process's parent pid now */
  ppid(): number;
  /**
   * the parent pid and command name of `pid`, undefined when it is gone; 'unknown' when it could
   * not be read for another reason (out of file descriptors): not taken as gone
   */
  stat(pid: number): { parent: number; comm: string } | undefined | 'unknown';
}

export const procTable: ProcessTable = {
  ppid: () => process.ppid,
  stat(pid) {
    try {
      const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
      // "pid (comm) state ppid ...": comm may itself hold spaces and parentheses
      const open = text.indexOf('(');
      const close = text.lastIndexOf(')');
      const parent = Number(text.slice(close + 2).split(' ')[1]);
      return { parent, comm: text.slice(open + 1, close) };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      return code === 'ENOENT' || code === 'ESRCH' ? undefined : 'unknown';
    }
  },
};

/** npm sets these in the environment of every script and of `npm exec` / `npx`. */
export function startedByNpm(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env.npm_lifecycle_event && env.npm_execpath);
}

/** npm names its process after the command: "npm start", "npm exec batch-emitter run", "npm run x". */
const isNpm = (comm: string): boolean => comm === 'npm' || comm.startsWith('npm ');
const SHELLS = new Set(['sh', 'dash', 'bash', 'zsh', 'ash', 'busybox']);

/**
 * The npm process this one was started by, when npm is the parent or the grandparent through a
 * shell; undefined otherwise (an npm variable inherited by a process that npm did not start, e.g.
 * one started under `npm test` or backgrounded by an npm script, is not enough).
 */
export function findNpmParent(
  env: NodeJS.ProcessEnv,
  table: ProcessTable = procTable,
): NpmParent | undefined {
  if (!startedByNpm(env)) return undefined;
  const self = { pid: 0, parent: table.ppid() };
  const parent = table.stat(self.parent);
  if (!parent || parent === 'unknown') return undefined;
  if (isNpm(parent.comm)) return { npmPid: self.parent, chain: [self] };
  if (!SHELLS.has(parent.comm)) return undefined;
  const grandparent = table.stat(parent.parent);
  if (!grandparent || grandparent === 'unknown' || !isNpm(grandparent.comm)) return undefined;
  return { npmPid: parent.parent, chain: [self, { pid: self.parent, parent: parent.parent }] };
}

/** True while every link holds (pid 0 stands for this process). */
export function chainHolds(chain: Link[], table: ProcessTable = procTable): boolean {
  return chain.every(({ pid, parent }) => {
    if (pid === 0) return table.ppid() === parent;
    const stat = table.stat(pid);
    return stat === 'unknown' || stat?.parent === parent;
  });
}

export interface ParentWatchOptions {
  logger: Logger;
  /** called once, after the warning, when the npm process is gone */
  onGone: () => void;
  env?: NodeJS.ProcessEnv;
  table?: ProcessTable;
  intervalMs?: number;
}

/**
 * Polls (unref'd, every second by default) while npm started this process; returns the function
 * that ends the watch. Does nothing when npm did not start it.
 */
export function watchNpmParent(options: ParentWatchOptions): () => void {
  const { logger, onGone, env = process.env, table = procTable, intervalMs = 1000 } = options;
  const npm = findNpmParent(env, table);
  if (!npm) return () => undefined;
  logger.info({ npmPid: npm.npmPid }, 'started by npm: stopping as on SIGTERM if that npm process goes away');
  const timer = setInterval(() => {
    if (chainHolds(npm.chain, table)) return;
    clearInterval(timer);
    logger.warn(
      { npmPid: npm.npmPid },
      `the npm process that started the emitter is gone (pid ${npm.npmPid}): stopping as on SIGTERM`,
    );
    onGone();
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
