/**
 * The options of `lep train` / `trainModel`, written once (see options/optionSpec.ts): the TS type, the
 * validation, the CLI flags and help, the recipe's `train` section and the resolved record
 * (train-config.json) derive from this table.
 */
import { type TSchema, Type } from '@sinclair/typebox';

import { readJsonFlag } from '../util/readJsonFile.js';
import { defineOptions, oneOf, SEED_SCHEMA } from '../options/optionSpec.js';
import { LORA_MODULES_TO_SAVE, LORA_PROJECTIONS } from '../lora/loraOptions.js';
import { DEFAULT_DIST_TIMEOUT_S, DEFAULT_GRAD_SYNC, GRAD_SYNC_MODES } from './distributedEnv.js';

const posInt = Type.Integer({ minimum: 1 });
const natInt = Type.Integer({ minimum: 0 });
const path = Type.String({ minLength: 1 });
/** The one device syntax (util/device.ts checks the same). */
export const DEVICE_SCHEMA = Type.String({ pattern: '^(cpu|cuda(:[0-9]+)?)$', title: 'cpu, cuda or cuda:N' });

/** LoRA settings as a recipe or a --config file gives them; every field optional: unset ones come from a preset (lora/loraOptions.ts). */
export const LORA_SCHEMA: TSchema = Type.Object(
  {
    rank: Type.Optional(Type.Integer({ minimum: 1, description: 'Adapter rank r.' })),
    alpha: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'Scale numerator: the update is (alpha / r)·B·A.' })),
    dropout: Type.Optional(Type.Number({ minimum: 0, exclusiveMaximum: 1, description: "Dropout on the adapters' input (training only)." })),
    targets: Type.Optional(Type.Array(oneOf(...LORA_PROJECTIONS), { minItems: 1, description: 'Adapted projections.' })),
    layers: Type.Optional(Type.Union([oneOf('all', 'first-last'), Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1 })], { description: 'Decoder layers with adapters: all, first-last, or layer numbers.' })),
    modulesToSave: Type.Optional(Type.Array(oneOf(...LORA_MODULES_TO_SAVE), { description: 'Modules trained in full next to the adapters.' })),
    seed: Type.Optional(Type.Integer({ ...SEED_SCHEMA, description: "Seed of the adapters' initialisation." })),
  },
  { additionalProperties: false },
);

