/** The known name nearest to a mistyped one (Levenshtein distance, any case), for "did you mean ...?". */

function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

export function closestName(name: string, known: readonly string[]): string {
  const wanted = name.toUpperCase();
  let best: { name: string; distance: number } | undefined;
  for (const candidate of known) {
    const d = distance(wanted, candidate.toUpperCase());
    if (best === undefined || d < best.distance) best = { name: candidate, distance: d };
  }
  return best?.name ?? '';
}
