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

import { Type } from '@sinclair/typebox';
import { parse as parseYaml } from 'yaml';

import type { CalibrateOptions } from '../calibrate/calibrate.js';
import { CALIBRATE_SPEC, checkCalibrateCombination } from '../calibrate/calibrateOptions.js';
import { LepError } from '../errors.js';
import type { InitEmbeddingsOptions } from '../init/initEmbeddings.js';
import { checkInitCombination, INIT_SPEC } from '../init/initOptions.js';
import { READ_TEXTS_SPEC } from '../corpus/readTextsOptions.js';
import { checkOptions, defaultsOf, defineOptions, inRecipe, oneOf, sectionSchema, type OptionsOf, type RecipeKeysOf, type RecipeOptionsOf } from '../options/optionSpec.js';
import type { PropagateOptions } from '../propagate/propagate.js';
import { PROPAGATE_METHODS, PROPAGATE_SPEC } from '../propagate/propagateOptions.js';
import { EXTEND_SPEC } from '../tokenizer/extendOptions.js';
import type { TrainTokenizerOptions } from '../tokenizer/train.js';
import { TOKENIZER_TRAIN_SPEC } from '../tokenizer/trainTokenizerOptions.js';
import type { TrainOptions } from '../train/trainModel.js';
import { TRAIN_SPEC } from '../train/trainOptions.js';

// Each section's keys as option specs (options/optionSpec.ts): the recipe's TS type (AdaptRecipe), the
// validation below and the JSON Schema editors read (recipes/recipe.schema.json, written by
// scripts/write-generated.ts) all derive from them. A stage's section is its own spec's recipe keys (typed
// as the stage's options, so a recipe value is what the stage takes) plus the keys only adapt has.
const text = Type.String({ minLength: 1 });
const paths = Type.Union([text, Type.Array(text, { minItems: 1 })], { title: 'a path or a list of paths' });
const posInt = Type.Integer({ minimum: 1 });
const METHODS = Type.Array(oneOf(...PROPAGATE_METHODS), { minItems: 1 });

const TOP_SPEC = inRecipe(defineOptions({
  base: { schema: text, required: true, doc: 'Base model directory (Hugging Face layout).' },
  instruct: {
    schema: Type.Union([text, Type.Array(text, { minItems: 1 })], { title: 'a non-empty string or a non-empty list of them' }),
    required: true,
    doc: 'Instruct model derived from the base, or several: each propagation method then writes OUT/propagate-<method>/<instruct folder name>/ (their folder names must differ); every method and model in one job.',
  },
}));

/** The corpus section: the training and held-out text (adapt's own keys), then the corpus reader's recipe keys. */
const CORPUS_SPEC = {
  ...inRecipe(defineOptions({
    train: { schema: paths, required: true, doc: 'Target-language training text (files, globs, directories, JSONL, gzip).' },
    eval: { schema: paths, doc: 'Held-out target-language text for the evaluation loss and bits per character.' },
  })),
  ...READ_TEXTS_SPEC,
  // In a recipe the cap applies to the training text (tokenizer training and packing), not to eval.
  maxChars: { ...READ_TEXTS_SPEC.maxChars, doc: 'Cap on training characters read (0 = all).' },
};

const TOKENIZER_KINDS = ['existing', 'train', 'extend', 'shrink'] as const;
export type TokenizerKind = (typeof TOKENIZER_KINDS)[number];

/** The tokenizer section: the kind (adapt's own keys), lep tokenizer train's recipe keys, then Extended/Optimized's. */
const TOKENIZER_OWN_SPEC = inRecipe(defineOptions({
  kind: {
    schema: oneOf(...TOKENIZER_KINDS),
    required: true,
    doc: "existing: use dir. train: a new SentencePiece tokenizer replacing the base's (BPE or Unigram). extend: train a BPE donor and extend the base's vocabulary (Extended). shrink: keep `keep` base tokens most frequent on the corpus, then extend with a trained donor (Optimized).",
  },
  dir: { schema: text, doc: 'kind existing: the tokenizer directory.' },
  keep: { schema: posInt, doc: 'kind shrink: base tokens kept (required for shrink).' },
}));
const TOKENIZER_SPEC = {
  kind: TOKENIZER_OWN_SPEC.kind,
  dir: TOKENIZER_OWN_SPEC.dir,
  ...TOKENIZER_TRAIN_SPEC,
  keep: TOKENIZER_OWN_SPEC.keep,
  ...EXTEND_SPEC,
};

