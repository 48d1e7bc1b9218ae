/** A loaded model written as a Hugging Face model directory, atomically (built aside, then renamed). */
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

import { copyTokenizerFiles } from './modelDir.js';
import type { LepModel } from '../model/LepModel.js';
import { runJob, type JobOptions } from '../binding/runJob.js';
import { writeDirAtomic } from '../util/writeDirAtomic.js';

/**
 * Writes `model`'s weights (in `dtype`, default: the source's `torch_dtype`) with the tokenizer, config and
 * generation config of `sourceDir` to `outDir`. An interrupted write leaves `outDir` as it was.
 */
export async function saveModelDir(model: LepModel, sourceDir: string, outDir: string, options: JobOptions & { dtype?: 'f32' | 'bf16' } = {}): Promise<void> {
  await writeDirAtomic(outDir, '--out', async (tmp) => {
    const dtype = options.dtype ?? (model.dir.rawConfig.torch_dtype === 'bfloat16' ? 'bf16' : 'f32');
    await runJob((p) => model.native.save({ dir: tmp, dtype }, p), options);
    copyTokenizerFiles(sourceDir, tmp);
    for (const f of ['config.json', 'generation_config.json']) if (existsSync(join(sourceDir, f))) copyFileSync(join(sourceDir, f), join(tmp, f));
  });
}
