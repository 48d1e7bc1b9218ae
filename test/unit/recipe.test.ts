import { readdirSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';

import test from 'ava';

import { readRecipe } from '../../ts/adapt/recipe.js';
import { tempDir } from '../helpers.js';

const RECIPES = join(import.meta.dirname, '..', '..', '..', 'recipes');

test('every shipped recipe loads, validates and has its paths resolved against its folder', (t) => {
  const files = readdirSync(RECIPES).filter((f) => /\.(ya?ml|json)$/.test(f) && !f.endsWith('.schema.json'));
  t.true(files.length >= 3);
  for (const f of files) {
    const r = readRecipe(join(RECIPES, f));
    t.true(isAbsolute(r.base) && [r.instruct].flat().every(isAbsolute), f);
    t.true([r.corpus.train].flat().every(isAbsolute), f);
    t.true(r.train.seqLen > 0, f);
  }
  t.regex(readRecipe(join(RECIPES, 'toy-ru-extended.yaml')).base, /test\/fixtures\/toy-family\/base$/);
  const cal = readRecipe(join(RECIPES, 'toy-ru-extended.yaml')).calibrate!;
  t.is(cal.mode, 'self');
  t.true(isAbsolute(cal.copyText!) && isAbsolute(cal.corpora!), 'calibration paths resolved');
});

test('bad recipes name the key and the problem', (t) => {
  const dir = tempDir();
  const ok = { base: 'b', instruct: 'i', corpus: { train: 'ru.txt' }, tokenizer: { kind: 'extend', vocabSize: 8000 }, train: { seqLen: 128 } };
  const bad = (name: string, recipe: unknown, message: RegExp, raw?: string) => {
    const f = join(dir, name);
    writeFileSync(f, raw ?? JSON.stringify(recipe));
    t.throws(() => readRecipe(f), { message }, name);
  };
  writeFileSync(join(dir, 'ok.json'), JSON.stringify(ok));
  t.is(readRecipe(join(dir, 'ok.json')).base, join(dir, 'b'));
  bad('typo.json', { ...ok, train: { seqLen: 128, stpes: 10 } }, /recipe\.train\.stpes: unknown key\nHINT: the known keys of train are seqLen, newRowsOnly/);
  bad('type.json', { ...ok, train: { seqLen: 128, lr: '1e-4' } }, /recipe\.train\.lr: expected a positive number, got "1e-4"/);
  // keepCheckpoints is a recipe key (the disk refusal names it: at 8B a checkpoint holds 17 GB).
  writeFileSync(join(dir, 'keep.json'), JSON.stringify({ ...ok, train: { seqLen: 128, keepCheckpoints: 1 } }));
  t.is(readRecipe(join(dir, 'keep.json')).train.keepCheckpoints, 1);
  bad('keep-bad.json', { ...ok, train: { seqLen: 128, keepCheckpoints: -1 } }, /recipe\.train\.keepCheckpoints: expected/);
  bad('missing.json', { ...ok, instruct: undefined }, /recipe\.instruct is required/);
  bad('kind.json', { ...ok, tokenizer: { kind: 'merge' } }, /recipe\.tokenizer\.kind: expected "existing" or "train" or "extend" or "shrink"/);
  bad('shrink.json', { ...ok, tokenizer: { kind: 'shrink' } }, /recipe\.tokenizer\.keep is required for kind "shrink"/);
  bad('unigram.json', { ...ok, tokenizer: { kind: 'extend', type: 'unigram' } }, /an extend donor must be "bpe"/);
  bad('methods.json', { ...ok, propagate: { methods: ['swap', 'copy'] } }, /recipe\.propagate\.methods\[1\]/);
  bad('cal-mode.json', { ...ok, calibrate: { mode: 'judge' } }, /recipe\.calibrate\.mode: expected "self" or "data"/);
  bad('cal-data.json', { ...ok, calibrate: { mode: 'data' } }, /recipe\.calibrate\.data is required for mode "data"/);
  bad('cal-copy.json', { ...ok, calibrate: { mode: 'self', copyExamples: 10 } }, /recipe\.calibrate\.copyText is required with copyExamples/);
  bad('cal-target.json', { ...ok, calibrate: { mode: 'self', lora: { targets: ['qkv'] } } }, /recipe\.calibrate\.lora\.targets\[0\]: expected "q_proj"/);
  bad('broken.yaml', null, /broken\.yaml is not valid YAML/, 'base: [unclosed\n');
  bad('list.json', null, /expected an object/, '[1, 2]');
});

test('init: rules omp/focus with an auxiliary model, its path resolved against the recipe folder', (t) => {
  const dir = tempDir();
  const f = join(dir, 'r.json');
  const recipe = { base: 'b', instruct: 'i', corpus: { train: 'ru.txt' }, tokenizer: { kind: 'extend', vocabSize: 8000 }, train: { seqLen: 128 } };
  writeFileSync(f, JSON.stringify({ ...recipe, init: { rule: 'omp', auxModel: 'aux', ompK: 32, solveDtype: 'float64' } }));
  t.like(readRecipe(f).init, { rule: 'omp', auxModel: join(dir, 'aux'), ompK: 32, solveDtype: 'float64' });
  writeFileSync(f, JSON.stringify({ ...recipe, init: { rule: 'median' } }));
  t.throws(() => readRecipe(f), { message: /recipe.init.rule.*"mean" or "random" or "global-mean" or "omp" or "focus"/ });
});