export const TRAIN_SPEC = defineOptions({
  data: { schema: path, required: true, arg: 'FILE', doc: 'Packed training blocks (lep data pack).' },
  evalData: { schema: path, arg: 'FILE', doc: 'Packed held-out blocks for the evaluation loss (none when unset).' },
  params: { schema: oneOf('all', 'embeddings', 'lora'), default: 'all', doc: 'What trains: all parameters, the input/output embeddings, or LoRA adapters.' },
  rows: {
    // At least one id: an empty set would mean every row to the native trainer.
    schema: Type.Union([Type.Literal('new'), Type.Array(natInt, { minItems: 1 })]),
    arg: 'new|FILE',
    doc: "Embeddings mode: only these token rows train: new (the rows lep init made, from the model's init_provenance.json) or a JSON array of ids in FILE (./new for a file of that name); all rows when unset. The head gradient and the optimizer state cover those rows only, which is what lets an 8B model's Extended vocabulary train in 24 GiB.",
    // 'new' is a word, not a file: a file of that name is reached as ./new.
    parse: (value: string, flag: string) => (value === 'new' ? 'new' : readJsonFlag(value, flag, 'a JSON array of token ids')),
  },
  steps: { schema: posInt, default: 100, recipe: true, doc: 'Optimizer steps.' },
  batchSize: { schema: posInt, default: 8, recipe: true, doc: 'Sequences per micro-batch (per rank when data-parallel).' },
  gradAccum: { schema: posInt, default: 1, recipe: true, doc: 'Micro-batches per optimizer step.' },
  lr: { schema: Type.Number({ exclusiveMinimum: 0 }), default: 1e-4, recipe: true, doc: 'Peak learning rate (the method\'s Mistral value).' },
  embeddingLr: {
    schema: Type.Number({ exclusiveMinimum: 0 }),
    recipe: true,
    defaultDoc: 'lr',
    doc: 'Peak learning rate of the input embeddings and LM head when other parameters train too (params all, or lora with modulesToSave), on the same schedule: lower keeps them near the start, as an instruct stage does.',
  },
  minLrRatio: { schema: Type.Number({ minimum: 0, maximum: 1 }), default: 0, recipe: true, doc: 'Cosine floor as a fraction of lr.' },
  warmupSteps: { schema: natInt, recipe: true, defaultDoc: '100, at most a tenth of the steps', doc: 'Linear warm-up steps.' },
  beta1: { schema: Type.Number({ minimum: 0, exclusiveMaximum: 1 }), default: 0.9, recipe: true, doc: 'AdamW beta1.' },
  beta2: { schema: Type.Number({ minimum: 0, exclusiveMaximum: 1 }), default: 0.95, recipe: true, doc: 'AdamW beta2.' },
  eps: { schema: Type.Number({ exclusiveMinimum: 0 }), default: 1e-5, recipe: true, doc: 'AdamW epsilon.' },
  weightDecay: { schema: Type.Number({ minimum: 0 }), default: 0.1, recipe: true, doc: 'AdamW decoupled weight decay.' },
  clip: { schema: Type.Number({ minimum: 0 }), default: 1.0, recipe: true, doc: 'Gradient-norm clip (0 = off).' },
  seed: { schema: SEED_SCHEMA, default: 0, recipe: true, doc: 'Data-order seed.' },
  evalEvery: { schema: natInt, default: 0, recipe: true, doc: 'Evaluation loss every N steps (0: at the start and the end only).' },
  evalBatches: { schema: natInt, default: 0, doc: 'Evaluate on at most N batches (0 = all).' },
  checkpointEvery: {
    schema: natInt,
    recipe: true,
    defaultDoc: 'a tenth of the steps',
    doc: 'Checkpoint every N steps (0: only when stopped and at the end); a stopped run always checkpoints where it stops.',
  },
  keepCheckpoints: { schema: natInt, default: 2, recipe: true, doc: 'Checkpoints kept (0 = all); a new one is written before the oldest goes, so N + 1 exist for a moment.' },
  resume: { schema: Type.Boolean(), default: true, flag: 'no-resume', doc: 'Resume from the newest checkpoint in --out; --no-resume starts afresh and removes the old checkpoints.' },
  device: { schema: DEVICE_SCHEMA, arg: 'cpu|cuda[:N]', recipe: true, default: 'cpu', doc: 'Device to train on.' },
  dtype: {
    schema: oneOf('f32', 'bf16'),
    recipe: true,
    default: 'f32',
    doc: 'Compute dtype. bf16 is mixed precision: bf16 weights and matmuls, f32 master weights, softmax and sums (on CPUs with AMX or AVX-512 BF16 its matmuls run several times faster than f32).',
  },
  reportEvery: { schema: posInt, default: 1, doc: 'Progress line (and train.log line) every N steps.' },
  activationCheckpointing: {
    schema: Type.Boolean(),
    default: false,
    recipe: true,
    doc: 'Recompute each decoder layer in backward: activation memory of one layer instead of all, for about a third more compute.',
  },
  patchDir: { schema: path, flag: 'patch', arg: 'DIR', doc: 'Embeddings mode: also write an embedding patch (the trained embeddings + tokenizer) to DIR.' },
  lora: { schema: LORA_SCHEMA, flag: false, recipe: true, doc: 'LoRA settings (params lora); unset fields take the sft preset (in a recipe, modulesToSave defaults to embed_tokens and lm_head: the new embeddings train too). Writes OUT/adapter (PEFT) and the merged model.' },
  distTimeout: { schema: Type.Number({ exclusiveMinimum: 0 }), default: DEFAULT_DIST_TIMEOUT_S, arg: 'S', doc: 'Data-parallel: seconds a rank waits for the others before failing.' },
  gradSync: {
    schema: oneOf(...GRAD_SYNC_MODES),
    default: DEFAULT_GRAD_SYNC,
    doc: 'Data-parallel: all-reduce whole embedding gradients (dense) or only the rows some batch used (touched-rows).',
  },
  gradBucketMb: { schema: Type.Number({ exclusiveMinimum: 0 }), default: 25, doc: 'Data-parallel: dense gradients are all-reduced in buckets of about this many MiB, overlapping backward.' },
});
