/**
 * Parity with llama.cpp (node-llama-cpp's CPU prebuilt), an implementation nobody here wrote: models
 * exported by lep load there, tokenise to the same ids, give the same next-token log-probabilities and
 * the same greedy continuation.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import test from 'ava';
import { getLlama, LlamaLogLevel, readGgufFileInfo, type ControlledEvaluateInputItem, type Llama, type Token } from 'node-llama-cpp';

import {
  createModel,
  exportGguf,
  extendTokenizerDir,
  LepError,
  LepModel,
  mistralTokenizerDir,
  shrinkTokenizerDir,
  trainTokenizer,
  type CreateModelOptions,
} from '../../ts/index.js';
import { tokenizerMetadata } from '../../ts/checkpoint/gguf.js';
import { llamaSpmTokenize, type SpmVocab } from '../../ts/checkpoint/ggufTokenizerParity.js';
import { Tokenizer } from '../../ts/tokenizer/Tokenizer.js';
import { corpora } from '../corpora.js';
import { LEP_CLI as LEP, maxAbsDiff, tempDir, tinyModel } from '../helpers.js';

const LLAMA3_8K = join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'llama3-8k');
const TEXTS = [
  'Hello world',
  'The quick brown fox jumps over the lazy dog.',
  'Привет, как дела? Всё хорошо.',
  '12345 67.89 2024-11-24',
  'a   b\n\n  c\t d',
  'x    y     z',
  '  leading and trailing  ',
  'emoji 🦙🚀 ok',
  "don't won't I'll",
];
/** f32 export: both sides compute in f32; differences come from summation order only. */
const LOGPROB_TOLERANCE = 2e-3;

let llama: Llama;
test.before(async () => {
  llama = await getLlama({ gpu: false, build: 'never', skipDownload: true, logLevel: LlamaLogLevel.error });
});
test.after.always(async () => {
  await llama?.dispose();
});

interface Case {
  title: string;
  model: Partial<CreateModelOptions>;
  /** extra config.json fields written after creation */
  config?: Record<string, unknown>;
}

const cases: Case[] = [
  { title: 'llama (MHA, untied) with Mistral tokenizer', model: { modelType: 'llama', numKeyValueHeads: 4 } },
  { title: 'mistral (GQA) with Mistral tokenizer', model: { modelType: 'mistral', numKeyValueHeads: 2, ropeTheta: 1e6 } },
  {
    title: 'llama with llama3 rope scaling',
    model: { modelType: 'llama', numKeyValueHeads: 2 },
    config: { rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 } },
  },
  { title: 'qwen2 (q/k/v bias, tied) with byte-level LLaMa-3 tokenizer', model: { modelType: 'qwen2', numKeyValueHeads: 2, tokenizerDir: LLAMA3_8K } },
  { title: 'llama with byte-level LLaMa-3 tokenizer', model: { modelType: 'llama', numKeyValueHeads: 2, tokenizerDir: LLAMA3_8K } },
];

