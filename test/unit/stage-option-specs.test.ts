// The option specs of lep init, lep eval and lep tokenizer train (the train and propagate specs are in
// option-spec.test.ts): one table per stage gives the API's and the recipe's validation alike, the CLI's
// flags and --help (with the defaults), and the resolved options.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Value } from '@sinclair/typebox/value';
import test from 'ava';

import { readRecipe, recipeSchema, type AdaptRecipe } from '../../ts/adapt/recipe.js';
import { calibrate } from '../../ts/calibrate/calibrate.js';
import { CALIBRATE_SPEC } from '../../ts/calibrate/calibrateOptions.js';
import { run as calibrateCli, usage as calibrateUsage } from '../../ts/cli/calibrate.js';
import { run as evalCli, usage as evalUsage } from '../../ts/cli/eval.js';
import { run as initCli, usage as initUsage } from '../../ts/cli/init.js';
import { run as tokenizerTrainCli, usage as tokenizerTrainUsage } from '../../ts/cli/tokenizerTrain.js';
import { resolveTrainOptions, TOKENIZER_TRAIN_DEFAULTS, trainTokenizer } from '../../ts/tokenizer/train.js';
import { TOKENIZER_TRAIN_SPEC } from '../../ts/tokenizer/trainTokenizerOptions.js';
import { compareResults } from '../../ts/eval/compare.js';
import { evaluate, type EvalResult } from '../../ts/eval/evaluate.js';
import { COMPARE_SPEC, EVAL_SPEC } from '../../ts/eval/evalOptions.js';
import { LepError } from '../../ts/errors.js';
import { INIT_DEFAULTS, initEmbeddings, resolveInitOptions } from '../../ts/init/initEmbeddings.js';
import { INIT_SPEC } from '../../ts/init/initOptions.js';
import type { OptionSpecs } from '../../ts/options/optionSpec.js';
import { READ_TEXTS_SPEC } from '../../ts/corpus/readTextsOptions.js';
import { EXTEND_SPEC } from '../../ts/tokenizer/extendOptions.js';
import { tempDir } from '../helpers.js';
import { helpShowsDefaults } from '../optionSpecChecks.js';

const OK_RECIPE = { base: 'b', instruct: 'i', corpus: { train: 'ru.txt' }, tokenizer: { kind: 'extend', vocabSize: 8000 }, train: { seqLen: 128 } };

function writeRecipe(recipe: unknown): string {
  const f = join(tempDir(), 'r.json');
  writeFileSync(f, JSON.stringify(recipe));
  return f;
}

test('every default of these specs fits its own schema', (t) => {
  const specs: Record<string, OptionSpecs> = { init: INIT_SPEC, eval: EVAL_SPEC, compare: COMPARE_SPEC, tokenizerTrain: TOKENIZER_TRAIN_SPEC, calibrate: CALIBRATE_SPEC };
  for (const [name, spec] of Object.entries(specs))
    for (const [k, s] of Object.entries(spec)) if (s.default !== undefined) t.true(Value.Check(s.schema, s.default), `${name}.${k} default ${JSON.stringify(s.default)}`);
});

test('init: a recipe that names omp without an auxiliary model, or ompK under another rule, is refused when it is read (it was accepted, and init failed after the tokenizer stage)', (t) => {
  const noAux = t.throws(() => readRecipe(writeRecipe({ ...OK_RECIPE, init: { rule: 'omp' } })), { instanceOf: LepError });
  t.is(noAux.code, 'LEP_BAD_RECIPE');
  t.regex(noAux.message, /recipe\.init\.rule: "omp" needs an auxiliary model \(recipe\.init\.auxModel\) but none was given\nHINT: set auxModel to a model directory/);
  const ompK = t.throws(() => readRecipe(writeRecipe({ ...OK_RECIPE, init: { rule: 'focus', auxModel: 'aux', ompK: 8 } })), { instanceOf: LepError });
  t.regex(ompK.message, /recipe\.init\.ompK applies to the rule "omp" but the rule is "focus"\nHINT: drop ompK/);
  const aux = t.throws(() => readRecipe(writeRecipe({ ...OK_RECIPE, init: { auxModel: 'aux' } })), { instanceOf: LepError });
  t.regex(aux.message, /recipe\.init\.auxModel applies to the rules "omp", "focus" but the rule is "mean"/);
  t.like(readRecipe(writeRecipe({ ...OK_RECIPE, init: { rule: 'omp', auxModel: 'aux', ompK: 8 } })).init, { rule: 'omp', ompK: 8 });
  // device is lep init's, not a recipe key.
  t.throws(() => readRecipe(writeRecipe({ ...OK_RECIPE, init: { device: 'cpu' } })), { message: /recipe\.init\.device: unknown key/ });
});