/** The train section's keys that only `lep adapt` has. */
const ADAPT_TRAIN_SPEC = inRecipe(defineOptions({
  seqLen: { schema: posInt, required: true, doc: 'Tokens per training block.' },
  newRowsOnly: { schema: Type.Boolean(), default: false, doc: 'Train only the rows of new tokens (those not copied from the base).' },
  evalBlocks: { schema: posInt, default: 64, doc: 'Evaluation blocks at most.' },
}));
const TRAIN_SECTION_SPEC = { ...ADAPT_TRAIN_SPEC, ...TRAIN_SPEC };

/** The propagate and calibrate sections' own key: the methods to run. */
const PROPAGATE_OWN_SPEC = inRecipe(defineOptions({ methods: { schema: METHODS, defaultDoc: 'all three', doc: 'Propagation methods.' } }));
const CALIBRATE_OWN_SPEC = inRecipe(defineOptions({ methods: { schema: METHODS, defaultDoc: 'every propagation method', doc: 'Propagated models to calibrate.' } }));
const PROPAGATE_SECTION_SPEC = { ...PROPAGATE_OWN_SPEC, ...PROPAGATE_SPEC };
const CALIBRATE_SECTION_SPEC = { ...CALIBRATE_OWN_SPEC, ...CALIBRATE_SPEC };

/**
 * A recipe: the models, the corpus and each stage's options, typed from the specs above. A stage's keys
 * have the types of the stage's own options (`train.lora` is trainModel's LoraOptions).
 */
export type AdaptRecipe = OptionsOf<typeof TOP_SPEC> & {
  corpus: RecipeOptionsOf<typeof CORPUS_SPEC>;
  tokenizer: RecipeOptionsOf<typeof TOKENIZER_OWN_SPEC> & Pick<TrainTokenizerOptions, RecipeKeysOf<typeof TOKENIZER_TRAIN_SPEC>> & RecipeOptionsOf<typeof EXTEND_SPEC>;
  /** lep init's recipe keys. */
  init?: Pick<InitEmbeddingsOptions, RecipeKeysOf<typeof INIT_SPEC>>;
  /**
   * Continued pretraining of the resized base: lep train's recipe keys plus adapt's own. With `lora`, LoRA
   * adapters train together with the embeddings (`lep train --params lora`; modulesToSave defaults to
   * embed_tokens and lm_head here), and the propagation stage merges the body LoRA into each propagated
   * model with alpha / `propagate.alphaScale`.
   */
  train: RecipeOptionsOf<typeof ADAPT_TRAIN_SPEC> & Pick<TrainOptions, RecipeKeysOf<typeof TRAIN_SPEC>>;
  propagate?: RecipeOptionsOf<typeof PROPAGATE_OWN_SPEC> & Pick<PropagateOptions, RecipeKeysOf<typeof PROPAGATE_SPEC>>;
  /**
   * Optional LoRA calibration of propagated models (docs/method.md §5, `lep calibrate`); one output per method
   * in `methods`. Self-calibration answers are generated once (by the instruct model) and shared.
   */
  calibrate?: RecipeOptionsOf<typeof CALIBRATE_OWN_SPEC> & Pick<CalibrateOptions, RecipeKeysOf<typeof CALIBRATE_SPEC>>;
};

/** The defaults of the train section's adapt-only keys (evalBlocks, newRowsOnly). */
export const ADAPT_TRAIN_DEFAULTS = defaultsOf(ADAPT_TRAIN_SPEC);