// Every test of this file runs on its own (test.serial), and llama.cpp contexts use one thread: llama.cpp's
// threads spin-wait at their barriers, and several contexts beside this file's other tests (and libtorch's
// OpenMP threads) on a 2-core machine starved each other past ava's 10-minute timeout in CI, on libtorch
// 1.13 and 2.6 alike.
for (const c of cases) {
  test.serial(`llama.cpp parity: ${c.title}`, async (t) => {
    const dir = await tinyModel({ ...c.model, hiddenSize: 64, numAttentionHeads: 4, seed: 21 });
    if (c.config) {
      const path = join(dir, 'config.json');
      writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, 'utf8')), ...c.config }));
    }
    const gguf = join(dir, 'model.f32.gguf');
    await exportGguf(dir, gguf, { outType: 'f32' });
    const lep = await LepModel.load(dir);
    const lm = await llama.loadModel({ modelPath: gguf, gpuLayers: 0 });
    const ctx = await lm.createContext({ contextSize: 256, threads: 1 });
    const seq = ctx.getSequence();
    const tok = lep.tokenizer!;
    try {
      // (a) tokenisation
      for (const text of TEXTS) t.deepEqual(Array.from(lm.tokenize(text, false)), await tok.encode(text), `tokens of ${JSON.stringify(text)}`);
      // (b) next-token log-probabilities after several prompts
      const bos = tok.specialId('bos');
      const prompts = await Promise.all(['The quick brown fox', 'Привет', '1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20'].map(async (p) => [...(bos === undefined ? [] : [bos]), ...(await tok.encode(p))]));
      let worst = 0;
      for (const prompt of prompts) {
        const ids = prompt as Token[];
        const input: ControlledEvaluateInputItem[] = ids.map((id, i) => (i === ids.length - 1 ? [id, { generateNext: { logits: true } }] : id));
        const out = await seq.controlledEvaluate(input);
        await seq.clearHistory();
        const logits = new Float64Array(lep.config.vocabSize);
        for (const [id, v] of out[prompt.length - 1]!.next!.logits!) logits[id] = v;
        const max = Math.max(...logits);
        const lse = max + Math.log(logits.reduce((s, v) => s + Math.exp(v - max), 0));
        const theirs = logits.map((v) => v - lse);
        const [ours] = await lep.score([prompt], { lastLogprobs: true });
        const { diff, at } = maxAbsDiff(ours!.lastLogprobs!, theirs);
        worst = Math.max(worst, diff);
        t.true(diff < LOGPROB_TOLERANCE, `max |Δ log p| ${diff} at token ${at} (lep ${ours!.lastLogprobs![at]}, llama.cpp ${theirs[at]})`);
      }
      t.log(`worst |Δ log p| = ${worst.toExponential(2)}`);
      // (c) greedy continuation of 32 tokens
      const prompt = prompts[0]!;
      const theirs: number[] = [];
      for await (const id of seq.evaluate(prompt as Token[], { temperature: 0, yieldEogToken: true })) {
        theirs.push(id);
        if (theirs.length >= 32) break;
      }
      const [ours] = await lep.generateTokens([prompt], { maxNewTokens: 32, stopTokens: [] });
      t.deepEqual(Array.from(ours!.tokens), theirs);
    } finally {
      await seq.dispose();
      await ctx.dispose();
      await lm.dispose();
      lep.dispose();
    }
  });
}

test.serial('f16 and bf16 exports load in llama.cpp and agree on the greedy continuation', async (t) => {
  const dir = await tinyModel({ modelType: 'mistral', seed: 22 });
  const lep = await LepModel.load(dir);
  const prompt = [1, ...(await lep.tokenizer!.encode('Once upon a time'))];
  const [ours] = await lep.generateTokens([prompt], { maxNewTokens: 16, stopTokens: [] });
  lep.dispose();
  for (const outType of ['f16', 'bf16'] as const) {
    const gguf = join(dir, `model.${outType}.gguf`);
    await exportGguf(dir, gguf, { outType });
    const info = await readGgufFileInfo(gguf, { readTensorInfo: true });
    const types = new Map(info.fullTensorInfo!.map((x) => [x.name, x.ggmlType]));
    t.is(types.get('blk.0.attn_norm.weight'), 0, 'norms stay f32');
    t.is(types.get('token_embd.weight'), outType === 'f16' ? 1 : 30);
    const lm = await llama.loadModel({ modelPath: gguf, gpuLayers: 0 });
    const ctx = await lm.createContext({ contextSize: 256, threads: 1 });
    const seq = ctx.getSequence();
    const theirs: number[] = [];
    for await (const id of seq.evaluate(prompt as Token[], { temperature: 0, yieldEogToken: true })) {
      theirs.push(id);
      if (theirs.length >= 16) break;
    }
    t.deepEqual(theirs, Array.from(ours!.tokens), outType);
    await ctx.dispose();
    await lm.dispose();
  }
});

