/**
 * lep's public root (`import … from 'lep'`): the stages of the method, LepModel, Tokenizer, errors, the
 * runtime, and the options and results of each. Re-exports only; it stays under 100 names, types
 * included (test/unit/public-exports.test.ts counts them). Everything else of an area is in its subpath
 * (`lep/tokenizer`, `lep/eval`, …; docs/api.md lists them), which also re-exports the area's stages.
 */
export { LepError, ERROR_CODES, type ErrorCode } from './errors.js';
export { lepInfo, lepVersion, setThreads, type LepInfo, type TrainingDtypeHint } from './runtime.js';
export { forkWhenIdle } from './binding/forkWhenIdle.js';
export type { JobOptions } from './binding/runJob.js';
export type { JobProgress } from './binding/progress.js';

// The model and its tokenizer.
export { LepModel, type LoadModelOptions, type GenerateOptions, type ScoreOptions, type ScoreResult, type GenerateResult, type Dtype } from './model/LepModel.js';
export { createModel, type CreateModelOptions } from './model/createModel.js';
export { Tokenizer, type ChatMessage } from './tokenizer/Tokenizer.js';
export { mistralTokenizerDir } from './data/builtinTokenizers.js';

// Corpora.
export { fetchCorpora, type FetchCorporaOptions, type FetchCorporaResult } from './corpus/fetchDebian.js';
export { readTexts, type ReadTextsOptions } from './corpus/readCorpus.js';

// 1. Tokenizers: train, extend, shrink (in memory and as directories).
export { trainTokenizer, type TrainTokenizerOptions, type TrainTokenizerResult } from './tokenizer/train.js';
export { extendTokenizer, type ExtendOptions, type ExtendResult, type MergeOrder } from './tokenizer/extend.js';
export type { TokenizerFiles } from './tokenizer/bpeJson.js';
export { extendTokenizerDir, type ExtendTokenizerDirResult } from './tokenizer/extendTokenizerDir.js';
export { shrinkTokenizer, type ShrinkOptions, type ShrinkResult } from './tokenizer/shrink.js';
export { shrinkTokenizerDir, type ShrinkTokenizerDirOptions, type ShrinkTokenizerDirResult } from './tokenizer/shrinkTokenizerDir.js';

// 2. Embedding initialisation.
export { initEmbeddings, type InitEmbeddingsOptions, type InitEmbeddingsResult } from './init/initEmbeddings.js';

// 3. Training (and 4. the checkpoint it leaves).
export { packCorpus, type PackCorpusOptions, type PackCorpusResult } from './train/packCorpus.js';
export { trainModel, type TrainOptions, type TrainResult } from './train/trainModel.js';
export type { LoraOptions } from './lora/loraOptions.js';
export { mergeAdapter } from './lora/peftAdapter.js';
export { exportCheckpoint, type ExportCheckpointOptions } from './train/exportCheckpoint.js';

// 5. Propagation.
export { propagate, type PropagateOptions, type PropagateResult, type PropagateManyResult } from './propagate/propagate.js';

// 6. Calibration.
export { calibrate, type CalibrateOptions, type CalibrateResult } from './calibrate/calibrate.js';

// 7. Evaluation and the report.
export { evaluate, type EvaluateOptions, type EvalResult, type TaskResult } from './eval/evaluate.js';
export { writeReport, type ReportInput } from './report/writeReport.js';

// Export to llama.cpp.
export { exportGguf, type ExportGgufOptions, type ExportGgufResult } from './checkpoint/gguf.js';

// What each stage records in its output (lep-stage.json).
export { readStageRecord, STAGE_RECORD_FILE, type StageRecord, type StageInput, type RecordedStage } from './stage/stageRecord.js';
// Every stage under one contract: resolve(options), then run(inputs, outDir, resolved, { signal, onProgress, tags }).
export { stages, type Stage, type StageContext } from './stage/stages.js';
export type { StageProgress } from './stage/stageProgress.js';

// Every stage from one recipe.
export { adapt, type AdaptOptions, type AdaptProgress, type AdaptResult } from './adapt/adapt.js';
export { readRecipe, type AdaptRecipe } from './adapt/recipe.js';
