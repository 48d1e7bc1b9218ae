/**
 * The model factory: a randomly initialised LLaMA-family model of a given shape and tokenizer, written
 * in Hugging Face layout. Seeded, so the same options give the same bytes.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { optionError } from '../errors.js';
import { getNative } from '../binding/loadNative.js';
import type { NativeDtype } from '../binding/NativeTypes.js';
import { type ModelConfig, toHfConfig } from '../checkpoint/config.js';
import { copyTokenizerFiles } from '../checkpoint/modelDir.js';
import { Tokenizer } from '../tokenizer/Tokenizer.js';
import { writeJsonAtomic } from '../util/atomicWrite.js';
import { writeDirAtomic } from '../util/writeDirAtomic.js';
import { runJob, type JobOptions } from '../binding/runJob.js';

export interface CreateModelOptions extends JobOptions {
  /** Directory with tokenizer.json (+ tokenizer_config.json) to carry into the model. */
  tokenizerDir: string;
  /** Architecture: llama, mistral or qwen2 (qwen2 gets q/k/v bias). Defaults to `llama`. */
  modelType?: ModelConfig['modelType'];
  /** Defaults to `64`. */
  hiddenSize?: number;
  /** Defaults to `4 * hiddenSize`... rounded as `Math.round(8 * hiddenSize / 3 / 8) * 8`. */
  intermediateSize?: number;
  /** Defaults to `2`. */
  numHiddenLayers?: number;
  /** Defaults to `4`. */
  numAttentionHeads?: number;
  /** Grouped-query attention when below numAttentionHeads. Defaults to numAttentionHeads. */
  numKeyValueHeads?: number;
  /** Defaults to `512`. */
  maxPositionEmbeddings?: number;
  /** Defaults to `false` (true for qwen2). */
  tieWordEmbeddings?: boolean;
  /** Defaults to `10000`. */
  ropeTheta?: number;
  /** Embedding rows; must be at least the tokenizer size (more = padded vocabulary). Defaults to the tokenizer size. */
  vocabSize?: number;
  /** Random seed. Defaults to `0`. */
  seed?: number;
  /** Std of the normal init of matrices. Defaults to `0.02`. */
  initStd?: number;
  /**
   * Std of the embedding and lm_head init. Larger values give peaked next-token distributions, which
   * makes greedy decoding robust to rounding differences between implementations. Defaults to `0.02`.
   */
  embedStd?: number;
  /** Storage dtype of the weights. Defaults to `f32`. */
  dtype?: NativeDtype;
  /** Shard the checkpoint above this many bytes (0 = one file). Defaults to `0`. */
  maxShardBytes?: number;
  /** Chat template to put into tokenizer_config.json (replaces the tokenizer's own). */
  chatTemplate?: string;
}

function positiveInt(v: number, name: string, flag: string): number {
  if (!Number.isInteger(v) || v <= 0) throw optionError(name, 'a positive integer', v, flag);
  return v;
}

/** Writes a random model to `outDir` and returns its config. */
export async function createModel(outDir: string, options: CreateModelOptions): Promise<ModelConfig> {
  const tok = Tokenizer.fromDir(options.tokenizerDir);
  const modelType = options.modelType ?? 'llama';
  if (!['llama', 'mistral', 'qwen2'].includes(modelType)) throw optionError('modelType', 'llama, mistral or qwen2', modelType, '--arch');
  const hiddenSize = positiveInt(options.hiddenSize ?? 64, 'hiddenSize', '--hidden-size');
  const numAttentionHeads = positiveInt(options.numAttentionHeads ?? 4, 'numAttentionHeads', '--heads');
  const numKeyValueHeads = positiveInt(options.numKeyValueHeads ?? numAttentionHeads, 'numKeyValueHeads', '--kv-heads');
  if (hiddenSize % numAttentionHeads !== 0 || (hiddenSize / numAttentionHeads) % 2 !== 0)
    throw optionError('hiddenSize', `a multiple of 2 x numAttentionHeads (${numAttentionHeads})`, hiddenSize, '--hidden-size');
  if (numAttentionHeads % numKeyValueHeads !== 0)
    throw optionError('numKeyValueHeads', `a divisor of numAttentionHeads (${numAttentionHeads})`, numKeyValueHeads, '--kv-heads');
  const vocabSize = positiveInt(options.vocabSize ?? tok.size, 'vocabSize', '--vocab-size');
  if (vocabSize < tok.size) throw optionError('vocabSize', `at least the tokenizer size (${tok.size})`, vocabSize, '--vocab-size');
  const config: ModelConfig = {
    modelType,
    vocabSize,
    hiddenSize,
    intermediateSize: positiveInt(options.intermediateSize ?? Math.round((8 * hiddenSize) / 3 / 8) * 8, 'intermediateSize', '--intermediate-size'),
    numHiddenLayers: positiveInt(options.numHiddenLayers ?? 2, 'numHiddenLayers', '--layers'),
    numAttentionHeads,
    numKeyValueHeads,
    headDim: hiddenSize / numAttentionHeads,
    maxPositionEmbeddings: positiveInt(options.maxPositionEmbeddings ?? 512, 'maxPositionEmbeddings', '--max-positions'),
    rmsNormEps: 1e-5,
    ropeTheta: options.ropeTheta ?? 10000,
    tieWordEmbeddings: options.tieWordEmbeddings ?? modelType === 'qwen2',
    attentionBias: modelType === 'qwen2',
  };
  // Built in OUT.tmp-PID and renamed into place: a killed run never leaves weights without config.json.
  await writeDirAtomic(outDir, '--out', async (dir) => {
    const native = await runJob(
      (p) =>
        getNative().loadModel(
          {
            config,
            files: [],
            device: 'cpu',
            // Drawn in the stored dtype where the CPU computes in it: a bf16 model held in f32 and
            // converted at save took 3x its file size (48 GB at LLaMa-3-8B shapes). Same bytes either way
            // (each tensor is drawn in f32 and rounded once); f16 and f32 are held in f32.
            dtype: options.dtype === 'bf16' ? 'bf16' : 'f32',
            seed: options.seed ?? 0,
            initStd: options.initStd ?? 0.02,
            embedStd: options.embedStd ?? 0.02,
          },
          p,
        ),
      options,
    );
    try {
      await runJob((p) => native.save({ dir, dtype: options.dtype ?? 'f32', maxShardBytes: options.maxShardBytes ?? 0 }, p), options);
    } finally {
      native.dispose();
    }
    copyTokenizerFiles(options.tokenizerDir, dir);
    if (options.chatTemplate !== undefined) {
      writeJsonAtomic(join(dir, 'tokenizer_config.json'), { ...tok.config, chat_template: options.chatTemplate });
    }
    const bos = tok.specialId('bos');
    const eos = tok.specialId('eos');
    const torchDtype = { f32: 'float32', bf16: 'bfloat16', f16: 'float16', f64: 'float64' }[options.dtype ?? 'f32'];
    writeJsonAtomic(join(dir, 'config.json'), {
      ...toHfConfig(config),
      ...(bos !== undefined ? { bos_token_id: bos } : {}),
      ...(eos !== undefined ? { eos_token_id: eos } : {}),
      torch_dtype: torchDtype,
    });
    writeJsonAtomic(join(dir, 'generation_config.json'), {
      ...(bos !== undefined ? { bos_token_id: bos } : {}),
      ...(eos !== undefined ? { eos_token_id: eos } : {}),
      do_sample: false,
    });
    if (!existsSync(join(dir, 'tokenizer.json'))) throw new Error('tokenizer.json was not copied');
  });
  return config;
}