test('init: resolved options are the spec defaults; unknown options are refused before anything is read (they were ignored)', async (t) => {
  t.deepEqual(resolveInitOptions({}), INIT_DEFAULTS);
  t.deepEqual(INIT_DEFAULTS, { rule: 'mean', ompK: 64, solveDtype: 'float32', device: 'cpu', outputRule: 'mean', seed: 0, padToMultipleOf: 1 });
  t.like(resolveInitOptions({ rule: 'omp', auxModel: 'a', ompK: 3 }), { rule: 'omp', ompK: 3 });
  const typo = await t.throwsAsync(initEmbeddings('/nonexistent/model', '/nonexistent/tok', join(tempDir(), 'o'), { padToMultipleof: 64 } as never), { instanceOf: LepError });
  t.is(typo.code, 'LEP_BAD_OPTION');
  t.regex(typo.message, /unknown option padToMultipleof\nHINT: the known options are rule, auxModel, ompK/);
  t.throws(() => resolveInitOptions({ copyRows: { '<x>': 3 } as never }), { message: /Expected an object of new token -> old token strings for copyRows/ });
  t.throws(() => resolveInitOptions({ device: 'cuda', rule: 'mean' }), { message: /device \(--device\) applies to the rules "omp", "focus" but the rule is "mean"\nHINT: add --rule omp/ });
});

test('init: the CLI reads its flags from the spec; --help shows every default and an example', async (t) => {
  helpShowsDefaults(t, initUsage, INIT_SPEC);
  t.regex(initUsage, /--omp-k N +Rule omp: shared tokens per new token.*\(default 64\)/);
  t.regex(initUsage, /--id-map FILE .*\(default DIR\/id_map\.json when present\)/);
  t.regex(initUsage, /\nExample: lep init /);
  const out = join(tempDir(), 'o');
  const k = await t.throwsAsync(initCli(['m', '--tokenizer', 't', '--out', out, '--rule', 'omp', '--aux-model', 'a', '--omp-k', 'many']), { instanceOf: LepError });
  t.regex(k.message, /Expected a positive integer for ompK \(--omp-k\) but received "many"\nHINT: ompK \(--omp-k\): Rule omp/);
  const pad = await t.throwsAsync(initCli(['m', '--tokenizer', 't', '--out', out, '--pad-to-multiple-of', '0']), { instanceOf: LepError });
  t.regex(pad.message, /Expected a positive integer for padToMultipleOf \(--pad-to-multiple-of\) but received 0/);
  const row = await t.throwsAsync(initCli(['m', '--tokenizer', 't', '--out', out, '--copy-row', 'x']), { instanceOf: LepError });
  t.regex(row.message, /Expected NEW=OLD for --copy-row but received "x"\nHINT: /);
});

test('eval: options are checked against the spec before any task or model is read; unknown ones are refused (they were ignored)', async (t) => {
  const typo = await t.throwsAsync(evaluate('/nonexistent/model', ['all'], { limt: 5 } as never), { instanceOf: LepError });
  t.is(typo.code, 'LEP_BAD_OPTION');
  t.regex(typo.message, /unknown option limt\nHINT: the known options are format, shots, limit/);
  const shots = await t.throwsAsync(evaluate('/nonexistent/model', ['all'], { shots: -1 }), { instanceOf: LepError });
  t.regex(shots.message, /Expected a non-negative integer for shots \(--shots\) but received -1\nHINT: shots \(--shots\): Few-shot examples .* Defaults to 5\./);
  // textMaxChars went unchecked to the corpus reader, whose message named its own flag (--max-chars).
  const chars = await t.throwsAsync(evaluate('/nonexistent/model', ['all'], { textMaxChars: -1 }), { instanceOf: LepError });
  t.regex(chars.message, /Expected a non-negative integer for textMaxChars \(--text-max-chars\)/);
});

