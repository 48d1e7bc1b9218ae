/** A loaded model written as a Hugging Face model directory, atomically (built aside, then renamed). */
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { copyTokenizerFiles } from './modelDir.js';
import { runJob, type JobOptions, type LepModel } from '../model/LepModel.js';

/**
 * Writes `model`'s weights (in `dtype`, default: the source's `torch_dtype`) with the tokenizer, config and
 * generation config of `sourceDir` to `outDir`. An interrupted write leaves `outDir` as it was.
 */
export async function saveModelDir(model: LepModel, sourceDir: string, outDir: string, options: JobOptions & { dtype?: 'f32' | 'bf16' } = {}): Promise<void> {
  const tmp = `${resolve(outDir)}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    const dtype = options.dtype ?? (model.dir.rawConfig.torch_dtype === 'bfloat16' ? 'bf16' : 'f32');
    await runJob((p) => model.native.save({ dir: tmp, dtype }, p), options);
    copyTokenizerFiles(sourceDir, tmp);
    for (const f of ['config.json', 'generation_config.json']) if (existsSync(join(sourceDir, f))) copyFileSync(join(sourceDir, f), join(tmp, f));
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  rmSync(outDir, { recursive: true, force: true });
  renameSync(tmp, outDir);
}
