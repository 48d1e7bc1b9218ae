// Fuzz target: task JSONL files of `lep eval` (readTaskFile: a header line, then items). Seeds: task files
// converted from the committed Darumeru fixtures (`lep eval convert-darumeru test/fixtures/darumeru/data`,
// first 6000 bytes). Inputs: seed files with lines replaced, mutated or dropped, and arbitrary text.
// Run: fuzz/run.sh 30 task_jsonl
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import fc from 'fast-check';

import { dist, fuzz, jsonText, mutated } from './fuzzTarget.mjs';

const { readTaskFile } = await import(dist('ts/eval/taskFile.js'));

const seedDir = join(import.meta.dirname, 'corpus', 'task_jsonl');
const seeds = readdirSync(seedDir).map((f) => readFileSync(join(seedDir, f), 'utf8').split('\n').filter((l) => l.trim()));
const dir = mkdtempSync(join(tmpdir(), 'lep-fuzz-task-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const parsed = (line) => {
  try {
    const v = JSON.parse(line);
    return v && typeof v === 'object' && !Array.isArray(v) ? v : {};
  } catch {
    return {};
  }
};
// A seed file with one of its lines (header or item) replaced by a mutation of itself.
const edited = fc.constantFrom(...seeds).chain((lines) =>
  fc.nat({ max: lines.length - 1 }).chain((i) =>
    jsonText(mutated(parsed(lines[i]))).map((line) => [...lines.slice(0, i), line, ...lines.slice(i + 1)].join('\n')),
  ),
);

await fuzz('task_jsonl', fc.oneof(edited, fc.string({ unit: 'binary' })), (text) => {
  const file = join(dir, 'task.jsonl');
  writeFileSync(file, text);
  return readTaskFile(file);
});
