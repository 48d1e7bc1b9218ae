// The main job end to end (`lep demo --quick --vocab BPE,Optimized`: fewer training steps and evaluation
// items; plain --quick runs Optimized alone): both vocabularies x three methods are adapted, evaluated,
// reported and exported, with progress (percentage and ETA) on the way and the report's path on the last
// line. BPE (a full replacement, Mistral family) and Optimized (shrink + extend, LLaMa-3 family) cover both
// families and the two tokenizer kinds adapt.test does not; Extended is adapt.test's. The Optimized rows
// need the LLaMa-3 toy family (test/fixtures/toy-family-llama3); without it the test runs BPE alone.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import test from 'ava';

import { corpora } from '../corpora.js';
import { LEP_CLI as LEP, tempDir } from '../helpers.js';

const LLAMA3_FAMILY = existsSync(join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'toy-family-llama3', 'base', 'config.json'));
const rowsOf = (v: string) => [`${v}/swap`, `${v}/overlap`, `${v}/conversion`, `${v}/swap + calibration`];

test('lep demo --quick --vocab BPE,Optimized: each vocabulary x method in the table (swap calibrated), progress with ETA, report and results written, best model exported to GGUF', async (t) => {
  // The whole quick demo is one test: on a busy 2-core machine it outlasts ava's 10-minute default
  // (measured: about 21 minutes under load 15-17 with two vocabularies, 23 minutes in CI with three).
  t.timeout(60 * 60_000);
  await corpora();
  const out = join(tempDir(), 'demo');
  // --json: the results as one document on stdout, everything for people (table, progress) on stderr.
  const { stdout, stderr } = await promisify(execFile)(process.execPath, [LEP, 'demo', '--quick', '--vocab', LLAMA3_FAMILY ? 'BPE,Optimized' : 'BPE', '--out', out, '--json'], { maxBuffer: 64 * 1024 * 1024 });
  t.regex(stderr, /\| vocabulary \| method \|.*Micro-Avg \| symbols\/token \| bits\/char \|/);
  t.log(stderr.slice(stderr.indexOf('Results on held-out')));
  const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
  const printed = JSON.parse(stdout);
  t.deepEqual({ ...printed, files: undefined }, { ...results, files: undefined }, 'stdout holds what results.json holds');
  t.is(printed.files.results, join(out, 'results.json'));
  t.true(existsSync(printed.files.gguf) && existsSync(printed.files.report));
  t.deepEqual(
    results.rows.map((r: { vocabulary: string; method: string }) => `${r.vocabulary}/${r.method}`),
    ['original/-', ...rowsOf('BPE'), ...(LLAMA3_FAMILY ? ['original (LLaMa-3 tok.)/-', ...rowsOf('Optimized')] : [])],
  );
  // Every new vocabulary reads Russian with markedly fewer tokens than its family's original. (How well
  // the propagated models answer is the README's measured table, not a claim of this quick run.)
  const originals = new Map<string, { symbolsPerToken: number }>([['BPE', results.rows[0]]]);
  if (LLAMA3_FAMILY) originals.set('Optimized', results.rows[1 + 4]);
  for (const r of results.rows.filter((x: { method: string }) => x.method !== '-')) {
    t.true(r.symbolsPerToken > originals.get(r.vocabulary)!.symbolsPerToken * 1.3, `${r.vocabulary}/${r.method} uses markedly fewer tokens on Russian`);
    t.true(Number.isFinite(r.bitsPerChar) && Number.isFinite(r.microAvg));
  }
  // Progress: percentages with an ETA (training steps, evaluation items), tokens per new row, the report's path last.
  t.regex(stderr, /\[\d\/\d+ train\] .* \d+% \(.*, ETA /);
  t.regex(stderr, /evaluating .* \d+% \(.*, ETA /);
  t.regex(stderr, /embedding training: \d+ tokens seen for \d+ new rows/);
  t.regex(stderr.trim().split('\n').pop()!, /^Done in \d+ s\. Report: .*report\.html/);
  t.true(existsSync(join(out, 'report.html')));
  t.true(readdirSync(out).some((f) => f.endsWith('.f16.gguf')));
  t.is(results.training.length, LLAMA3_FAMILY ? 2 : 1, 'a loss curve per vocabulary');
});
