/**
 * `lep adapt` recipes: one JSON or YAML file naming the models, the corpus and each stage's options.
 * Validated before anything runs: unknown keys (typos) and wrong types are errors naming the key's path.
 * Relative paths are resolved against the recipe file's folder.
 *
 * ```yaml
 * base: ../test/fixtures/toy-family/base
 * instruct: ../test/fixtures/toy-family/instruct
 * corpus: { train: ../.cache/corpora/ru.txt, eval: ../.cache/corpora/heldout/ru.txt }
 * tokenizer: { kind: extend, vocabSize: 8000 }     # train a Russian BPE donor, extend the base's vocabulary
 * init: { rule: mean }
 * train: { seqLen: 128, steps: 300, batchSize: 16, lr: 0.002 }
 * propagate: { methods: [swap, overlap, conversion] }
 * ```
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';

import { parse as parseYaml } from 'yaml';

import type { CalibrateOptions } from '../calibrate/calibrate.js';
import type { LoraOptions } from '../lora/loraOptions.js';
import { LepError } from '../errors.js';
import { INIT_RULES, type InitRule } from '../init/buildInitPlan.js';
import type { SolveDtype } from '../init/initEmbeddings.js';

export type TokenizerKind = 'existing' | 'train' | 'extend' | 'shrink';

export interface AdaptRecipe {
  /** Base model directory (Hugging Face layout). */
  base: string;
  /**
   * Instruct model derived from the base, or several: each propagation method then writes
   * `OUT/propagate-<method>/<instruct folder name>/` (the names must differ), in one job per method.
   */
  instruct: string | string[];
  corpus: {
    /** Target-language training text (files, globs, directories, JSONL, gzip). */
    train: string | string[];
    /** Held-out target-language text for the evaluation loss and bits per character. */
    eval?: string | string[];
    /** Cap on training characters read (0 = all). Defaults to `0`. */
    maxChars?: number;
    /** Unicode normalisation of the text. Defaults to `none`. */
    normalize?: 'none' | 'NFC' | 'NFKC';
    /** Keep only lines mostly in this script (e.g. `Cyrillic`). Defaults to no filter. */
    script?: string;
  };
  tokenizer: {
    /**
     * `existing`: use `dir`. `train`: a new SentencePiece tokenizer replacing the base's (BPE or Unigram).
     * `extend`: train a BPE donor and extend the base's vocabulary (Extended). `shrink`: keep `keep` base
     * tokens most frequent on the corpus, then extend with a trained donor (Optimized).
     */
    kind: TokenizerKind;
    dir?: string;
    /** Trained tokenizer: `bpe` or `unigram` (only `bpe` for extend/shrink donors). Defaults to `bpe`. */
    type?: 'bpe' | 'unigram';
    /** Vocabulary size of the trained tokenizer or donor. Defaults to `32000`. */
    vocabSize?: number;
    /** Training sentences sampled (0 = all). Defaults to `0`. */
    inputSentenceSize?: number;
    /** Optimized: base tokens kept. Required for `shrink`. */
    keep?: number;
    /** Extended/Optimized merge order. Defaults to `new-first` (the paper's). */
    mergeOrder?: 'new-first' | 'original-first';
    /** Seed of the input sampling. Defaults to `0`. */
    seed?: number;
  };
  init?: {
    /** Defaults to `mean` (docs/method.md §2); `omp` and `focus` need `auxModel`. */
    rule?: InitRule;
    /** Rules omp/focus: a model directory whose tokenizer has the new tokens (`lep init --aux-model`). */
    auxModel?: string;
    /** Rule omp: shared tokens per new token. Defaults to `64`. */
    ompK?: number;
    /** Rules omp/focus: dtype of the solve. Defaults to `float32`. */
    solveDtype?: SolveDtype;
    /** Defaults to `mean`. */
    outputRule?: 'mean' | 'first';
    seed?: number;
    padToMultipleOf?: number;
  };
  train: {
    /** Tokens per training block. Required. */
    seqLen: number;
    /** Train only the rows of new tokens (those not copied from the base). Defaults to `false`. */
    newRowsOnly?: boolean;
    /**
     * Continued pretraining with LoRA as well (the authors' later pipeline): LoRA adapters on the resized
     * base trained together with the embeddings (`lep train --params lora`; modulesToSave defaults to
     * embed_tokens and lm_head here). The propagation stage then merges the body LoRA into each propagated
     * model with alpha / `propagate.alphaScale`. Unset fields take the `sft` preset. Defaults to none
     * (embeddings only).
     */
    lora?: LoraOptions;
    /** Evaluation blocks at most. Defaults to `64`. */
    evalBlocks?: number;
    steps?: number;
    batchSize?: number;
    gradAccum?: number;
    lr?: number;
    minLrRatio?: number;
    warmupSteps?: number;
    beta1?: number;
    beta2?: number;
    eps?: number;
    weightDecay?: number;
    clip?: number;
    seed?: number;
    evalEvery?: number;
    checkpointEvery?: number;
    activationCheckpointing?: boolean;
    device?: string;
    dtype?: 'f32' | 'bf16';
  };
  propagate?: {
    /** Defaults to all three. */
    methods?: ('swap' | 'overlap' | 'conversion')[];
    solver?: 'normal' | 'qr';
    device?: string;
    /** Keep the instruct model's rows for tokens the old vocabulary has (see PropagateOptions). Defaults to `false`. */
    keepOverlapRows?: boolean;
    /** With `train.lora`: divide the adapter's alpha by this when merging it into the propagated models. Defaults to `1`. */
    alphaScale?: number;
  };
  /**
   * Optional LoRA calibration of propagated models (docs/method.md §5, `lep calibrate`); one output per method
   * in `methods`. Self-calibration answers are generated once (by the instruct model) and shared.
   */
  calibrate?: Pick<CalibrateOptions, 'mode' | 'prompts' | 'corpora' | 'data' | 'copyText' | 'copyExamples' | 'copyLang' | 'maxGenerated' | 'maxNewTokens' | 'seqLen' | 'preset' | 'seed' | 'lora' | 'train'> & {
    /** Propagated models to calibrate. Defaults to every propagation method. */
    methods?: ('swap' | 'overlap' | 'conversion')[];
  };
}

