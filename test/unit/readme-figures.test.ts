import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { scenarios } from '../../scripts/chaos/index.js';
import { REPO } from '../fixtures/embed-support.js';

/**
 * Figures the README takes from the test and chaos suites stay in step with them: counts of test
 * cases are not written down at all (they went stale: "87 hostile messages" when the test had
 * 99), and the chaos results table has one row per scenario of the full profile.
 */

const readme = readFileSync(join(REPO, 'README.md'), 'utf8');

/** The lines of the section under `heading` (up to the next heading of any level). */
function section(heading: string): string[] {
  const lines = readme.split('\n');
  const start = lines.indexOf(heading);
  if (start < 0) throw new Error(`README.md: no ${heading}`);
  const end = lines.findIndex((line, i) => i > start && line.startsWith('#'));
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

describe('README figures from tests', () => {
  it('counts no tests, cases, scenarios or hostile messages', () => {
    const counted =
      /\b\d[\d,]*\s+(?:(?:test|hostile|bad|malformed|invalid)\s+)?(?:tests?|cases|scenarios|checks|hostile messages|messages tested)\b/gi;
    expect(readme.match(counted) ?? []).toEqual([]);
  });

  it('the chaos results table has a row for every scenario of the full profile, and no other', () => {
    const rows = section('### Chaos results')
      .filter((line) => /^\| [^-]/.test(line))
      .slice(1);
    // each row ends its first cell with its ids in backticks: (`kill`), (`sink-*`), (three phases; `enospc`)
    const patterns = rows.map((row) => {
      const ids = [...(row.split('|')[1] ?? '').matchAll(/`([\w*-]+)`/g)].map((m) => m[1]!);
      expect(ids, row).toHaveLength(1);
      return new RegExp(`^${ids[0]!.replace('*', '.+')}$`);
    });
    const ids = scenarios('full', 1).map((s) => s.id);
    expect(
      ids.filter((id) => !patterns.some((p) => p.test(id))),
      'scenarios without a row',
    ).toEqual([]);
    expect(
      patterns.filter((p) => !ids.some((id) => p.test(id))).map(String),
      'rows without a scenario',
    ).toEqual([]);
  });
});
