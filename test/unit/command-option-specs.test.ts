/**
 * The commands whose flags, help and checks derive from an option spec (data pack, generate, export gguf and
 * checkpoint, tokenizer extend and shrink, model create, corpora fetch, the corpus flags; LepModel.load and the --device
 * and --dtype of the commands that load a model): the flags each command had
 * before its spec are still accepted and documented, the defaults are the same and shown, and a wrong value
 * is refused naming the option and its flag before anything is read or written.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { exportGguf } from '../../ts/checkpoint/gguf.js';
import { GGUF_SPEC } from '../../ts/checkpoint/ggufOptions.js';
import { run as corporaFetchCli, usage as corporaFetchUsage } from '../../ts/cli/corporaFetch.js';
import { CORPUS_FLAGS_SPEC, corpusUsage, readOptions } from '../../ts/cli/corpusFlags.js';
import { FETCH_CORPORA_SPEC } from '../../ts/corpus/fetchCorporaOptions.js';
import { run as dataPackCli, usage as dataPackUsage } from '../../ts/cli/dataPack.js';
import { run as exportCheckpointCli, usage as exportCheckpointUsage } from '../../ts/cli/exportCheckpoint.js';
import { run as exportGgufCli, usage as exportGgufUsage } from '../../ts/cli/exportGguf.js';
import { usage as evalUsage } from '../../ts/cli/eval.js';
import { run as generateCli, usage as generateUsage } from '../../ts/cli/generate.js';
import { run as modelCreateCli, usage as modelCreateUsage } from '../../ts/cli/modelCreate.js';
import { run as tokenizerExtendCli, usage as tokenizerExtendUsage } from '../../ts/cli/tokenizerExtend.js';
import { run as tokenizerShrinkCli, usage as tokenizerShrinkUsage } from '../../ts/cli/tokenizerShrink.js';
import { READ_TEXTS_DEFAULTS } from '../../ts/corpus/readCorpus.js';
import { LepError } from '../../ts/errors.js';
import { createModel } from '../../ts/model/createModel.js';
import { CREATE_MODEL_SPEC } from '../../ts/model/createModelOptions.js';
import { EVAL_SPEC } from '../../ts/eval/evalOptions.js';
import { GENERATE_SPEC } from '../../ts/model/generateOptions.js';
import { LepModel } from '../../ts/model/LepModel.js';
import { LOAD_FLAGS_SPEC, LOAD_SPEC } from '../../ts/model/loadOptions.js';
import { defaultsOf, helpLines } from '../../ts/options/optionSpec.js';
import { EXTEND_DEFAULTS } from '../../ts/tokenizer/extend.js';
import { EXTEND_SPEC } from '../../ts/tokenizer/extendOptions.js';
import { SHRINK_DEFAULTS } from '../../ts/tokenizer/shrink.js';
import { SHRINK_DIR_SPEC } from '../../ts/tokenizer/shrinkOptions.js';
import { exportCheckpoint } from '../../ts/train/exportCheckpoint.js';
import { EXPORT_CHECKPOINT_SPEC } from '../../ts/train/exportCheckpointOptions.js';
import { packCorpus } from '../../ts/train/packCorpus.js';
import { PACK_SPEC } from '../../ts/train/packCorpusOptions.js';
import { tempDir } from '../helpers.js';
import { acceptsFlags, helpShowsDefaults } from '../optionSpecChecks.js';

const CORPUS_FLAGS = ['mode', 'format', 'text-field', 'normalize', 'script', 'max-lines', 'max-chars'];

test('the defaults are the ones the hand-written code had (each now written once, in its spec)', (t) => {
  t.deepEqual(defaultsOf(GENERATE_SPEC), { maxNewTokens: 64, temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: 0 });
  t.deepEqual(READ_TEXTS_DEFAULTS, { mode: 'line', format: 'auto', textField: 'text', normalize: 'none', scriptShare: 0.5, maxItems: 0, maxChars: 0, maxItemChars: 1_000_000 });
  t.deepEqual(EXTEND_DEFAULTS, { mergeOrder: 'keep-ascii', padToMultipleOf: 1, reservedToken: '<|reserved_{k}|>' });
  t.deepEqual(SHRINK_DEFAULTS, { rule: 'frequency', batchSize: 256 });
  t.deepEqual(defaultsOf(PACK_SPEC), { kind: 'text', maxBlocks: 0, maxChars: 0, normalize: 'none', textField: 'text' });
  t.deepEqual(defaultsOf(GGUF_SPEC), { outType: 'f16', force: false });
  t.deepEqual(defaultsOf(EXPORT_CHECKPOINT_SPEC), {});
  t.deepEqual(defaultsOf(FETCH_CORPORA_SPEC), { cacheDir: '.cache/corpora', heldoutPercent: 5, enManpagesMaxBytes: 8 * 1024 * 1024, force: false });
  t.deepEqual(defaultsOf(CREATE_MODEL_SPEC), {
    modelType: 'llama', hiddenSize: 64, numHiddenLayers: 2, numAttentionHeads: 4, maxPositionEmbeddings: 512, ropeTheta: 10000, seed: 0, initStd: 0.02, embedStd: 0.02, dtype: 'f32', maxShardBytes: 0,
  });
});

test('corpus flags: every reader flag, its default in the help, checked by the reader\'s spec (--max-lines named, not --max-items)', (t) => {
  helpShowsDefaults(t, corpusUsage, CORPUS_FLAGS_SPEC);
  t.regex(corpusUsage, /--corpus SPEC +\(repeatable\)/);
  t.regex(corpusUsage, /--mode line\|document +.*\(default line\)/);
  t.regex(corpusUsage, /--text-field NAME +.*\(default text\)/);
  t.regex(corpusUsage, /--max-lines N +.*\(default 0\)/);
  t.deepEqual(readOptions({ 'max-lines': '5', mode: 'document' }), { mode: 'document', maxItems: 5 });
  const lines = t.throws(() => readOptions({ 'max-lines': '-1' }), { instanceOf: LepError });
  t.is(lines.code, 'LEP_BAD_OPTION');
  t.regex(lines.message, /^Expected a non-negative integer for maxItems \(--max-lines\) but received -1\nHINT: maxItems \(--max-lines\): .* Defaults to 0\./);
  t.throws(() => readOptions({ mode: 'para' }), { message: /Expected "line" or "document" for mode \(--mode\) but received "para"/ });
  t.throws(() => readOptions({ 'text-field': 'a..b' }), { message: /Expected a field name such as "text" for textField \(--text-field\) but received "a\.\.b"/ });
});

test('corpora fetch: the flags it had, defaults from the spec; a wrong value is refused before anything is fetched', async (t) => {
  await acceptsFlags(t, corporaFetchCli, corporaFetchUsage, { string: ['out', 'only', 'sources', 'heldout-percent', 'en-manpages-max-bytes'], boolean: ['force', 'json'] });
  helpShowsDefaults(t, corporaFetchUsage, FETCH_CORPORA_SPEC);
  t.regex(corporaFetchUsage, /--only LIST +.*comma-separated \(or the flag repeated\), of ru, en, pairs\. \(default all\)/);
  const out = join(tempDir(), 'corpora');
  const pct = await t.throwsAsync(corporaFetchCli(['--out', out, '--heldout-percent', '5%']), { instanceOf: LepError });
  t.regex(pct.message, /^Expected a number in \[0, 100\) for heldoutPercent \(--heldout-percent\) but received "5%"\nHINT: /);
  const src = await t.throwsAsync(corporaFetchCli(['--out', out, '--sources', 'fortunes-ru', '--sources', 'manpages-fr']), { instanceOf: LepError });
  t.regex(src.message, /^Expected "fortunes-ru" or "manpages-ru" or "manpages-en" or "libreoffice-help" for sources\[1\] \(--sources\) but received "manpages-fr"/);
  t.false(existsSync(out));
});

test('data pack: flags, defaults and an example from the spec; a wrong value is refused before the output is touched', async (t) => {
  await acceptsFlags(t, dataPackCli, dataPackUsage, { string: ['tokenizer', 'out', 'seq-len', 'kind', 'max-blocks', 'max-chars', 'normalize', 'script', 'text-field'], boolean: ['json'] });
  helpShowsDefaults(t, dataPackUsage, PACK_SPEC);
  t.regex(dataPackUsage, /--kind text\|chat +.*\(default text\)/);
  t.regex(dataPackUsage, /\nExample: lep data pack /);
  const out = join(tempDir(), 'blocks.safetensors');
  const seq = await t.throwsAsync(dataPackCli(['--tokenizer', '/nonexistent/tok', '--out', out, '--seq-len', '1', 'c.txt']), { instanceOf: LepError });
  t.regex(seq.message, /^Expected an integer >= 2 for seqLen \(--seq-len\) but received 1\nHINT: seqLen \(--seq-len\): Tokens per block\./);
  const kind = await t.throwsAsync(dataPackCli(['--tokenizer', '/nonexistent/tok', '--out', out, '--seq-len', '8', '--kind', 'tex', 'c.txt']), { instanceOf: LepError });
  t.regex(kind.message, /Expected "text" or "chat" for kind \(--kind\) but received "tex"/);
  t.false(existsSync(out));
  // The library refuses unknown options (they were ignored) before it opens the tokenizer.
  const typo = await t.throwsAsync(packCorpus('c.txt', '/nonexistent/tok', out, { seqLen: 8, maxblocks: 3 } as never), { instanceOf: LepError });
  t.regex(typo.message, /^unknown option maxblocks\nHINT: the known options are seqLen, kind, maxBlocks, maxChars/);
});

test('generate: flags, defaults and an example from the spec; sampling values are refused before the model is read', async (t) => {
  await acceptsFlags(t, generateCli, generateUsage, { string: ['prompt', 'max-new-tokens', 'temperature', 'top-k', 'top-p', 'repetition-penalty', 'seed', 'device', 'dtype'], boolean: ['chat', 'json'] });
  helpShowsDefaults(t, generateUsage, { ...GENERATE_SPEC, seed: { ...GENERATE_SPEC.seed, default: undefined } });
  t.regex(generateUsage, /--max-new-tokens N +.*\(default 64\)/);
  t.regex(generateUsage, /--temperature X +.*0 = greedy.*\(default 0\)/);
  t.regex(generateUsage, /--seed N +.*\(default greedy: 0; sampling: a random seed, printed\)/);
  t.regex(generateUsage, /\nExample: lep generate /);
  // A model that does not exist: the options are refused first (the message was "no config.json").
  const topP = await t.throwsAsync(generateCli(['/nonexistent/model', '--prompt', 'x', '--top-p', '2']), { instanceOf: LepError });
  t.regex(topP.message, /^Expected a number in \(0, 1\] for topP \(--top-p\) but received 2\nHINT: topP \(--top-p\): Nucleus sampling/);
  const n = await t.throwsAsync(generateCli(['/nonexistent/model', '--prompt', 'x', '--max-new-tokens', '0']), { instanceOf: LepError });
  t.regex(n.message, /Expected a positive integer for maxNewTokens \(--max-new-tokens\) but received 0/);
  const device = await t.throwsAsync(generateCli(['/nonexistent/model', '--prompt', 'x', '--device', 'tpu']), { instanceOf: LepError });
  t.regex(device.message, /Expected cpu, cuda or cuda:N for device \(--device\) but received "tpu"/);
});

test('export gguf and export checkpoint: flags, defaults and an example from the spec; wrong values refused before reading', async (t) => {
  await acceptsFlags(t, exportGgufCli, exportGgufUsage, { string: ['out', 'outtype', 'name', 'check-text'], boolean: ['force'] });
  helpShowsDefaults(t, exportGgufUsage, GGUF_SPEC);
  t.regex(exportGgufUsage, /--outtype f32\|f16\|bf16 +.*\(default f16\)/);
  t.regex(exportGgufUsage, /\nExample: lep export gguf /);
  const out = join(tempDir(), 'x.gguf');
  const type = await t.throwsAsync(exportGgufCli(['/nonexistent/model', '--out', out, '--outtype', 'q4']), { instanceOf: LepError });
  t.regex(type.message, /^Expected "f32" or "f16" or "bf16" for outType \(--outtype\) but received "q4"\nHINT: /);
  await t.throwsAsync(exportGguf('/nonexistent/model', out, { outtype: 'f16' } as never), { message: /^unknown option outtype\nHINT: the known options are outType, name, checkText, force/ });

  await acceptsFlags(t, exportCheckpointCli, exportCheckpointUsage, { string: ['out', 'dtype'], boolean: ['json'] });
  t.regex(exportCheckpointUsage, /--dtype f32\|bf16 +.*\(default the model's torch_dtype \(bf16 or f32\)\)/);
  t.regex(exportCheckpointUsage, /\nExample: lep export checkpoint /);
  // --dtype went unchecked to the writer.
  const dtype = await t.throwsAsync(exportCheckpointCli(['/nonexistent/model', '/nonexistent/ckpt', '--out', join(tempDir(), 'o'), '--dtype', 'f16']), { instanceOf: LepError });
  t.regex(dtype.message, /^Expected "f32" or "bf16" for dtype \(--dtype\) but received "f16"\nHINT: /);
  await t.throwsAsync(exportCheckpoint('/nonexistent/model', '/nonexistent/ckpt', join(tempDir(), 'o'), { dtype: 'f16' as never }), { message: /for dtype \(--dtype\) but received "f16"/ });
});

test('LepModel.load: device and dtype from LOAD_SPEC, checked before the model folder is read; lep generate and lep eval take its entries as their flags', async (t) => {
  // The defaults the hand-written load had (options.device ?? 'cpu', options.dtype ?? 'f32').
  t.deepEqual(defaultsOf(LOAD_SPEC), { device: 'cpu', dtype: 'f32' });
  t.deepEqual(Object.keys(LOAD_SPEC), ['device', 'dtype', 'overrides']);
  // The commands restate nothing: their entries are LOAD_SPEC's, and their help shows its lines.
  for (const [k, spec] of Object.entries(LOAD_FLAGS_SPEC)) t.is(EVAL_SPEC[k as keyof typeof EVAL_SPEC], spec, `lep eval ${k}`);
  for (const line of helpLines(LOAD_FLAGS_SPEC)) for (const [name, usage] of [['generate', generateUsage], ['eval', evalUsage]]) t.true(usage!.includes(line), `lep ${name}: ${line}`);
  t.regex(generateUsage, /--dtype f32\|bf16\|f16\|f64 +.*\(default f32\)/);

  // A model folder that does not exist: the options are refused first, each naming the option, its flag and a hint.
  const missing = '/nonexistent/model';
  const cases: [object, RegExp][] = [
    [{ device: 'tpu' }, /^Expected cpu, cuda or cuda:N for device \(--device\) but received "tpu"\nHINT: device \(--device\): Device the model runs on\. Defaults to cpu\./],
    [{ device: 'cuda:x' }, /^Expected cpu, cuda or cuda:N for device \(--device\) but received "cuda:x"\nHINT: /],
    [{ dtype: 'f8' }, /^Expected "f32" or "bf16" or "f16" or "f64" for dtype \(--dtype\) but received "f8"\nHINT: dtype \(--dtype\): Compute dtype.* Defaults to f32\./],
    [{ overrides: 'ckpt.safetensors' }, /for overrides but received "ckpt\.safetensors"\nHINT: overrides: safetensors files/],
    [{ dtpye: 'bf16' }, /^unknown option dtpye\nHINT: the known options are device, dtype, overrides/],
  ];
  for (const [options, message] of cases) {
    const e = await t.throwsAsync(LepModel.load(missing, options as never), { instanceOf: LepError }, JSON.stringify(options));
    t.is(e.code, 'LEP_BAD_OPTION', e.message);
    t.regex(e.message, message);
  }
  // Good values (and the job's own keys) pass the check and reach the folder, which is missing.
  const folder = await t.throwsAsync(LepModel.load(missing, { device: 'cuda:1', dtype: 'bf16', overrides: [], signal: new AbortController().signal }), { instanceOf: LepError });
  t.not(folder.code, 'LEP_BAD_OPTION', folder.message);
  t.regex(folder.message, /\/nonexistent\/model/);
});

test('tokenizer extend and shrink: flags, defaults and an example from the specs; wrong values refused before a tokenizer is read', async (t) => {
  await acceptsFlags(t, tokenizerExtendCli, tokenizerExtendUsage, { string: ['out', 'merge-order', 'max-new-tokens', 'pad-to-multiple-of', 'reserved-token', 'max-size'], boolean: ['json'] });
  helpShowsDefaults(t, tokenizerExtendUsage, EXTEND_SPEC);
  t.regex(tokenizerExtendUsage, /--merge-order keep-ascii\|new-first\|original-first .*\(default keep-ascii\)/);
  t.regex(tokenizerExtendUsage, /--pad-to-multiple-of N +.*\(default 1\)/);
  t.regex(tokenizerExtendUsage, /--reserved-token PATTERN +.*\(default <\|reserved_\{k\}\|>\)/);
  t.regex(tokenizerExtendUsage, /--max-new-tokens N +.*\(default all\)/);
  t.regex(tokenizerExtendUsage, /\nExample: lep tokenizer extend /);
  const out = join(tempDir(), 'o');
  const pad = await t.throwsAsync(tokenizerExtendCli(['/nonexistent/a', '/nonexistent/b', '--out', out, '--pad-to-multiple-of', '0']), { instanceOf: LepError });
  t.regex(pad.message, /^Expected a positive integer for padToMultipleOf \(--pad-to-multiple-of\) but received 0\nHINT: /);
  const reserved = await t.throwsAsync(tokenizerExtendCli(['/nonexistent/a', '/nonexistent/b', '--out', out, '--reserved-token', '<r>']), { instanceOf: LepError });
  t.regex(reserved.message, /Expected a string containing "\{k\}" for reservedToken \(--reserved-token\) but received "<r>"/);

  await acceptsFlags(t, tokenizerShrinkCli, tokenizerShrinkUsage, {
    string: ['corpus', ...CORPUS_FLAGS, 'out', 'keep', 'rule', 'donor', 'merge-order', 'max-new-tokens', 'pad-to-multiple-of', 'reserved-token', 'max-size'],
    boolean: ['json'],
  });
  helpShowsDefaults(t, tokenizerShrinkUsage, SHRINK_DIR_SPEC);
  t.regex(tokenizerShrinkUsage, /--rule frequency\|first-ids +.*\(default frequency\)/);
  t.regex(tokenizerShrinkUsage, /--max-lines N /);
  t.regex(tokenizerShrinkUsage, /\nExample: lep tokenizer shrink /);
  // The extend step's padding flags, as in lep tokenizer extend (--reserved-token was missing; docs said "as lep tokenizer extend").
  t.regex(tokenizerShrinkUsage, /--reserved-token PATTERN +.*\(default <\|reserved_\{k\}\|>\)/);
  const keep = await t.throwsAsync(tokenizerShrinkCli(['/nonexistent/a', '--out', out, '--keep', 'many', '--corpus', 'c.txt']), { instanceOf: LepError });
  t.regex(keep.message, /^Expected a positive integer for keep \(--keep\) but received "many"\nHINT: /);
  const lines = await t.throwsAsync(tokenizerShrinkCli(['/nonexistent/a', '--out', out, '--keep', '10', '--corpus', 'c.txt', '--max-lines=-1']), { instanceOf: LepError });
  t.regex(lines.message, /for maxItems \(--max-lines\) but received -1/);
  const order = await t.throwsAsync(tokenizerShrinkCli(['/nonexistent/a', '--out', out, '--keep', '10', '--donor', 'd', '--merge-order', 'paper', '--rule', 'first-ids']), { instanceOf: LepError });
  t.regex(order.message, /Expected "keep-ascii" or "new-first" or "original-first" for mergeOrder \(--merge-order\) but received "paper"/);
  const noDonor = await t.throwsAsync(tokenizerShrinkCli(['/nonexistent/a', '--out', out, '--keep', '10', '--rule', 'first-ids', '--max-size', '100']), { instanceOf: LepError });
  t.regex(noDonor.message, /for donor \(--donor\) but received undefined\nHINT: pass --donor DIR .*, or drop --max-size\./);
  t.false(existsSync(out));
});

test('model create: flags, defaults and an example from the spec; wrong values refused before the tokenizer is read', async (t) => {
  await acceptsFlags(t, modelCreateCli, modelCreateUsage, {
    string: ['tokenizer', 'out', 'arch', 'hidden-size', 'intermediate-size', 'layers', 'heads', 'kv-heads', 'max-positions', 'vocab-size', 'seed', 'init-std', 'embed-std', 'dtype', 'shard-bytes'],
    boolean: ['tie', 'json'],
  });
  helpShowsDefaults(t, modelCreateUsage, CREATE_MODEL_SPEC);
  t.regex(modelCreateUsage, /--hidden-size N +.*\(default 64\)/);
  t.regex(modelCreateUsage, /--kv-heads N +.*\(default heads\)/);
  t.regex(modelCreateUsage, /\nExample: lep model create /);
  const out = join(tempDir(), 'm');
  const heads = await t.throwsAsync(modelCreateCli(['--tokenizer', '/nonexistent/tok', '--out', out, '--heads', '0']), { instanceOf: LepError });
  t.regex(heads.message, /^Expected a positive integer for numAttentionHeads \(--heads\) but received 0\nHINT: /);
  const arch = await t.throwsAsync(modelCreateCli(['--tokenizer', '/nonexistent/tok', '--out', out, '--arch', 'gpt2']), { instanceOf: LepError });
  t.regex(arch.message, /Expected "llama" or "mistral" or "qwen2" for modelType \(--arch\) but received "gpt2"/);
  await t.throwsAsync(createModel(out, { tokenizerDir: '/nonexistent/tok', layers: 2 } as never), { message: /^unknown option layers\nHINT: the known options are tokenizerDir, modelType, hiddenSize/ });
  t.false(existsSync(out));
});
