/**
 * Summarise a V8 .cpuprofile (from `node --cpu-prof`): self time and inclusive time per function
 * and self time per module (a package under node_modules, a repo file, or node's internals).
 */
import { readFileSync } from 'node:fs';
import { STAGES, stageOf, type Frame, type Stage } from './profile-stages.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileRow {
  name: string;
  where: string;
  ms: number;
  pct: number;
}

export interface ProfileSummary {
  file: string;
  /** wall time covered by samples, ms */
  sampledMs: number;
  /** sampled time not idle, ms */
  busyMs: number;
  /** self time, busiest first (percent of busy time) */
  topSelf: ProfileRow[];
  /** self time per module */
  byModule: ProfileRow[];
  /** inclusive time of the repo's own functions (src/, machines/) */
  topInclusiveOwn: ProfileRow[];
  /** busy time by stage of the chain (profile-stages.ts), in STAGES order */
  stages: { stage: Stage; ms: number; pct: number }[];
}

const REPO_MARK = /\/(src|machines|plugins)\//;

function shortUrl(url: string): string {
  if (!url) return '';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length);
  const own = REPO_MARK.exec(url);
  if (own) return url.slice(own.index + 1);
  return url.replace(/^file:\/\//, '');
}

function moduleOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (!url) return functionName.startsWith('(') ? functionName : '(native / V8 builtins)';
  if (url.startsWith('node:')) return 'node: internals';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
  }
  return shortUrl(url);
}

function label(frame: CallFrame): { name: string; where: string } {
  const name = frame.functionName || '(anonymous)';
  const where = frame.url ? `${shortUrl(frame.url)}:${frame.lineNumber + 1}` : '';
  return { name, where };
}

function top(map: Map<string, { name: string; where: string; us: number }>, busyUs: number, n: number) {
  return [...map.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, n)
    .map((r) => ({
      name: r.name,
      where: r.where,
      ms: Math.round(r.us / 100) / 10,
      pct: Math.round((r.us / busyUs) * 1000) / 10,
    }));
}

/**
 * `window` keeps only the samples taken between `fromEndMs` and `toEndMs` before the end of the
 * profile (e.g. from "consumer ready" to "sink has everything", measured back from the exit).
 */
export function summariseProfile(
  file: string,
  n = 20,
  window?: { fromEndMs: number; toEndMs: number },
): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const keep = (ts: number) =>
    !window ||
    (profile.endTime - ts <= window.fromEndMs * 1000 && profile.endTime - ts >= window.toEndMs * 1000);
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const c of node.children ?? []) parent.set(c, node.id);
  }
  const selfUs = new Map<number, number>();
  let sampledUs = 0;
  let ts = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
    ts += dt;
    if (!keep(ts)) continue;
    const id = profile.samples[i] as number;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
    sampledUs += dt;
  }
  const self = new Map<string, { name: string; where: string; us: number }>();
  const modules = new Map<string, { name: string; where: string; us: number }>();
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const frame = (byId.get(id) as ProfileNode).callFrame;
    if (frame.functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    const { name, where } = label(frame);
    const key = `${name}@${where}`;
    const row = self.get(key) ?? { name, where, us: 0 };
    row.us += us;
    self.set(key, row);
    const mod = moduleOf(frame);
    const m = modules.get(mod) ?? { name: mod, where: '', us: 0 };
    m.us += us;
    modules.set(mod, m);
  }
  // inclusive time of the repo's own functions: each sample counts once per distinct function on its stack
  const inclusive = new Map<string, { name: string; where: string; us: number }>();
  for (const [id, us] of selfUs) {
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const frame = (byId.get(cur) as ProfileNode).callFrame;
      if (!REPO_MARK.test(frame.url) || frame.url.includes('node_modules')) continue;
      const { name, where } = label(frame);
      const key = `${name}@${where}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const row = inclusive.get(key) ?? { name, where, us: 0 };
      row.us += us;
      inclusive.set(key, row);
    }
  }
  const busyUs = Math.max(1, sampledUs - idleUs);
  const stageUs = byStage(selfUs, byId, parent);
  return {
    file,
    sampledMs: Math.round(sampledUs / 1000),
    busyMs: Math.round(busyUs / 1000),
    topSelf: top(self, busyUs, n),
    byModule: top(modules, busyUs, 15),
    topInclusiveOwn: top(inclusive, busyUs, 15),
    stages: STAGES.map((stage) => ({
      stage,
      ms: Math.round((stageUs.get(stage) ?? 0) / 100) / 10,
      pct: Math.round(((stageUs.get(stage) ?? 0) / busyUs) * 1000) / 10,
    })),
  };
}

/** Self time summed by stage (idle left out). */
function byStage(
  selfUs: Map<number, number>,
  byId: Map<number, ProfileNode>,
  parent: Map<number, number>,
): Map<Stage, number> {
  const out = new Map<Stage, number>();
  for (const [id, us] of selfUs) {
    const stack: Frame[] = [];
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur))
      stack.push((byId.get(cur) as ProfileNode).callFrame);
    if (stack[0]?.functionName === '(idle)') continue;
    const stage = stageOf(stack);
    out.set(stage, (out.get(stage) ?? 0) + us);
  }
  return out;
}

export function formatProfile(s: ProfileSummary): string {
  const rows = (list: ProfileRow[]) =>
    list.map(
      (r) => `  ${r.pct.toFixed(1).padStart(5)}%  ${String(r.ms).padStart(8)} ms  ${r.name}  ${r.where}`,
    );
  return [
    `profile ${s.file}: ${s.sampledMs} ms sampled on the main thread, ${s.busyMs} ms busy (percentages of busy)`,
    'top self time:',
    ...rows(s.topSelf),
    'self time by module:',
    ...rows(s.byModule),
    'inclusive time, own code (src/, machines/):',
    ...rows(s.topInclusiveOwn),
    'by stage (profile-stages.ts):',
    ...s.stages.map((r) => `  ${r.pct.toFixed(1).padStart(5)}%  ${String(r.ms).padStart(8)} ms  ${r.stage}`),
  ].join('\n');
}

// `tsx scripts/bench/cpuprofile.ts <file.cpuprofile>` prints the summary of any profile
if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: tsx scripts/bench/cpuprofile.ts <file.cpuprofile> [top-n]\n');
    process.exit(1);
  }
  process.stdout.write(`${formatProfile(summariseProfile(file, Number(process.argv[3] ?? 25)))}\n`);
}
