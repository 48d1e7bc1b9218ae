/** `lep/model`: LepModel (load, generate, score), model creation, and the options and progress events of native jobs. Re-exports only. */
export { LepModel, type LoadModelOptions, type GenerateOptions, type ScoreOptions, type ScoreResult, type GenerateResult, type Dtype } from './LepModel.js';
export { createModel, type CreateModelOptions } from './createModel.js';
export type { JobOptions } from '../binding/runJob.js';
export type * from '../binding/progress.js';
