/** fitContext: a prompt longer than the context keeps its first tokens and its end, and fits exactly. */
import test from 'ava';

import { fitContext, HEAD_TOKENS } from '../../ts/eval/fitContext.js';

test('a prompt that fits is kept as it is', (t) => {
  const ids = [1, 2, 3];
  t.deepEqual(fitContext(ids, 3), { ids, cut: false });
});

test('a long prompt keeps the head and the tail, budget tokens in all', (t) => {
  const ids = Array.from({ length: 100 }, (_, i) => i);
  const { ids: out, cut } = fitContext(ids, 40);
  t.true(cut);
  t.is(out.length, 40);
  t.deepEqual(out.slice(0, 10), ids.slice(0, 10), 'a small budget keeps a quarter of it as head');
  t.deepEqual(out.slice(10), ids.slice(70));
  const big = fitContext(Array.from({ length: 1000 }, (_, i) => i), 500).ids;
  t.deepEqual(big.slice(0, HEAD_TOKENS), Array.from({ length: HEAD_TOKENS }, (_, i) => i));
  t.is(big.at(-1), 999);
});
