import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { quotedExamples, withExamples } from '../../scripts/readme-examples.js';
import { REPO } from '../fixtures/embed-support.js';

const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
const fileText = (file: string) => readFileSync(join(REPO, file), 'utf8');

describe('README examples (quoted from examples/, run by test/integration/examples.test.ts)', () => {
  it('quotes every file of examples/, each block equal to its file (npm run docs:examples -- --write)', () => {
    const quoted = quotedExamples(readme);
    expect(quoted.map((q) => q.file).sort()).toEqual(
      readdirSync(join(REPO, 'examples'))
        .map((f) => `examples/${f}`)
        .sort(),
    );
    for (const { file, text } of quoted) expect(`${text}\n`, file).toBe(fileText(file));
    expect(withExamples(readme, fileText)).toBe(readme);
  });

  it('the quoted examples are the only code of the Embedding section', () => {
    const section = readme.slice(
      readme.indexOf('## Embedding'),
      readme.indexOf('\n## ', readme.indexOf('## Embedding') + 1),
    );
    const blocks = (section.match(/^```/gm) ?? []).length / 2;
    expect(blocks).toBe(quotedExamples(section).length);
  });

  it('a changed file changes its block and nothing else', () => {
    const changed = withExamples(readme, (file) =>
      file === 'examples/create-emitter.mjs' ? 'changed();\n' : fileText(file),
    );
    const after = quotedExamples(changed);
    expect(after.find((q) => q.file === 'examples/create-emitter.mjs')?.text).toBe('changed();');
    expect(after.filter((q) => q.file !== 'examples/create-emitter.mjs')).toEqual(
      quotedExamples(readme).filter((q) => q.file !== 'examples/create-emitter.mjs'),
    );
    expect(changed.replace(/<!-- examples\/create-emitter\.mjs -->\n\n```js\nchanged\(\);\n```/, '')).toBe(
      readme.replace(/<!-- examples\/create-emitter\.mjs -->\n\n```js\n[\s\S]*?\n```/, ''),
    );
  });
});