test.serial('exported metadata uses the key names and value types of llama.cpp\'s own converter', async (t) => {
  const dir = await tinyModel({ modelType: 'llama', chatTemplate: '{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}' });
  const gguf = join(dir, 'model.gguf');
  await exportGguf(dir, gguf, { outType: 'f16' });
  const ours = await readGgufFileInfo(gguf, { readTensorInfo: true });
  const reference = await readGgufFileInfo(join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'gguf', 'tiny-random-llama.gguf'), { readTensorInfo: true });
  const flat = (o: Record<string, unknown>, prefix = ''): Map<string, unknown> => {
    const out = new Map<string, unknown>();
    for (const [k, v] of Object.entries(o)) {
      if (v && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v)) for (const [k2, v2] of flat(v as Record<string, unknown>, `${prefix}${k}.`)) out.set(k2, v2);
      else out.set(`${prefix}${k}`, v);
    }
    return out;
  };
  const mine = flat(ours.metadata as unknown as Record<string, unknown>);
  const theirs = flat(reference.metadata as unknown as Record<string, unknown>);
  for (const key of theirs.keys()) {
    if (key === 'general.name') continue;
    t.true(mine.has(key), `missing ${key}`);
    t.is(typeof mine.get(key), typeof theirs.get(key), `type of ${key}`);
  }
  t.is(mine.get('tokenizer.chat_template'), '{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}');
  t.is(mine.get('tokenizer.ggml.model'), 'llama');
  // same tensor names and GGUF dims (a 1-layer reference; ours has 2 layers of the same names)
  const names = new Set(ours.fullTensorInfo!.map((x) => x.name));
  for (const x of reference.fullTensorInfo!) t.true(names.has(x.name), x.name);
  // token list: same byte tokens and specials as the reference Llama-2 vocabulary (Mistral shares the layout)
  const tokens = mine.get('tokenizer.ggml.tokens') as string[];
  const refTokens = theirs.get('tokenizer.ggml.tokens') as string[];
  t.deepEqual(tokens.slice(0, 259), refTokens.slice(0, 259));
  const types = mine.get('tokenizer.ggml.token_type') as number[];
  t.deepEqual(Array.from(types.slice(0, 259)), Array.from((theirs.get('tokenizer.ggml.token_type') as number[]).slice(0, 259)));
});

// ---- Tokenizer parity on every kind of vocabulary lep writes (issue 15, item 10) ----------------------

/** Held-out lines per language: the first ones of the corpora's held-out files (no tokenizer here trained on them). */
const HELD_OUT_LINES = 200;

let texts: Promise<{ train: string; en: string[]; ru: string[] }> | undefined;
function heldOut(): Promise<{ train: string; en: string[]; ru: string[] }> {
  const lines = (f: string): string[] => readFileSync(f, 'utf8').split('\n').filter((l) => l.trim() !== '').slice(0, HELD_OUT_LINES);
  texts ??= corpora().then((files) => ({ train: files['ru.txt']!, en: lines(files['heldout/en.txt']!), ru: lines(files['heldout/ru.txt']!) }));
  return texts;
}

/** Small SentencePiece vocabularies trained by lep on the Russian training text (about a second each). */
const trained = new Map<string, Promise<string>>();
function trainedTokenizer(type: 'bpe' | 'unigram', vocabSize: number): Promise<string> {
  const key = `${type}-${vocabSize}`;
  if (!trained.has(key))
    trained.set(
      key,
      heldOut().then(async ({ train }) => {
        const dir = join(tempDir(), key);
        await trainTokenizer(train, dir, { type, vocabSize, corpus: { maxChars: 600_000 }, threads: 2 });
        return dir;
      }),
    );
  return trained.get(key)!;
}

interface VocabularyKind {
  title: string;
  tokenizerDir: () => Promise<string>;
}

