import type { z } from 'zod';

/**
 * The project's own words for a validation issue that its schema did not word itself, passed as
 * the per-parse error map wherever configuration is validated: no refusal ever shows the
 * validation library's wording. The words never contain the value (it may be a secret), only
 * its kind.
 */

type Issue = Parameters<z.core.$ZodErrorMap>[0];

const article = (word: string) => (/^[aeiou]/.test(word) ? `an ${word}` : `a ${word}`);

/** `a number`, `an array`, `null`: what a value is, never what it holds. */
export function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'missing';
  return article(Array.isArray(value) ? 'array' : typeof value);
}

function bound(issue: Issue & { code: 'too_small' | 'too_big' }, side: 'at least' | 'at most'): string {
  const limit = String(issue.code === 'too_small' ? issue.minimum : issue.maximum);
  if (issue.origin === 'string') return `expected ${side} ${limit} characters`;
  if (issue.origin === 'array' || issue.origin === 'set') return `expected ${side} ${limit} entries`;
  return `expected ${side} ${limit}`;
}

function words(issue: Issue): string {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${article(issue.expected)}; got ${kindOf(issue.input)}`;
    case 'too_small':
      return bound(issue, 'at least');
    case 'too_big':
      return bound(issue, 'at most');
    case 'invalid_format':
      return issue.format === 'regex' ? 'not in the expected form' : `expected ${article(issue.format)}`;
    case 'not_multiple_of':
      return `expected a multiple of ${String(issue.divisor)}`;
    case 'unrecognized_keys':
      return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
    case 'invalid_value':
      return `expected ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_union':
      return 'not any of the accepted forms';
    case 'invalid_key':
      return 'has a key that is not valid';
    case 'invalid_element':
      return 'has an entry that is not valid';
    default:
      return 'not valid';
  }
}

/** The per-parse error map: `schema.safeParse(value, { error: ownWords })`. */
export const ownWords = (issue: Issue): string => words(issue);

/** The first issue of a failed parse as one line: `where: what` (`(root)` when at the top). */
export function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'not valid';
  const where = issue.path.map(String).join('.');
  return where === '' ? issue.message : `${where}: ${issue.message}`;
}
