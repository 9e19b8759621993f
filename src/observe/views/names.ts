/**
 * Readable names for the parts of a machine definition that are values, not states: guards
 * (with their parameters and combinators), actions, delays and invoked actors. Pure functions of
 * the definition; they never run a guard or an action.
 */

const COMBINATORS: Record<string, string> = { checkAnd: ' && ', checkOr: ' || ' };

/** `'full'`, `{type, params}` -> `lastOutcomeIs(kind=success)`, `and([...])` -> `a && b`. */
export function guardName(guard: unknown): string | undefined {
  if (guard === undefined || guard === null) return undefined;
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'function') {
    const g = guard as { check?: { name?: string }; guards?: unknown[]; name?: string };
    if (Array.isArray(g.guards)) {
      const parts = g.guards.map((inner) => guardName(inner) ?? '?');
      const check = g.check?.name ?? '';
      if (check === 'checkNot') return parts.length === 1 ? `!${parts[0]}` : `!(${parts.join(' || ')})`;
      const joiner = COMBINATORS[check] ?? ', ';
      return parts.length === 1 ? (parts[0] as string) : `(${parts.join(joiner)})`;
    }
    return g.name ? g.name : 'inline guard';
  }
  if (typeof guard === 'object') {
    const g = guard as { type?: unknown; params?: unknown };
    if (typeof g.type !== 'string') return 'guard';
    return `${g.type}${paramsText(g.params)}`;
  }
  return String(guard);
}

function paramsText(params: unknown): string {
  if (params === undefined || params === null) return '';
  if (typeof params === 'function') return '(…)';
  if (typeof params !== 'object') return `(${String(params)})`;
  const parts = Object.entries(params as Record<string, unknown>).map(([k, v]) =>
    typeof v === 'object' || typeof v === 'function' ? `${k}=…` : `${k}=${String(v)}`,
  );
  return `(${parts.join(', ')})`;
}

/** Action names: `'count'`, `{type:'seal', params:{trigger:'size'}}` -> `seal(trigger=size)`. */
export function actionName(action: unknown): string {
  if (typeof action === 'string') return action;
  if (typeof action === 'function') {
    const f = action as { type?: unknown; name?: string };
    if (typeof f.type === 'string') return f.type;
    return f.name ? f.name : 'inline action';
  }
  if (action && typeof action === 'object') {
    const a = action as { type?: unknown; params?: unknown };
    if (typeof a.type === 'string') return `${a.type}${paramsText(a.params)}`;
  }
  return 'action';
}

export const asList = (raw: unknown): unknown[] =>
  raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];

/** `id: src` of each actor a state invokes (just `src` when the id is the source's name) */
export function invokeNames(invoke: unknown): string[] {
  return asList(invoke).map((inv) => {
    const i = inv as { id?: unknown; src?: unknown };
    const src = typeof i.src === 'string' ? i.src : 'inline actor';
    return typeof i.id === 'string' && i.id !== src ? `${i.id}: ${src}` : src;
  });
}

/** `250` -> `250ms`; a named delay keeps its name */
export function delayName(delay: unknown): string {
  if (typeof delay === 'number') return `${delay}ms`;
  if (typeof delay === 'string') return /^\d+$/.test(delay) ? `${delay}ms` : delay;
  return 'delay';
}