/** Every section, in recipe order. */
export const RECIPE_SECTIONS = {
  corpus: { spec: CORPUS_SPEC, required: true, doc: 'The target-language text.' },
  tokenizer: { spec: TOKENIZER_SPEC, required: true, doc: 'Step 1: the new tokenizer.' },
  init: { spec: INIT_SPEC, required: false, doc: 'Step 2: initialisation of the new embedding rows (lep init).' },
  train: { spec: TRAIN_SECTION_SPEC, required: true, doc: 'Step 3: embedding training of the resized base (lep train).' },
  propagate: { spec: PROPAGATE_SECTION_SPEC, required: false, doc: 'Step 5: propagation to the instruct models (lep propagate).' },
  calibrate: { spec: CALIBRATE_SECTION_SPEC, required: false, doc: 'Step 6: optional LoRA calibration of the propagated models (lep calibrate).' },
} as const;

/** The JSON Schema of a recipe (what recipes/recipe.schema.json holds). */
export function recipeSchema(): Record<string, unknown> {
  const top = sectionSchema(TOP_SPEC);
  const properties: Record<string, unknown> = { ...(top.properties as object) };
  for (const [name, s] of Object.entries(RECIPE_SECTIONS)) properties[name] = sectionSchema(s.spec, { doc: s.doc });
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'lep adapt recipe',
    description: 'A `lep adapt` recipe: the models, the corpus and each stage\'s options. Generated from the option specs by scripts/write-generated.ts.',
    type: 'object',
    additionalProperties: false,
    required: ['base', 'instruct', ...Object.entries(RECIPE_SECTIONS).filter(([, s]) => s.required).map(([n]) => n)],
    properties,
  };
}

/** Validates a parsed recipe (paths left as written). */
export function validateRecipe(v: unknown): AdaptRecipe {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new LepError('LEP_BAD_RECIPE', `recipe: expected an object, got ${JSON.stringify(v)}`);
  const o = v as Record<string, unknown>;
  const known = [...Object.keys(TOP_SPEC), ...Object.keys(RECIPE_SECTIONS)];
  for (const k of Object.keys(o))
    if (!known.includes(k)) throw new LepError('LEP_BAD_RECIPE', `recipe.${k}: unknown key\nHINT: the known keys are ${known.join(', ')}`);
  checkOptions(TOP_SPEC, Object.fromEntries(Object.keys(TOP_SPEC).map((k) => [k, o[k]])), { kind: 'recipe', section: '' });
  for (const [name, s] of Object.entries(RECIPE_SECTIONS)) {
    const x = o[name];
    if (x === undefined) {
      if (s.required) throw new LepError('LEP_BAD_RECIPE', `recipe.${name} is required`);
      continue;
    }
    if (typeof x !== 'object' || x === null || Array.isArray(x)) throw new LepError('LEP_BAD_RECIPE', `recipe.${name}: expected an object, got ${JSON.stringify(x)}`);
    checkOptions(s.spec, x, { kind: 'recipe', section: name });
  }
  const r = v as AdaptRecipe;
  const t = r.tokenizer;
  if (t.kind === 'existing' && !t.dir) throw new LepError('LEP_BAD_RECIPE', 'recipe.tokenizer.dir is required for kind "existing"');
  if (t.kind === 'shrink' && !t.keep) throw new LepError('LEP_BAD_RECIPE', 'recipe.tokenizer.keep is required for kind "shrink"');
  if ((t.kind === 'extend' || t.kind === 'shrink') && t.type === 'unigram')
    throw new LepError('LEP_BAD_RECIPE', `recipe.tokenizer.type: an ${t.kind} donor must be "bpe" (its merges extend the base's)`);
  if (r.init) checkInitCombination(r.init, { kind: 'recipe', section: 'init' });
  if (r.calibrate) checkCalibrateCombination(r.calibrate, { kind: 'recipe', section: 'calibrate' });
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