const out = (name: string): string => join(tempDir(), name);
const kinds: VocabularyKind[] = [
  { title: 'SentencePiece-style: Mistral (original)', tokenizerDir: async () => mistralTokenizerDir() },
  { title: 'SentencePiece-style: BPE trained by lep', tokenizerDir: () => trainedTokenizer('bpe', 2000) },
  {
    title: 'SentencePiece-style: Extended (Mistral + trained BPE, keep-ascii, the default)',
    tokenizerDir: async () => extendTokenizerDir(mistralTokenizerDir(), await trainedTokenizer('bpe', 2000), out('ext')).outDir,
  },
  {
    title: 'SentencePiece-style: Extended (Mistral + trained BPE, new-first)',
    tokenizerDir: async () => extendTokenizerDir(mistralTokenizerDir(), await trainedTokenizer('bpe', 2000), out('ext'), { mergeOrder: 'new-first' }).outDir,
  },
  {
    title: 'SentencePiece-style: Extended (Mistral + trained BPE, original-first)',
    tokenizerDir: async () => extendTokenizerDir(mistralTokenizerDir(), await trainedTokenizer('bpe', 2000), out('ext'), { mergeOrder: 'original-first' }).outDir,
  },
  {
    title: 'SentencePiece-style: Optimized (Mistral shrunk to 8000 by frequency, then extended)',
    tokenizerDir: async () =>
      (await shrinkTokenizerDir(mistralTokenizerDir(), out('opt'), { keep: 8000, corpus: (await heldOut()).train, read: { maxChars: 300_000 }, donorDir: await trainedTokenizer('bpe', 2000) })).outDir,
  },
  { title: 'byte-level: LLaMa-3 8k (original)', tokenizerDir: async () => LLAMA3_8K },
  {
    title: 'byte-level: Extended (LLaMa-3 8k + trained BPE, keep-ascii, the default)',
    tokenizerDir: async () => extendTokenizerDir(LLAMA3_8K, await trainedTokenizer('bpe', 2000), out('ext')).outDir,
  },
  {
    title: 'byte-level: Extended (LLaMa-3 8k + trained BPE, new-first)',
    tokenizerDir: async () => extendTokenizerDir(LLAMA3_8K, await trainedTokenizer('bpe', 2000), out('ext'), { mergeOrder: 'new-first' }).outDir,
  },
  {
    title: 'byte-level: Extended (LLaMa-3 8k + trained BPE, original-first)',
    tokenizerDir: async () => extendTokenizerDir(LLAMA3_8K, await trainedTokenizer('bpe', 2000), out('ext'), { mergeOrder: 'original-first' }).outDir,
  },
  {
    title: 'byte-level: Optimized (LLaMa-3 8k shrunk to 3000 by frequency, then extended)',
    tokenizerDir: async () =>
      (await shrinkTokenizerDir(LLAMA3_8K, out('opt'), { keep: 3000, corpus: (await heldOut()).train, read: { maxChars: 300_000 }, donorDir: await trainedTokenizer('bpe', 2000) })).outDir,
  },
];

const pct = (n: number, of: number): string => `${((100 * n) / of).toFixed(1)}%`;
const same = (a: ArrayLike<number>, b: ArrayLike<number>): boolean => a.length === b.length && Array.from(a).every((x, i) => x === b[i]);

