import { transitionLabel, type GraphState, type GraphTransition, type StateGraph } from './statechart.js';

/**
 * A statechart graph as Mermaid `stateDiagram-v2` text, for `batch-emitter machines`. Pure text
 * from the graph; it never reads a machine itself.
 */

/** Mermaid state ids: letters, digits and '_' only; a nested path joins with '__'. */
export function mermaidId(stateId: string): string {
  return stateId.replace(/\./g, '__').replace(/[^A-Za-z0-9_]/g, '_');
}

/** Text safe inside a Mermaid transition label or note: no statement separators or entity codes. */
function mermaidText(text: string): string {
  return text.replace(/[;#\n\r]/g, ' ').replace(/:/g, '꞉');
}

export interface MermaidOptions {
  /** prefix a `---\ntitle: …\n---` front matter block (default false: starts with stateDiagram-v2) */
  title?: string;
  /** include action names in transition labels (default true) */
  actions?: boolean;
}

/**
 * The graph as a Mermaid `stateDiagram-v2`: `[*] --> initial`, one line per transition
 * (`source --> target : event [guard] / actions`; a targetless transition is a self-loop marked
 * "(internal)"), finals `--> [*]`, compound states as `state x { … }`, handlers of the machine
 * root as a note on the initial state.
 */
export function graphToMermaid(graph: StateGraph, opts: MermaidOptions = {}): string {
  const lines: string[] = [];
  if (opts.title !== undefined) lines.push('---', `title: ${mermaidText(opts.title)}`, '---');
  lines.push('stateDiagram-v2');
  lines.push(`  accTitle: ${mermaidText(opts.title ?? `${graph.id} statechart`)}`);
  const label = (t: GraphTransition): string => {
    const text = transitionLabel(t, { actions: opts.actions });
    return mermaidText(t.targets.length === 0 ? `${text} (internal)` : text);
  };
  const byParent = new Map<string | null, GraphState[]>();
  for (const s of graph.states) byParent.set(s.parent, [...(byParent.get(s.parent) ?? []), s]);

  const emitLevel = (parent: string | null, indent: string, initial: string | null): void => {
    const children = byParent.get(parent) ?? [];
    if (initial) lines.push(`${indent}[*] --> ${mermaidId(initial)}`);
    for (const s of children) {
      const id = mermaidId(s.id);
      if (s.key !== id) lines.push(`${indent}state "${mermaidText(s.key)}" as ${id}`);
      if (byParent.has(s.id)) {
        lines.push(`${indent}state ${id} {`);
        emitLevel(s.id, `${indent}  `, s.initial ?? null);
        lines.push(`${indent}}`);
      }
      if (s.type === 'final') lines.push(`${indent}${id} --> [*]`);
    }
    for (const s of children) {
      for (const t of graph.transitions.filter((x) => x.source === s.id)) {
        const targets = t.targets.length === 0 ? [s.id] : t.targets;
        for (const target of targets) {
          lines.push(`${indent}${mermaidId(s.id)} --> ${mermaidId(target)} : ${label(t)}`);
        }
      }
    }
  };
  emitLevel(null, '  ', graph.initial);

  const rootHandlers = graph.transitions.filter((t) => t.source === '');
  if (rootHandlers.length > 0 && graph.initial) {
    lines.push(`  note right of ${mermaidId(graph.initial)}`);
    lines.push('    in every state:');
    for (const t of rootHandlers) {
      const to = t.targets.length > 0 ? ` → ${t.targets.join(', ')}` : '';
      lines.push(`    ${label(t)}${mermaidText(to)}`);
    }
    lines.push('  end note');
  }
  return `${lines.join('\n')}\n`;
}