type Check = (v: unknown, path: string) => void;
const fail = (path: string, want: string, v: unknown): never => {
  throw new LepError('LEP_BAD_RECIPE', `recipe.${path}: expected ${want}, got ${JSON.stringify(v)}`);
};
const str: Check = (v, p) => void (typeof v === 'string' && v !== '' ? 0 : fail(p, 'a non-empty string', v));
const strs: Check = (v, p) => void (typeof v === 'string' || (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string')) ? 0 : fail(p, 'a path or a list of paths', v));
const num: Check = (v, p) => void (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? 0 : fail(p, 'a non-negative number', v));
const int: Check = (v, p) => void (Number.isSafeInteger(v) && (v as number) >= 0 ? 0 : fail(p, 'a non-negative integer', v));
const pos: Check = (v, p) => void (Number.isSafeInteger(v) && (v as number) >= 1 ? 0 : fail(p, 'a positive integer', v));
const bool: Check = (v, p) => void (typeof v === 'boolean' ? 0 : fail(p, 'true or false', v));
const oneOf = (...xs: string[]): Check => (v, p) => void (xs.includes(v as string) ? 0 : fail(p, xs.map((x) => `"${x}"`).join(' or '), v));
const listOf = (c: Check): Check => (v, p) => void (Array.isArray(v) && v.length > 0 ? v.forEach((x, i) => c(x, `${p}[${i}]`)) : fail(p, 'a non-empty list', v));

/** Checks an object's keys against `fields`; `path` is '' for the recipe itself. */
function section(v: unknown, path: string, fields: Record<string, Check>, required: string[] = []): void {
  const at = (k: string) => (path ? `${path}.${k}` : k);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path || '(the recipe)', 'an object', v);
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    // Own keys only: "valueOf" or "constructor" would otherwise find Object.prototype's (found by fuzz/recipe).
    const c = Object.hasOwn(fields, k) ? fields[k] : undefined;
    if (!c) throw new LepError('LEP_BAD_RECIPE', `recipe.${at(k)}: unknown key\nHINT: the known keys${path ? ` of ${path}` : ''} are ${Object.keys(fields).join(', ')}`);
    c(x, at(k));
  }
  for (const k of required) if ((v as Record<string, unknown>)[k] === undefined) throw new LepError('LEP_BAD_RECIPE', `recipe.${at(k)} is required`);
}

