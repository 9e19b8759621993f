/** Reading a process's CPU time and memory from /proc (Linux), and facts about this machine. */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';

let clockTicks: number | undefined;

function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** utime + stime of the process in seconds (all its threads), or undefined when it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  return statCpuSeconds(`/proc/${pid}/stat`);
}

/** utime + stime of one thread of the process (the main thread's id is the process's). */
export function threadCpuSeconds(pid: number, tid: number): number | undefined {
  return statCpuSeconds(`/proc/${pid}/task/${tid}/stat`);
}

/** CPU seconds of each thread of the process, by thread id (ascending: the order they were started). */
export function threadsCpuSeconds(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)
      .map(Number)
      .sort((a, b) => a - b)) {
      const s = threadCpuSeconds(pid, tid);
      if (s !== undefined) out.set(tid, s);
    }
  } catch {
    // gone
  }
  return out;
}

function statCpuSeconds(path: string): number | undefined {
  try {
    const text = readFileSync(path, 'utf8');
    // the command name (field 2) may hold spaces: count fields after its closing parenthesis
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return (utime + stime) / ticksPerSecond();
  } catch {
    return undefined;
  }
}

/** VmRSS and VmHWM (peak RSS) in MB, or undefined when the process is gone. */
export function memoryMB(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, 'm').exec(text)?.[1] ?? NaN);
    return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

/** Bytes of the files under `dir` (a LevelDB directory is flat). */
export function dirBytes(dir: string): number {
  let total = 0;
  try {
    for (const name of readdirSync(dir)) {
      try {
        const s = statSync(join(dir, name));
        total += s.isDirectory() ? dirBytes(join(dir, name)) : s.size;
      } catch {
        // compaction removed it meanwhile
      }
    }
  } catch {
    return 0;
  }
  return total;
}

export function loadAverage(): [number, number, number] {
  try {
    const [a, b, c] = readFileSync('/proc/loadavg', 'utf8').split(' ').map(Number);
    return [a ?? NaN, b ?? NaN, c ?? NaN];
  } catch {
    return [NaN, NaN, NaN];
  }
}

export interface MachineInfo {
  nproc: number;
  model: string;
  memGB: number;
  node: string;
  natsServer: string;
  kernel: string;
  spoolDiskFs: string;
}

function fsType(path: string): string {
  try {
    return (
      execFileSync('df', ['-T', path], { encoding: 'utf8' }).trim().split('\n')[1]?.split(/\s+/)[1] ?? '?'
    );
  } catch {
    return '?';
  }
}

export function machineInfo(natsVersion: string, spoolDiskDir: string): MachineInfo {
  let model = cpus()[0]?.model ?? 'unknown';
  try {
    model = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? model;
  } catch {
    // keep os.cpus()
  }
  let kernel = 'unknown';
  try {
    kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    // not Linux
  }
  return {
    nproc: cpus().length,
    model,
    memGB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    natsServer: natsVersion,
    kernel,
    spoolDiskFs: fsType(spoolDiskDir),
  };
}

/** Jiffies of all CPUs from /proc/stat: busy (everything but idle and iowait) and total. */
export function machineCpuTimes(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = v.reduce((a, b) => a + b, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

/** Share of all CPUs busy between two machineCpuTimes() readings, in % (100 = every core busy). */
export function machineBusyPct(
  a: ReturnType<typeof machineCpuTimes>,
  b: ReturnType<typeof machineCpuTimes>,
): number {
  if (!a || !b || b.total <= a.total) return NaN;
  return ((b.busy - a.busy) / (b.total - a.total)) * 100;
}
