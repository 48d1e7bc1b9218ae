// What `npm install lep` gets: every document lep's messages and help point a user to is in the package
// (the help named docs/reliability.md and docs/main-job.md, which the package's "files" left out).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

const ROOT = join(import.meta.dirname, '..', '..', '..');

/** Every .js file below `dir`. */
function jsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true }).filter((e) => e.isFile() && e.name.endsWith('.js')).map((e) => join(e.parentPath, e.name));
}

test('every docs/*.md that lep\'s code names is in the npm package', (t) => {
  const named = new Set<string>();
  for (const f of jsFiles(join(ROOT, 'dist', 'ts'))) for (const m of readFileSync(f, 'utf8').matchAll(/docs\/[a-z-]+\.md/g)) named.add(m[0]);
  t.true(named.size >= 3, [...named].join(' '));
  const packed = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as { files: { path: string }[] }[];
  const paths = new Set(packed[0]!.files.map((f) => f.path));
  for (const doc of named) t.true(paths.has(doc), `${doc} is named by lep's code but not packed`);
});
