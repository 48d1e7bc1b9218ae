/** A loaded model written as a Hugging Face model directory, atomically (built aside, then renamed). */
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

import { copyTokenizerFiles, storedDtype } from './modelDir.js';
import type { LepModel } from '../model/LepModel.js';
import { runJob, type JobOptions } from '../binding/runJob.js';
import { writeJsonAtomic } from '../util/atomicWrite.js';
import { writeDirAtomic } from '../util/writeDirAtomic.js';

const TORCH_DTYPE = { f32: 'float32', bf16: 'bfloat16' } as const;

/**
 * Writes `model`'s weights in `dtype` into the existing directory `dir`, with `sourceDir`'s tokenizer
 * files, generation config and config.json, the last with the dtype the weights were written in (a
 * bf16 model written in f32 said "bfloat16" before, and loaders that honour torch_dtype read it so).
 */
export async function writeModelFiles(model: LepModel, sourceDir: string, dir: string, dtype: 'f32' | 'bf16', options: JobOptions = {}): Promise<void> {
  await runJob((p) => model.native.save({ dir, dtype }, p), options);
  copyTokenizerFiles(sourceDir, dir);
  const gen = join(sourceDir, 'generation_config.json');
  if (existsSync(gen)) copyFileSync(gen, join(dir, 'generation_config.json'));
  writeJsonAtomic(join(dir, 'config.json'), configWithDtype(model.dir.rawConfig, dtype));
}

/** config.json saying the weights are stored in `dtype`: torch_dtype, and `dtype` where present (transformers >= 4.56 writes it). */
export function configWithDtype(rawConfig: Record<string, unknown>, dtype: 'f32' | 'bf16'): Record<string, unknown> {
  return { ...rawConfig, torch_dtype: TORCH_DTYPE[dtype], ...('dtype' in rawConfig ? { dtype: TORCH_DTYPE[dtype] } : {}) };
}

/**
 * Writes `model`'s weights (in `dtype`, default: the source's, see storedDtype) with the tokenizer, config
 * and generation config of `sourceDir` to `outDir`. An interrupted write leaves `outDir` as it was.
 */
export async function saveModelDir(model: LepModel, sourceDir: string, outDir: string, options: JobOptions & { dtype?: 'f32' | 'bf16' } = {}): Promise<void> {
  const { dtype, ...job } = options;
  await writeDirAtomic(outDir, '--out', (tmp) => writeModelFiles(model, sourceDir, tmp, dtype ?? storedDtype(model.dir.rawConfig), job));
}