test('eval --compare: bootstrap settings out of range are refused (samples 0 gave NaN p-values, alpha 1 called every difference significant)', async (t) => {
  const run = { model: 'a', tasks: [] } as unknown as EvalResult;
  t.throws(() => compareResults(run, run, { samples: 0 }), { message: /Expected a positive integer for samples \(--samples\) but received 0/ });
  t.throws(() => compareResults(run, run, { alpha: 1 }), { message: /Expected a number in \(0, 1\) for alpha \(--alpha\) but received 1/ });
  t.deepEqual(compareResults(run, run), { base: 'a', other: 'a', tasks: [], unmatched: [] });
  const cli = await t.throwsAsync(evalCli(['--compare', 'a.json', 'b.json', '--alpha', '1.5']), { instanceOf: LepError });
  t.regex(cli.message, /for alpha \(--alpha\) but received 1\.5/);
});

test('eval: --help shows every default of the spec and an example; a wrong flag value names the flag', async (t) => {
  helpShowsDefaults(t, evalUsage, { ...EVAL_SPEC, ...COMPARE_SPEC });
  t.regex(evalUsage, /--batch-size N +Sequences per native call\. \(default 16\)/);
  t.regex(evalUsage, /--limit N +Items per task at most \(the first N\)\. \(default all\)/);
  t.regex(evalUsage, /\nExample: lep eval /);
  const bs = await t.throwsAsync(evalCli(['/nonexistent/model', '--tasks', 'all', '--batch-size', 'x']), { instanceOf: LepError });
  t.regex(bs.message, /Expected a positive integer for batchSize \(--batch-size\) but received "x"/);
  const fmt = await t.throwsAsync(evalCli(['/nonexistent/model', '--tasks', 'all', '--format', 'few-shot']), { instanceOf: LepError });
  t.regex(fmt.message, /Expected "chat" or "plain" for format \(--format\)/);
});

test('tokenizer train: a recipe value trainTokenizer refuses is refused when the recipe is read (the recipe accepted any seed and vocabSize)', async (t) => {
  const seed = t.throws(() => readRecipe(writeRecipe({ ...OK_RECIPE, tokenizer: { kind: 'extend', seed: 2 ** 32 - 1 } })), { instanceOf: LepError });
  t.is(seed.code, 'LEP_BAD_RECIPE');
  t.regex(seed.message, /recipe\.tokenizer\.seed: expected an integer in \[0, 4294967294\], got 4294967295\nHINT: seed \(--seed\): Seed of the input sample/);
  const api = await t.throwsAsync(trainTokenizer('/nonexistent/corpus.txt', join(tempDir(), 'o'), { seed: 2 ** 32 - 1 }), { instanceOf: LepError });
  t.regex(api.message, /Expected an integer in \[0, 4294967294\] for seed \(--seed\) but received 4294967295/);
  t.throws(() => readRecipe(writeRecipe({ ...OK_RECIPE, tokenizer: { kind: 'train', vocabSize: 2 ** 31 } })), { message: /recipe\.tokenizer\.vocabSize: expected an integer in \[1, 2147483647\]/ });
  // lep tokenizer train's own options that are not recipe keys stay refused there.
  t.throws(() => readRecipe(writeRecipe({ ...OK_RECIPE, tokenizer: { kind: 'train', characterCoverage: 1 } })), { message: /recipe\.tokenizer\.characterCoverage: unknown key\nHINT: the known keys of tokenizer are kind, dir, type, vocabSize, inputSentenceSize, seed, keep, mergeOrder/ });
  t.like(readRecipe(writeRecipe({ ...OK_RECIPE, tokenizer: { kind: 'train', type: 'unigram', vocabSize: 1000, seed: 7 } })).tokenizer, { type: 'unigram', vocabSize: 1000, seed: 7 });
});

