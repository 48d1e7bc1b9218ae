/**
 * The options of `lep calibrate` / `calibrate`, written once (see options/optionSpec.ts): the TS type, the
 * validation, the CLI flags and help, the recipe's `calibrate` keys and their JSON Schema derive from this
 * table. `checkCalibrateCombination` checks what one value cannot say alone (mode data needs data, copy
 * examples need copy text), for the API, the CLI and recipes alike.
 */
import { Type } from '@sinclair/typebox';

import { DEFAULT_CORPUS_CACHE_DIR } from '../corpus/fetchDebian.js';
import { combinationError, defineOptions, nameIn, oneOf, pickSchema, SEED_SCHEMA, type OptionSpec, type Source } from '../options/optionSpec.js';
import { LORA_SCHEMA, TRAIN_SPEC } from '../train/trainOptions.js';
import { DEFAULT_CALIBRATION_SEED } from './buildCalibrationSet.js';

const posInt = Type.Integer({ minimum: 1 });
const path = Type.String({ minLength: 1 });

/** lep train's options that a calibration may set over its preset's (the rest are calibration's own: data, params, lora). */
export const CALIBRATE_TRAIN_KEYS = [
  'steps', 'batchSize', 'gradAccum', 'lr', 'minLrRatio', 'warmupSteps', 'beta1', 'beta2', 'eps', 'weightDecay', 'clip', 'seed',
  'checkpointEvery', 'keepCheckpoints', 'reportEvery', 'activationCheckpointing', 'device', 'dtype',
] as const satisfies readonly (keyof typeof TRAIN_SPEC)[];

/**
 * The flags of lep calibrate that set `train` options, with calibration's defaults in their help (lep
 * train's own defaults do not apply: the steps default to one epoch, lr and weight decay to the preset's).
 * The recipe's `calibrate.train` keys say the same (they said lep train's defaults, and an editor that
 * fills in a schema's defaults would have replaced the preset's lr with lep train's).
 */
export const CALIBRATE_TRAIN_FLAGS: Readonly<Record<string, OptionSpec>> = {
  steps: { ...TRAIN_SPEC.steps, default: undefined, defaultDoc: 'one epoch of the data' },
  batchSize: TRAIN_SPEC.batchSize,
  lr: { ...TRAIN_SPEC.lr, default: undefined, defaultDoc: "the preset's", doc: 'Peak learning rate.' },
  weightDecay: { ...TRAIN_SPEC.weightDecay, default: undefined, defaultDoc: "the preset's" },
  warmupSteps: { ...TRAIN_SPEC.warmupSteps, defaultDoc: "the preset's 10, at most a tenth of the steps" },
  // Mode self's answers are generated where the training runs (an 8B instruct model answering 400
  // prompts belongs on the GPU as much as its calibration does).
  device: { ...TRAIN_SPEC.device, doc: "Device of the original model's answers (mode self) and of the training." },
  dtype: { ...TRAIN_SPEC.dtype, doc: "Dtype of the original model's answers (mode self) and of the training (as lep train's --dtype)." },
};

export const CALIBRATE_SPEC = defineOptions({
  mode: {
    schema: oneOf('self', 'data'),
    required: true,
    recipe: true,
    // The command line says it with --self or --data FILE.
    flag: false,
    doc: "self: the original instruct model's answers to prompts (--self); data: the chat dataset `data` (--data FILE).",
  },
  original: { schema: path, arg: 'DIR', doc: 'Mode self: the original instruct model (the one the propagated model was made from); it answers the prompts.' },
  prompts: {
    schema: Type.Union([posInt, path], { title: 'a positive integer or a non-empty string' }),
    default: 400,
    recipe: true,
    arg: 'FILE|N',
    doc: "Mode self: a chat JSONL of prompts (each line's messages end with a user turn), or a count of built-in prompts.",
    parse: (text: string) => (/^\d+$/.test(text) ? Number(text) : text),
  },
  corpora: { schema: path, default: DEFAULT_CORPUS_CACHE_DIR, recipe: true, arg: 'DIR', doc: 'Mode self, built-in prompts: the Debian corpora folder they come from.' },
  data: { schema: path, recipe: true, arg: 'FILE.jsonl', doc: 'Mode data: the chat dataset ({"messages": [...]} per line).' },
  copyText: { schema: path, recipe: true, arg: 'FILE', doc: 'Target-language text (one text per line) for "copy this text" examples.' },
  copyExamples: { schema: Type.Integer({ minimum: 0 }), default: 0, recipe: true, doc: 'Copy examples mixed in (needs copyText).' },
  copyLang: { schema: oneOf('en', 'ru'), default: 'ru', recipe: true, doc: 'Language of the copy instructions.' },
  maxGenerated: { schema: posInt, recipe: true, defaultDoc: 'all', doc: 'Generated (or dataset) examples used at most.' },
  maxNewTokens: { schema: posInt, default: 128, recipe: true, doc: 'Mode self: new tokens per answer at most.' },
  seqLen: { schema: posInt, default: 512, recipe: true, doc: "Block length of the training data (at most the model's max_position_embeddings)." },
  preset: {
    schema: oneOf('self', 'sft'),
    recipe: true,
    defaultDoc: 'self for mode self, sft for mode data',
    doc: 'LoRA and optimiser preset (self: rank 8, alpha 1, first+last layers, embed_tokens+lm_head, lr 2.5e-5, wd 0.1; sft: rank 32, alpha 16, all layers, lm_head, lr 5e-5, wd 0.05, 10 warm-up steps, at most a tenth of the steps).',
  },
  seed: { schema: SEED_SCHEMA, default: DEFAULT_CALIBRATION_SEED, recipe: true, doc: 'Seed of the prompt choice, the copy choice and the mixing.' },
  lora: { schema: LORA_SCHEMA, flag: false, recipe: true, doc: "LoRA settings over the preset's." },
  train: {
    schema: pickSchema({ ...TRAIN_SPEC, ...CALIBRATE_TRAIN_FLAGS }, CALIBRATE_TRAIN_KEYS),
    flag: false,
    recipe: true,
    doc: "lep train's options over the preset's (steps default: one epoch of the data).",
  },
  workDir: { schema: path, flag: 'work', arg: 'DIR', defaultDoc: 'OUT/calibration-data', doc: 'Where the answers and the calibration set go (share it to calibrate several models from one set of answers).' },
});

/** The options of the spec that `checkCalibrateCombination` reads. */
interface Combination {
  mode?: 'self' | 'data';
  original?: string;
  data?: string;
  copyText?: string;
  copyExamples?: number;
}

/** Mode self needs the original model (not a recipe key: adapt gives it), mode data a dataset, copy examples a text. */
export function checkCalibrateCombination(o: Combination, source: Source): void {
  const name = (k: keyof Combination): string => nameIn(source, k, CALIBRATE_SPEC[k]);
  if (source.kind === 'options' && o.mode === 'self' && o.original === undefined)
    throw combinationError(source, `${name('original')} is required for mode "self"`, 'self-calibration trains on the answers of the original instruct model: pass its directory.');
  if (o.mode === 'data' && o.data === undefined)
    throw combinationError(source, `${name('data')} is required for mode "data"`, 'calibration on a dataset needs the chat dataset ({"messages": [...]} per line).');
  if ((o.copyExamples ?? 0) > 0 && o.copyText === undefined)
    throw combinationError(source, `${name('copyText')} is required with copyExamples`, 'copy examples are made from a target-language text file, one text per line.');
}