for (const kind of kinds) {
  test.serial(`llama.cpp tokenises like lep: ${kind.title}`, async (t) => {
    const { en, ru } = await heldOut();
    const tokDir = await kind.tokenizerDir();
    const dir = out('model');
    await createModel(dir, { tokenizerDir: tokDir, modelType: 'llama', hiddenSize: 32, numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 2, intermediateSize: 64, seed: 3 });
    const gguf = join(dir, 'model.gguf');
    const r = await exportGguf(dir, gguf, { outType: 'f32', force: true });
    const tok = Tokenizer.fromDir(dir);
    const { parity } = tokenizerMetadata(tok, tok.size);
    const lm = await llama.loadModel({ modelPath: gguf, vocabOnly: true });
    try {
      for (const [language, lines] of [['English', en], ['Russian', ru]] as const) {
        const ours = await tok.encodeBatch(lines);
        const theirs = lines.map((l) => Array.from(lm.tokenize(l, false)));
        const identical = lines.filter((_, i) => same(ours[i]!, theirs[i]!)).length;
        t.log(`${language}: ${pct(identical, lines.length)} of ${lines.length} held-out lines identical (exact claimed: ${r.tokenizer.exact})`);
        if (r.tokenizer.exact) {
          const first = lines.findIndex((_, i) => !same(ours[i]!, theirs[i]!));
          t.is(identical, lines.length, first < 0 ? '' : `${JSON.stringify(lines[first])}: lep ${ours[first]!.join(' ')} / llama.cpp ${theirs[first]!.join(' ')}`);
        }
        // lep's implementation of llama.cpp's SPM algorithm (what export measures with) is llama.cpp's.
        if (parity.kind === 'spm') {
          const vocab: SpmVocab = parity.vocab;
          const simulated = lines.filter((l, i) => same(llamaSpmTokenize(vocab, l), theirs[i]!)).length;
          t.is(simulated, lines.length, `${language}: the simulation matches llama.cpp on ${simulated} of ${lines.length} lines`);
        }
      }
    } finally {
      await lm.dispose();
    }
    if (!r.tokenizer.exact) {
      t.truthy(r.warning, '--force warns');
      const e = await t.throwsAsync(exportGguf(dir, join(dir, 'refused.gguf'), { outType: 'f32' }), { instanceOf: LepError });
      t.is(e?.code, 'LEP_GGUF_TOKENIZER_MISMATCH');
      t.regex(e!.message, /English \d+\.\d% of \d+ lines, Russian \d+\.\d% of \d+ lines|differently/);
      t.log(e!.message.split('\n')[0]!.slice(0, 400));
      // The CLI: refused with the code and nothing written; --force with --check-text warns with the user's lines measured.
      // Asynchronous: the other tests of this file keep running while the CLI works.
      const cli = (...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> =>
        promisify(execFile)(process.execPath, [LEP, 'export', 'gguf', dir, ...args]).then(
          ({ stdout, stderr }) => ({ status: 0, stdout, stderr }),
          (e: { code: number; stdout: string; stderr: string }) => ({ status: e.code, stdout: e.stdout, stderr: e.stderr }),
        );
      const cliGguf = join(tempDir(), 'cli.gguf');
      const refused = await cli('--out', cliGguf);
      t.is(refused.status, 1);
      t.regex(refused.stderr, /\(code LEP_GGUF_TOKENIZER_MISMATCH\)/);
      t.false(existsSync(cliGguf));
      const checkText = join(tempDir(), 'heldout-ru.txt');
      writeFileSync(checkText, ru.join('\n'));
      const forced = await cli('--out', cliGguf, '--outtype', 'f32', '--force', '--check-text', checkText);
      t.is(forced.status, 0, forced.stderr);
      t.regex(forced.stderr, new RegExp(`lep: warning: .*--check-text \\d+\\.\\d% of ${ru.length} lines.*written anyway \\(--force\\)`));
      t.regex(forced.stdout, /tokenizer: llama\.cpp tokenises differently/);
    } else t.is(r.warning, undefined);
  });
}

test.serial('a Unigram vocabulary (lep tokenizer train --type unigram) is refused: llama.cpp\'s Unigram tokenizer has no byte fallback', async (t) => {
  const dir = out('model');
  await createModel(dir, { tokenizerDir: await trainedTokenizer('unigram', 2000), modelType: 'llama', hiddenSize: 32, numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 2, intermediateSize: 64, seed: 3 });
  const e = await t.throwsAsync(exportGguf(dir, join(dir, 'model.gguf'), { force: true }), { instanceOf: LepError });
  t.is(e?.code, 'LEP_GGUF_UNSUPPORTED_TOKENIZER');
  t.regex(e!.message, /no byte fallback/);
});