const loraSection: Check = (x, q) =>
  section(x, q, {
    rank: pos, alpha: num, dropout: num, targets: listOf(oneOf('q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj')),
    layers: (y, r) => (Array.isArray(y) ? listOf(int)(y, r) : oneOf('all', 'first-last')(y, r)), modulesToSave: (y, r) => (Array.isArray(y) ? y.forEach((z, i) => oneOf('embed_tokens', 'lm_head')(z, `${r}[${i}]`)) : fail(r, 'a list', y)), seed: int,
  });

const RECIPE_FIELDS: Record<string, Check> = {
  base: str,
  instruct: (v, p) => (Array.isArray(v) ? listOf(str)(v, p) : str(v, p)),
  corpus: (v, p) => section(v, p, { train: strs, eval: strs, maxChars: int, normalize: oneOf('none', 'NFC', 'NFKC'), script: str }, ['train']),
  tokenizer: (v, p) => {
    section(v, p, { kind: oneOf('existing', 'train', 'extend', 'shrink'), dir: str, type: oneOf('bpe', 'unigram'), vocabSize: pos, inputSentenceSize: int, keep: pos, mergeOrder: oneOf('new-first', 'original-first'), seed: int }, ['kind']);
    const t = v as AdaptRecipe['tokenizer'];
    if (t.kind === 'existing' && !t.dir) throw new LepError('LEP_BAD_RECIPE', `recipe.${p}.dir is required for kind "existing"`);
    if (t.kind === 'shrink' && !t.keep) throw new LepError('LEP_BAD_RECIPE', `recipe.${p}.keep is required for kind "shrink"`);
    if ((t.kind === 'extend' || t.kind === 'shrink') && t.type === 'unigram')
      throw new LepError('LEP_BAD_RECIPE', `recipe.${p}.type: an ${t.kind} donor must be "bpe" (its merges extend the base's)`);
  },
  init: (v, p) =>
    section(v, p, { rule: oneOf(...INIT_RULES), outputRule: oneOf('mean', 'first'), seed: int, padToMultipleOf: pos, auxModel: str, ompK: pos, solveDtype: oneOf('float32', 'float64') }),
  train: (v, p) =>
    section(
      v,
      p,
      {
        seqLen: pos, newRowsOnly: bool, evalBlocks: pos, steps: pos, batchSize: pos, gradAccum: pos, lr: num, minLrRatio: num, warmupSteps: int,
        beta1: num, beta2: num, eps: num, weightDecay: num, clip: num, seed: int, evalEvery: int, checkpointEvery: int, activationCheckpointing: bool,
        device: str, dtype: oneOf('f32', 'bf16'), lora: loraSection,
      },
      ['seqLen'],
    ),
  propagate: (v, p) => section(v, p, { methods: listOf(oneOf('swap', 'overlap', 'conversion')), solver: oneOf('normal', 'qr'), device: str, keepOverlapRows: bool, alphaScale: (x, q) => (typeof x === 'number' && x > 0 ? 0 : fail(q, 'a positive number', x)) }),
  calibrate: (v, p) => {
    section(
      v,
      p,
      {
        methods: listOf(oneOf('swap', 'overlap', 'conversion')), mode: oneOf('self', 'data'),
        prompts: (x, q) => (typeof x === 'number' ? pos(x, q) : str(x, q)), corpora: str, data: str, copyText: str, copyExamples: int,
        copyLang: oneOf('en', 'ru'), maxGenerated: pos, maxNewTokens: pos, seqLen: pos, preset: oneOf('self', 'sft'), seed: int,
        lora: loraSection,
        train: (x, q) => section(x, q, { steps: pos, batchSize: pos, lr: num, weightDecay: num, warmupSteps: int, minLrRatio: num, clip: num, seed: int, device: str, dtype: oneOf('f32', 'bf16') }),
      },
      ['mode'],
    );
    const c = v as NonNullable<AdaptRecipe['calibrate']>;
    if (c.mode === 'data' && !c.data) throw new LepError('LEP_BAD_RECIPE', `recipe.${p}.data is required for mode "data"`);
    if ((c.copyExamples ?? 0) > 0 && !c.copyText) throw new LepError('LEP_BAD_RECIPE', `recipe.${p}.copyText is required with copyExamples`);
  },
};

