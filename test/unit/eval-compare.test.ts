/** Comparison mode: the paired bootstrap tells a real change from noise, deterministically. */
import test from 'ava';

import { compareResults, formatComparison, pairedBootstrap } from '../../ts/eval/compare.js';
import type { EvalResult, TaskResult } from '../../ts/eval/evaluate.js';

function run(name: string, correct: number[]): TaskResult {
  return {
    name, group: 'G', file: `${name}.jsonl`, kind: 'choice', spec: { metric: 'r_precision' }, score: 0, metrics: {}, items: correct.length,
    unstopped: 0, truncated: 0, badLines: [], records: correct.map((c, i) => ({ id: String(i), values: { r_precision: c } })),
  };
}

const ones = (n: number, k: number) => Array.from({ length: n }, (_, i) => (i < k ? 1 : 0));

test('identical runs: no difference, p = 1', (t) => {
  const d = pairedBootstrap(run('x', ones(50, 25)), run('x', ones(50, 25)));
  t.is(d.delta, 0);
  t.is(d.p, 1);
  t.false(d.significant);
});

test('a large change is significant, a one-item change is not', (t) => {
  const big = pairedBootstrap(run('x', ones(60, 20)), run('x', ones(60, 50)));
  t.true(big.significant);
  t.true(big.low > 0, `interval [${big.low}, ${big.high}]`);
  const small = pairedBootstrap(run('x', ones(60, 30)), run('x', ones(60, 31)));
  t.false(small.significant);
  t.true(small.low <= 0 && small.high > 0);
});

test('seeded: the same comparison twice gives the same numbers; items pair by id', (t) => {
  const a = run('x', [1, 0, 1, 0, 1, 1, 0, 0, 1, 0]);
  const b = run('x', [1, 1, 1, 0, 1, 1, 1, 0, 1, 1]);
  t.deepEqual(pairedBootstrap(a, b), pairedBootstrap(a, b));
  const reversed = { ...b, records: [...b.records].reverse() };
  t.deepEqual(pairedBootstrap(a, reversed), pairedBootstrap(a, b));
});

test('compareResults lists unmatched tasks and formats a table with significance marks', (t) => {
  const res = (tasks: TaskResult[]): EvalResult => ({
    model: 'm', format: 'chat', options: { shots: 5, batchSize: 16, rouge: 'recall', paragraphOverlap: 'paper', textMaxChars: 0 }, tasks, summary: { groups: {}, groupSizes: {}, microAvg: 0 }, text: {},
  });
  const c = compareResults(res([run('x', ones(60, 20)), run('only_a', ones(5, 1))]), res([run('x', ones(60, 50))]));
  t.deepEqual(c.unmatched, ['only_a']);
  const text = formatComparison(c);
  t.regex(text, /x\s+0\.333\s+0\.833\s+\+0\.500 .* \*$/m);
});