test('tokenizer train: resolved options are the spec defaults; unknown options are refused (they were ignored)', (t) => {
  const r = resolveTrainOptions({});
  t.like(r, { type: 'bpe', vocabSize: 32000, characterCoverage: 0.9995, byteFallback: true, splitDigits: true, userDefinedSymbols: [], inputSentenceSize: 0, shuffleInputSentence: true, seed: 0, maxSentenceLength: 4192, maxPieceLength: 16 });
  t.true(r.threads >= 1);
  t.is(TOKENIZER_TRAIN_DEFAULTS.vocabSize, 32000);
  const typo = t.throws(() => resolveTrainOptions({ vocab_size: 8000 } as never), { instanceOf: LepError });
  t.regex(typo.message, /unknown option vocab_size\nHINT: the known options are type, vocabSize/);
  t.throws(() => resolveTrainOptions({ characterCoverage: 0 }), { message: /Expected a number in \(0, 1\] for characterCoverage \(--character-coverage\) but received 0/ });
});

test('tokenizer train: --help shows every default and an example; flags are typed by the spec', async (t) => {
  helpShowsDefaults(t, tokenizerTrainUsage, TOKENIZER_TRAIN_SPEC);
  t.regex(tokenizerTrainUsage, /--vocab-size N +Pieces in the vocabulary.*\(default 32000\)/);
  t.regex(tokenizerTrainUsage, /--spm-threads N .*\(default one per core\)/);
  t.regex(tokenizerTrainUsage, /\nExample: lep tokenizer train /);
  const out = join(tempDir(), 'o');
  const piece = await t.throwsAsync(tokenizerTrainCli(['--corpus', 'c.txt', '--out', out, '--max-piece-length', '513']), { instanceOf: LepError });
  t.regex(piece.message, /Expected an integer in \[1, 512\] for maxPieceLength \(--max-piece-length\) but received 513/);
  const cov = await t.throwsAsync(tokenizerTrainCli(['--corpus', 'c.txt', '--out', out, '--character-coverage', 'all']), { instanceOf: LepError });
  t.regex(cov.message, /Expected a number in \(0, 1\] for characterCoverage \(--character-coverage\) but received "all"/);
});

test('calibrate: the recipe section is lep calibrate\'s spec: its train key takes what calibrate takes (gradAccum was refused) and refuses what it refuses', (t) => {
  const withCal = (calibrate: unknown) => writeRecipe({ ...OK_RECIPE, calibrate });
  // lep calibrate takes train.gradAccum (one of lep train's options over the preset's); the recipe refused it.
  t.like(readRecipe(withCal({ mode: 'self', train: { gradAccum: 4, steps: 10 } })).calibrate, { train: { gradAccum: 4, steps: 10 } });
  t.throws(() => readRecipe(withCal({ mode: 'self', train: { steps: 0 } })), { message: /recipe\.calibrate\.train\.steps: expected a positive integer, got 0/ });
  t.throws(() => readRecipe(withCal({ mode: 'self', train: { data: 'x' } })), { message: /recipe\.calibrate\.train\.data: unknown key/ });
  t.throws(() => readRecipe(withCal({ mode: 'self', original: 'x' })), { message: /recipe\.calibrate\.original: unknown key/ });
  t.throws(() => readRecipe(withCal({ mode: 'data', copyExamples: 3, data: 'd' })), { code: 'LEP_BAD_RECIPE', message: /recipe\.calibrate\.copyText is required with copyExamples\nHINT: / });
});

test('calibrate: options are checked against the spec before anything is read or written (a typo, a missing dataset)', async (t) => {
  const out = join(tempDir(), 'o');
  const typo = await t.throwsAsync(calibrate('/nonexistent/model', out, { mode: 'data', data: 'd', seqlen: 64 } as never), { instanceOf: LepError });
  t.regex(typo.message, /unknown option seqlen\nHINT: the known options are mode, original, prompts/);
  const data = await t.throwsAsync(calibrate('/nonexistent/model', out, { mode: 'data' }), { instanceOf: LepError });
  t.is(data.code, 'LEP_BAD_OPTION');
  t.regex(data.message, /data \(--data\) is required for mode "data"\nHINT: /);
  const self = await t.throwsAsync(calibrate('/nonexistent/model', out, { mode: 'self' }), { instanceOf: LepError });
  t.regex(self.message, /original \(--original\) is required for mode "self"/);
  const train = await t.throwsAsync(calibrate('/nonexistent/model', out, { mode: 'data', data: 'd', train: { stpes: 3 } as never }), { instanceOf: LepError });
  t.regex(train.message, /unknown option train\.stpes\nHINT: the known keys of train are steps, batchSize, gradAccum/);
});

