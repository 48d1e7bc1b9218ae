/**
 * The model factory: a randomly initialised LLaMA-family model of a given shape and tokenizer, written
 * in Hugging Face layout. Seeded, so the same options give the same bytes.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { LepError, optionError } from '../errors.js';
import { getNative } from '../binding/loadNative.js';
import { parameterCounts, type ModelConfig, toHfConfig } from '../checkpoint/config.js';
import { copyTokenizerFiles } from '../checkpoint/modelDir.js';
import { gib, memoryClause, processMemory, spareBytes } from '../processMemory.js';
import { Tokenizer } from '../tokenizer/Tokenizer.js';
import { writeJsonAtomic } from '../util/atomicWrite.js';
import { writeDirAtomic } from '../util/writeDirAtomic.js';
import { runJob, type JobOptions } from '../binding/runJob.js';
import { checkOptions, withDefaults, type OptionsOf } from '../options/optionSpec.js';
import { CREATE_MODEL_SPEC } from './createModelOptions.js';
import { checkOutputPath } from '../util/checkOutputPath.js';

/** The model's shape and init: CREATE_MODEL_SPEC (createModelOptions.ts) gives each option's type, bounds, default and doc. */
export type CreateModelOptions = OptionsOf<typeof CREATE_MODEL_SPEC> & JobOptions;

/** The keys of CreateModelOptions that are not options of the spec. */
const CREATE_NON_SPEC_KEYS = ['signal', 'onProgress'];

/** Writes a random model to `outDir` and returns its config. */
export async function createModel(outDir: string, options: CreateModelOptions): Promise<ModelConfig> {
  checkOptions(CREATE_MODEL_SPEC, options, { kind: 'options' }, CREATE_NON_SPEC_KEYS);
  const o = withDefaults(CREATE_MODEL_SPEC, options);
  checkOutputPath(outDir, '--out', { '--tokenizer': options.tokenizerDir });
  const tok = Tokenizer.fromDir(options.tokenizerDir);
  const { modelType, hiddenSize, numAttentionHeads } = o;
  const numKeyValueHeads = o.numKeyValueHeads ?? numAttentionHeads;
  if (hiddenSize % numAttentionHeads !== 0 || (hiddenSize / numAttentionHeads) % 2 !== 0)
    throw optionError('hiddenSize', `a multiple of 2 x numAttentionHeads (${numAttentionHeads})`, hiddenSize, '--hidden-size');
  if (numAttentionHeads % numKeyValueHeads !== 0)
    throw optionError('numKeyValueHeads', `a divisor of numAttentionHeads (${numAttentionHeads})`, numKeyValueHeads, '--kv-heads');
  const vocabSize = o.vocabSize ?? tok.size;
  if (vocabSize < tok.size) throw optionError('vocabSize', `at least the tokenizer size (${tok.size})`, vocabSize, '--vocab-size');
  const config: ModelConfig = {
    modelType,
    vocabSize,
    hiddenSize,
    intermediateSize: o.intermediateSize ?? Math.round((8 * hiddenSize) / 3 / 8) * 8,
    numHiddenLayers: o.numHiddenLayers,
    numAttentionHeads,
    numKeyValueHeads,
    headDim: hiddenSize / numAttentionHeads,
    maxPositionEmbeddings: o.maxPositionEmbeddings,
    rmsNormEps: 1e-5,
    ropeTheta: o.ropeTheta,
    tieWordEmbeddings: o.tieWordEmbeddings ?? modelType === 'qwen2',
    attentionBias: modelType === 'qwen2',
  };
  checkCreateMemory(config, o.dtype);
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
            dtype: o.dtype === 'bf16' ? 'bf16' : 'f32',
            seed: o.seed,
            initStd: o.initStd,
            embedStd: o.embedStd,
          },
          p,
        ),
      options,
    );
    try {
      await runJob((p) => native.save({ dir, dtype: o.dtype, maxShardBytes: o.maxShardBytes }, p), options);
    } finally {
      native.dispose();
    }
    copyTokenizerFiles(options.tokenizerDir, dir);
    if (options.chatTemplate !== undefined) {
      writeJsonAtomic(join(dir, 'tokenizer_config.json'), { ...tok.config, chat_template: options.chatTemplate });
    }
    const bos = tok.specialId('bos');
    const eos = tok.specialId('eos');
    const torchDtype = { f32: 'float32', bf16: 'bfloat16', f16: 'float16', f64: 'float64' }[o.dtype];
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

/**
 * Refuses a model the process cannot hold while drawing it: its weights (bf16, else f32: f16 is held in
 * f32 and converted at save) and the largest tensor, the embeddings, drawn in f32. Above RAM + swap, or
 * a lower cgroup limit, the run would be killed by the kernel without a word after minutes of drawing.
 */
function checkCreateMemory(c: ModelConfig, dtype: string): void {
  const held = dtype === 'bf16' ? 2 : 4;
  const params = parameterCounts(c).all;
  const need = params * held + c.vocabSize * c.hiddenSize * 4;
  const memory = processMemory();
  if (need <= spareBytes(memory)) return;
  throw new LepError(
    'LEP_OUT_OF_MEMORY',
    `creating a random model of ${(params / 1e9).toFixed(2)} B parameters in ${dtype} needs at least ${gib(need)} (its weights held in ${held === 2 ? 'bf16' : 'f32'} and its embeddings drawn in f32); ${memoryClause(memory)}` +
      `\nHINT: ${held === 4 ? '--dtype bf16 halves the weights; ' : ''}fewer --layers or a smaller --hidden-size, or a machine (or limit) with more memory.`,
  );
}
