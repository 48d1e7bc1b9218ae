// Fuzz target: Darumeru / MERA records (readJsonlRecords, then every set's converter). Seeds: records of
// the committed fixture snapshot, mutated. Run: fuzz/run.sh 30 darumeru
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import fc from 'fast-check';

import { dist, fuzz, jsonText, mutated } from './fuzzTarget.mjs';

const { DARUMERU_SETS, readJsonlRecords } = await import(dist('ts/eval/convertDarumeru.js'));

const fixtures = join(import.meta.dirname, '..', 'test', 'fixtures', 'darumeru', 'data');
const sets = Object.keys(DARUMERU_SETS);
const firstRecord = (set) => {
  for (const f of ['test.jsonl', 'validation.jsonl', 'dev.jsonl']) {
    try {
      return JSON.parse(readFileSync(join(fixtures, set, f), 'utf8').split('\n')[0]);
    } catch {}
  }
  return {};
};
const examples = Object.fromEntries(sets.map((s) => [s, firstRecord(s)]));
const dir = mkdtempSync(join(tmpdir(), 'lep-fuzz-darumeru-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const value = (set) =>
  fc.oneof(
    mutated(examples[set]),
    mutated(examples[set]).chain((r) => mutated(typeof r.inputs === 'object' && r.inputs && !Array.isArray(r.inputs) ? r.inputs : {}).map((inputs) => ({ ...r, inputs }))),
    fc.jsonValue({ maxDepth: 3 }),
  );
const job = fc.constantFrom(...sets).chain((set) => fc.record({ set: fc.constant(set), test: fc.array(value(set), { minLength: 1, maxLength: 4 }), prompt: fc.array(value(set), { maxLength: 3 }) }));

await fuzz('darumeru', fc.oneof(job, fc.array(jsonText(value(sets[0])), { maxLength: 4 }).map((l) => l.join('\n'))), (input) => {
  if (typeof input === 'string') {
    const file = join(dir, 'test.jsonl');
    writeFileSync(file, input);
    return readJsonlRecords(file);
  }
  // As convertDarumeru hands them over: records with file, line and the parsed object.
  const records = (rows) => rows.filter((v) => v && typeof v === 'object' && !Array.isArray(v)).map((v, i) => ({ file: 'test.jsonl', line: i + 1, value: v }));
  return DARUMERU_SETS[input.set].convert(records(input.test), records(input.prompt));
});