test('calibrate: --help shows every default and an example; the train flags name themselves in errors', async (t) => {
  helpShowsDefaults(t, calibrateUsage, CALIBRATE_SPEC);
  t.regex(calibrateUsage, /--steps N +Optimizer steps\. \(default one epoch of the data\)/);
  t.regex(calibrateUsage, /--lr X +Peak learning rate\. \(default the preset's\)/);
  t.regex(calibrateUsage, /\nExample: lep calibrate /);
  const out = join(tempDir(), 'o');
  // --steps 0 reached trainModel only after the answers were generated.
  const steps = await t.throwsAsync(calibrateCli(['m', '--out', out, '--data', 'd.jsonl', '--steps', '0']), { instanceOf: LepError });
  t.regex(steps.message, /Expected a positive integer for steps \(--steps\) but received 0/);
  const lang = await t.throwsAsync(calibrateCli(['m', '--out', out, '--data', 'd.jsonl', '--copy-lang', 'de']), { instanceOf: LepError });
  t.regex(lang.message, /Expected "en" or "ru" for copyLang \(--copy-lang\) but received "de"/);
});

test('recipe: every section is typed and checked from the specs: corpus keys are the corpus reader\'s, tokenizer.mergeOrder is lep tokenizer extend\'s', (t) => {
  // The TS type of a recipe is the specs' (these lines fail to compile when a key or a type drifts).
  const typed: AdaptRecipe = { ...OK_RECIPE, tokenizer: { kind: 'shrink', keep: 100, mergeOrder: 'original-first' }, corpus: { train: 'x', normalize: 'NFC', maxChars: 10 }, train: { seqLen: 8, lr: 1e-3, lora: { rank: 4 } } };
  // @ts-expect-error normalize takes the corpus reader's values only
  const badNormalize: AdaptRecipe['corpus'] = { train: 'x', normalize: 'NFD' };
  // @ts-expect-error seqLen is required
  const noSeqLen: AdaptRecipe['train'] = { steps: 3 };
  // @ts-expect-error device is lep init's, not a recipe key
  const initDevice: AdaptRecipe['init'] = { device: 'cpu' };
  void [typed, badNormalize, noSeqLen, initDevice];
  const normalize = t.throws(() => readRecipe(writeRecipe({ ...OK_RECIPE, corpus: { train: 'x', normalize: 'NFD' } })), { instanceOf: LepError });
  t.regex(normalize.message, /recipe\.corpus\.normalize: expected "none" or "NFC" or "NFKC", got "NFD"\nHINT: normalize \(--normalize\): Unicode normalisation/);
  t.throws(() => readRecipe(writeRecipe({ ...OK_RECIPE, corpus: { train: 'x', mode: 'document' } })), { message: /recipe\.corpus\.mode: unknown key\nHINT: the known keys of corpus are train, eval, normalize, script, maxChars/ });
  t.throws(() => readRecipe(writeRecipe({ ...OK_RECIPE, tokenizer: { kind: 'extend', mergeOrder: 'paper' } })), { message: /recipe\.tokenizer\.mergeOrder: expected "keep-ascii" or "new-first" or "original-first", got "paper"/ });
  t.throws(() => readRecipe(writeRecipe({ ...OK_RECIPE, tokenizer: { kind: 'extend', padToMultipleOf: 64 } })), { message: /recipe\.tokenizer\.padToMultipleOf: unknown key/ });
  const schema = recipeSchema() as { properties: Record<string, { properties: Record<string, { default?: unknown }> }> };
  t.is(schema.properties.corpus!.properties.normalize!.default, READ_TEXTS_SPEC.normalize.default);
  t.is(schema.properties.tokenizer!.properties.mergeOrder!.default, EXTEND_SPEC.mergeOrder.default);
  t.deepEqual(Object.keys(schema.properties.corpus!.properties), ['train', 'eval', 'normalize', 'script', 'maxChars']);
});
