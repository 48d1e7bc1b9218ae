/**
 * `lep export checkpoint`: any training checkpoint (OUT/checkpoints/step-N) as a full model directory —
 * the model the run started from with the checkpoint's trained tensors in place — so a run's
 * checkpoints can be chosen from after the fact (e.g. the one with the best evaluation loss).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { LepError } from '../errors.js';
import { saveModelDir } from '../checkpoint/saveModelDir.js';
import { LepModel } from '../model/LepModel.js';
import type { JobOptions } from '../binding/runJob.js';
import { checkOptions, type OptionsOf } from '../options/optionSpec.js';
import { EXPORT_CHECKPOINT_SPEC } from './exportCheckpointOptions.js';
import { checkOutputPath } from '../util/checkOutputPath.js';

/** The export options: EXPORT_CHECKPOINT_SPEC (exportCheckpointOptions.ts) gives each one's type, default and doc. */
export type ExportCheckpointOptions = OptionsOf<typeof EXPORT_CHECKPOINT_SPEC> & JobOptions;

/** Writes `outDir` (atomically: built aside, then renamed) and returns the checkpoint's step. */
export async function exportCheckpoint(modelDir: string, checkpointDir: string, outDir: string, options: ExportCheckpointOptions = {}): Promise<{ step: number }> {
  checkOptions(EXPORT_CHECKPOINT_SPEC, options, { kind: 'options' }, ['signal', 'onProgress']);
  checkOutputPath(outDir, '--out', { MODEL_DIR: modelDir, CHECKPOINT_DIR: checkpointDir });
  const weights = join(checkpointDir, 'trainable.safetensors');
  const state = join(checkpointDir, 'state.json');
  if (!existsSync(weights) || !existsSync(state))
    throw new LepError('LEP_BAD_CHECKPOINT', `${checkpointDir} is not a complete training checkpoint (needs trainable.safetensors and state.json)\nHINT: pass a step-N directory from a run's checkpoints/ folder.`);
  const { step, params } = JSON.parse(readFileSync(state, 'utf8')) as { step: number; params?: string };
  if (params === 'lora')
    throw new LepError('LEP_BAD_CHECKPOINT', `${checkpointDir} is a LoRA training checkpoint; exporting those is not supported\nHINT: the run's final adapter is in OUT/adapter (lep lora merge MODEL OUT/adapter --out M); resume the run to finish it.`);
  const model = await LepModel.load(modelDir, { overrides: [weights], signal: options.signal });
  try {
    await saveModelDir(model, modelDir, outDir, options);
  } finally {
    model.dispose();
  }
  return { step };
}
