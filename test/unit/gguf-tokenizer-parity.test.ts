// The static side of the GGUF tokenizer check on hand-made vocabularies whose llama.cpp and Hugging Face
// segmentations are worked out by hand here (test/native/gguf-parity.test.ts checks the simulation
// against llama.cpp itself on held-out text).
import test from 'ava';

import { llamaSpmTokenize, spmInexpressible, spmScores, TokenType, type SpmVocab } from '../../ts/checkpoint/ggufTokenizerParity.js';

function vocab(tokens: string[], merges: string[], userDefined: string[] = []): SpmVocab {
  const types = new Int32Array(tokens.map((t) => (userDefined.includes(t) ? TokenType.USER_DEFINED : TokenType.NORMAL)));
  return { tokens, scores: spmScores(tokens, merges), types, addSpacePrefix: false };
}

const TOKENS = ['a', 'b', 'c', 'ab', 'bc', 'abc', '▁', '▁a'];
const ids = (v: SpmVocab, ...ts: string[]): number[] => ts.map((t) => v.tokens.indexOf(t));

test('scores: minus the rank of the first merge building the entry; entries no merge builds come last', (t) => {
  const s = spmScores([...TOKENS, 'zz'], ['b c', 'a b', 'a bc', 'ab c']);
  t.deepEqual(Array.from(s), [0, 0, 0, -1, -0, -2, 0, -1e9, -1e9]);
});

test('every split listed: llama.cpp merges in Hugging Face order and the vocabulary is exact', (t) => {
  // Hugging Face on "abc": (b,c) rank 0 -> a bc -> (a,bc) rank 2 -> abc. llama.cpp: bc (score 0) first, then abc.
  const v = vocab(TOKENS, ['b c', 'a b', 'a bc', 'ab c', '▁ a']);
  t.deepEqual(llamaSpmTokenize(v, 'abc'), ids(v, 'abc'));
  // "a▁abc": bc, then abc; "▁a" (rank 4) no longer finds its "a": both give a ▁ abc.
  t.deepEqual(llamaSpmTokenize(v, 'a abc'), ids(v, 'a', '▁', 'abc'));
  const x = spmInexpressible(v, ['b c', 'a b', 'a bc', 'ab c', '▁ a'], false);
  t.is(x.unlistedSplits + x.scatteredMerges + x.overlappingMerges + x.ignoreMerges, 0, x.examples.join('; '));
});

test('an unlisted split: llama.cpp builds an entry Hugging Face cannot, and the check says so', (t) => {
  // Hugging Face: (a,b) rank 0 -> ab c, and (ab,c) is no merge: [ab, c]. llama.cpp joins ab + c into the entry abc.
  const merges = ['a b', 'b c', 'a bc', '▁ a'];
  const v = vocab(TOKENS, merges);
  t.deepEqual(llamaSpmTokenize(v, 'abc'), ids(v, 'abc'));
  const x = spmInexpressible(v, merges, false);
  t.is(x.unlistedSplits, 1);
  t.regex(x.examples[0]!, /builds "abc" from "ab" \+ "c"/);
});

test('merges of one entry with another entry\'s merge between them cannot share one score', (t) => {
  const merges = ['a b', 'b c', 'ab c', '▁ a', 'a bc'];
  const x = spmInexpressible(vocab(TOKENS, merges), merges, false);
  t.is(x.scatteredMerges, 1);
});

test('ties go to the left-most pair; user-defined entries are cut out first and the next piece gets the space prefix', (t) => {
  const v = vocab(['a', 'aa', '▁', '▁a', 'X', '<u>'], ['a a', '▁ a'], ['<u>']);
  t.deepEqual(llamaSpmTokenize(v, 'aaa'), ids(v, 'aa', 'a'));
  const p: SpmVocab = { ...v, addSpacePrefix: true };
  t.deepEqual(llamaSpmTokenize(p, 'a<u>a'), ids(p, '▁a', '<u>', '▁a'));
});

test('with ignore_merges an entry the merges do not rebuild is reported', (t) => {
  // abc is in the vocabulary, but nothing builds it: Hugging Face emits a pre-token "abc" whole, llama.cpp a b c.
  const x = spmInexpressible(vocab(['a', 'b', 'c', 'abc'], []), [], true);
  t.true(x.ignoreMerges >= 1);
  t.true(x.examples.some((e) => e.includes('"abc"')));
});
