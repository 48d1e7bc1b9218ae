/**
 * Parity with llama.cpp (node-llama-cpp's CPU prebuilt), an implementation nobody here wrote: models
 * exported by lep load there, tokenise to the same ids, give the same next-token log-probabilities and
 * the same greedy continuation.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';
import { getLlama, LlamaLogLevel, readGgufFileInfo, type ControlledEvaluateInputItem, type Llama, type Token } from 'node-llama-cpp';

import { exportGguf, LepModel, type CreateModelOptions } from '../../ts/index.js';
import { maxAbsDiff, tinyModel } from '../helpers.js';

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

for (const c of cases) {
  test(`llama.cpp parity: ${c.title}`, async (t) => {
    const dir = await tinyModel({ ...c.model, hiddenSize: 64, numAttentionHeads: 4, seed: 21 });
    if (c.config) {
      const path = join(dir, 'config.json');
      writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, 'utf8')), ...c.config }));
    }
    const gguf = join(dir, 'model.f32.gguf');
    await exportGguf(dir, gguf, { outType: 'f32' });
    const lep = await LepModel.load(dir);
    const lm = await llama.loadModel({ modelPath: gguf, gpuLayers: 0 });
    const ctx = await lm.createContext({ contextSize: 256, threads: 2 });
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

test('f16 and bf16 exports load in llama.cpp and agree on the greedy continuation', async (t) => {
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
    const ctx = await lm.createContext({ contextSize: 256, threads: 2 });
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

test('exported metadata uses the key names and value types of llama.cpp\'s own converter', async (t) => {
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