/** Validates a parsed recipe (paths left as written). */
export function validateRecipe(v: unknown): AdaptRecipe {
  section(v, '', RECIPE_FIELDS, ['base', 'instruct', 'corpus', 'tokenizer', 'train']);
  const r = v as AdaptRecipe;
  if (r.train.lora && r.train.newRowsOnly) throw new LepError('LEP_BAD_RECIPE', 'recipe.train: newRowsOnly trains embedding rows only and cannot be combined with lora');
  if (r.propagate?.alphaScale !== undefined && !r.train.lora) throw new LepError('LEP_BAD_RECIPE', 'recipe.propagate.alphaScale needs train.lora (a LoRA to merge)');
  return r;
}

/** Reads a recipe file (`.json`, `.yaml`/`.yml`), validates it and resolves its paths against its folder. */
export function readRecipe(file: string): AdaptRecipe {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new LepError('LEP_BAD_RECIPE', `cannot read the recipe ${file}: ${(e as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = /\.ya?ml$/i.test(file) ? parseYaml(text) : JSON.parse(text);
  } catch (e) {
    throw new LepError('LEP_BAD_RECIPE', `${file} is not valid ${/\.ya?ml$/i.test(file) ? 'YAML' : 'JSON'}: ${(e as Error).message}`);
  }
  try {
    return resolveRecipePaths(validateRecipe(parsed), dirname(resolve(file)));
  } catch (e) {
    if (e instanceof LepError) throw new LepError(e.code, `${file}: ${e.message}`);
    throw e;
  }
}

/** Makes the recipe's relative paths absolute against `dir`. */
export function resolveRecipePaths(r: AdaptRecipe, dir: string): AdaptRecipe {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(dir, p));
  const all = (p: string | string[]) => (Array.isArray(p) ? p.map(abs) : abs(p));
  return {
    ...r,
    base: abs(r.base),
    instruct: all(r.instruct),
    corpus: { ...r.corpus, train: all(r.corpus.train), ...(r.corpus.eval ? { eval: all(r.corpus.eval) } : {}) },
    tokenizer: { ...r.tokenizer, ...(r.tokenizer.dir ? { dir: abs(r.tokenizer.dir) } : {}) },
    ...(r.init?.auxModel ? { init: { ...r.init, auxModel: abs(r.init.auxModel) } } : {}),
    ...(r.calibrate
      ? {
          calibrate: {
            ...r.calibrate,
            ...(typeof r.calibrate.prompts === 'string' ? { prompts: abs(r.calibrate.prompts) } : {}),
            ...(r.calibrate.corpora ? { corpora: abs(r.calibrate.corpora) } : {}),
            ...(r.calibrate.data ? { data: abs(r.calibrate.data) } : {}),
            ...(r.calibrate.copyText ? { copyText: abs(r.calibrate.copyText) } : {}),
          },
        }
      : {}),
  };
}
