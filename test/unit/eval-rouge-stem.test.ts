/**
 * --rouge-stem: ROUGE over stemmed words (Snowball Russian for Cyrillic, Porter for Latin). Hand values:
 * inflected forms that differ only in their endings match once stemmed, and not before.
 */
import test from 'ava';

import { generationRecord } from '../../ts/eval/itemScores.js';
import { rougeN } from '../../ts/eval/metrics/rouge.js';
import { stemmedRougeWords, stemWord } from '../../ts/eval/metrics/rougeStem.js';
import type { TaskHeader, TaskItem } from '../../ts/eval/taskFile.js';
import type { Tokenizer } from '../../ts/tokenizer/Tokenizer.js';

const close = (a: number, b: number) => Math.abs(a - b) < 1e-12;

test('stems by script: Snowball Russian, Porter English, other words unchanged', (t) => {
  t.deepEqual(['кошки', 'кошкой', 'сидели', 'сидела', 'ковриках'].map(stemWord), ['кошк', 'кошк', 'сидел', 'сидел', 'коврик']);
  t.deepEqual(['cats', 'running', 'runs', 'connection'].map(stemWord), ['cat', 'run', 'run', 'connect']);
  t.deepEqual(['2024', 'straße', 'x86'].map(stemWord), ['2024', 'straße', 'x86']);
  t.deepEqual(stemmedRougeWords('Кошки, сидели! The cats.'), ['кошк', 'сидел', 'the', 'cat']);
});

test('ROUGE-1/2 with and without stemming (hand values)', (t) => {
  // Russian: only "на" matches as written (R1 recall 1/4, no bigram); stemmed, all 4 words and 3 bigrams do.
  const [pred, ref] = ['Кошки сидели на коврике', 'Кошка сидела на ковриках'];
  t.true(close(rougeN(pred, ref, 1).recall, 1 / 4));
  t.is(rougeN(pred, ref, 2).recall, 0);
  t.is(rougeN(pred, ref, 1, stemmedRougeWords).recall, 1);
  t.is(rougeN(pred, ref, 2, stemmedRougeWords).recall, 1);
  // English: "the cat were run" vs "a cat run": 2 matches; recall 2/3, precision 2/4, F 4/7.
  const en = rougeN('The cats were running', 'A cat runs', 1, stemmedRougeWords);
  t.true(close(en.recall, 2 / 3) && close(en.precision, 1 / 2) && close(en.f, 4 / 7));
  t.is(rougeN('The cats were running', 'A cat runs', 1).recall, 0);
});

test('the rouge record uses stemming only when asked', async (t) => {
  const header = { metric: 'rouge', maxNewTokens: 16 } as TaskHeader;
  const item = { id: 's', line: 2, messages: [], gold: 'Кошка сидела на ковриках' } as TaskItem;
  const gen = { text: 'Кошки сидели на коврике', tokens: 6, stopped: true };
  const tok = {} as Tokenizer; // ROUGE does not tokenise with the model's tokenizer
  const plain = await generationRecord(tok, header, item, gen, 'paper');
  const stemmed = await generationRecord(tok, header, item, gen, 'paper', true);
  t.true(close(plain.values.rouge1_recall!, 1 / 4));
  t.is(stemmed.values.rouge1_recall, 1);
  t.is(stemmed.values.rouge2_f, 1);
});
