/** lep's public API: re-exports only. */
export { LepError, optionError } from './errors.js';
export { lepInfo, lepVersion, setThreads, type LepInfo } from './runtime.js';
export { forkWhenIdle } from './binding/forkWhenIdle.js';
export type * from './binding/progress.js';
export { parseConfig, toHfConfig, SUPPORTED_MODEL_TYPES, type ModelConfig } from './checkpoint/config.js';
export { readModelDir, checkVocab, weightFilesOf, copyTokenizerFiles, type ModelDir } from './checkpoint/modelDir.js';
export { inspectSafetensors, readSafetensors, writeSafetensors, type TensorData, type TensorInfo } from './checkpoint/safetensors.js';
export { exportGguf, type ExportGgufOptions, type ExportGgufResult, type GgufOutType } from './checkpoint/gguf.js';
export { llamaSpmTokenize, type GgufTokenizerParity } from './checkpoint/ggufTokenizerParity.js';
export { Tokenizer, type ChatMessage } from './tokenizer/Tokenizer.js';
export { LepModel, type LoadModelOptions, type GenerateOptions, type ScoreOptions, type ScoreResult, type GenerateResult, type Dtype } from './model/LepModel.js';
export type { JobOptions } from './binding/runJob.js';
export { createModel, type CreateModelOptions } from './model/createModel.js';
export { mistralTokenizerDir } from './data/builtinTokenizers.js';
export {
  extendTokenizer,
  MERGE_ORDERS,
  DEFAULT_MERGE_ORDER,
  type ExtendOptions,
  type ExtendResult,
  type ExtendStats,
  type MergeOrder,
} from './tokenizer/extend.js';
export type { TokenizerFiles } from './tokenizer/bpeJson.js';
export { shrinkTokenizer, saveTokenizerDir, countTokens, ID_MAP_FILE, SHRINK_RULES, type ShrinkOptions, type ShrinkResult, type ShrinkRule, type IdMap } from './tokenizer/shrink.js';
export { fetchCorpora, CORPUS_SOURCES, CORPUS_OUTPUTS, DEFAULT_CORPUS_CACHE_DIR, type FetchCorporaOptions, type FetchCorporaResult, type CorpusManifest } from './corpus/fetchDebian.js';
export { readTexts, type ReadTextsOptions, type CorpusMode, type CorpusFormat, type CorpusNormalization } from './corpus/readCorpus.js';
export { listCorpusFiles } from './corpus/listCorpusFiles.js';
export { trainModel, latestCheckpoint, TRAIN_DEFAULTS, ADAPTER_DIR, type TrainOptions, type TrainResult } from './train/trainModel.js';
export { LORA_PROJECTIONS, LORA_PRESETS, resolveLora, type LoraOptions, type LoraPreset, type LoraProjection } from './lora/loraOptions.js';
export { saveAdapter, readAdapterConfig, mergeAdapter, peftConfig, ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE } from './lora/peftAdapter.js';
export { saveModelDir } from './checkpoint/saveModelDir.js';
// Calibration data (docs/method.md §5): prompts, resumable answers, filters, copy mixing, chat datasets, packing.
export * from './calibrate/index.js';
export { readDistributedEnv, DEFAULT_DIST_TIMEOUT_S, DEFAULT_GRAD_SYNC, GRAD_SYNC_MODES, type DistributedEnv, type GradSync } from './train/distributedEnv.js';
export { launchProcesses, freePort, type LaunchOptions, type LaunchResult } from './train/launchProcesses.js';
export { packDocuments, writeBlocks, type PackOptions, type PackResult } from './train/packBlocks.js';
export { packChat, renderChat, type ChatExample, type PackChatResult } from './train/packChat.js';
export { packCorpus, type PackCorpusOptions, type PackCorpusResult } from './train/packCorpus.js';
export { readTokenizerView, pieceStyle, nodeKind, SUPPORTED_MODEL_KINDS, type TokenizerView, type ModelKind, type PieceStyle, type SpecialToken } from './tokenizer/view.js';
export { measureTokenizer, measureTokenizers, compareTokenizers, vocabularyOverlap, surfaceKey, DEFAULT_METRICS_BATCH_SIZE, type MetricsOptions, type TokenizerMetrics, type TokenizerComparison, type VocabularyOverlap } from './tokenizer/metrics.js';
export { extendTokenizerDir, checkIdsKept, RUN_FILE, type ExtendTokenizerDirResult } from './tokenizer/extendTokenizerDir.js';
export { shrinkTokenizerDir, type ShrinkTokenizerDirOptions, type ShrinkTokenizerDirResult } from './tokenizer/shrinkTokenizerDir.js';
export { trainTokenizer, resolveTrainOptions, TOKENIZER_TRAIN_DEFAULTS, TOKENIZER_TRAIN_TYPES, SPM_MODEL_FILE, type TrainTokenizerOptions, type TrainTokenizerResult, type TrainTokenizerStats, type TokenizerTrainProgress, type TokenizerTrainType, type TrainCorpusOptions } from './tokenizer/train.js';
export { sentencePieceToTokenizerJson, PIECE_TYPE, type SentencePieceModel, type FromSentencePieceOptions } from './tokenizer/fromSentencePiece.js';
export { exportCheckpoint, type ExportCheckpointOptions } from './train/exportCheckpoint.js';
export { propagate, PROPAGATE_METHODS, DEFAULT_PROPAGATE_METHOD, LSTSQ_SOLVERS, DEFAULT_LSTSQ_SOLVER, DEFAULT_PROPAGATE_CHUNK_ROWS, DEFAULT_PROPAGATE_MAX_SHARD_BYTES, DEFAULT_MIN_CORRELATION, PROPAGATE_REPORT_FILE, type PropagateOptions, type PropagateResult, type PropagateManyResult, type PropagateSideResult, type PropagateMethod, type LstsqSolverName } from './propagate/propagate.js';
export { initEmbeddings, resolveInitOptions, INIT_DEFAULTS, type SolveDtype, type InitEmbeddingsOptions, type InitEmbeddingsResult, type InitSideSummary } from './init/initEmbeddings.js';
export { buildInitPlan, planArrays, INIT_RULES, DONOR_RULES, OUTPUT_RULES, ROW_KIND, type InitPlan, type PlanRow, type RowSource, type InitRule, type OutputRule, type BuildInitPlanOptions } from './init/buildInitPlan.js';
export { PROVENANCE_FILE, type ProvenanceEntry } from './init/provenance.js';
export { textMetrics, type TextMetrics, type TextMetricsOptions } from './eval/textMetrics.js';
export { writeEmbeddingPatch, applyEmbeddingPatch, PATCH_FILE, PATCH_TENSORS_FILE } from './init/embeddingPatch.js';
export { evaluate, DEFAULT_TEXT_MAX_CHARS, type EvaluateOptions, type EvalResult, type TaskResult } from './eval/evaluate.js';
export { readTaskFile, TASK_KINDS, TASK_METRICS, CHOICE_SCORES, DEFAULT_MAX_NEW_TOKENS, type TaskFile, type TaskHeader, type TaskItem, type TaskMetric, type TaskKind, type ReadTaskOptions } from './eval/taskFile.js';
export { aggregate, ROUGE_VARIANTS, type ItemRecord, type ScoreSpec, type RougeVariant } from './eval/taskScores.js';
export { compareResults, pairedBootstrap, formatComparison, readEvalResult, DEFAULT_BOOTSTRAP_SAMPLES, DEFAULT_ALPHA, type Comparison, type TaskDifference, type CompareOptions } from './eval/compare.js';
export { BUILTIN_TASKS, buildSuites, writeBuiltinSuites, ensureBuiltinSuites, DEFAULT_SUITES_DIR, DEFAULT_SUITE_ITEMS, SUITE_SEED } from './eval/builtinSuites.js';
export { formatResults } from './eval/formatResults.js';
export { convertDarumeru, DARUMERU_SETS, readJsonlRecords, type ConvertOptions, type ConvertReport } from './eval/convertDarumeru.js';
export { subjectCategoryAccuracy } from './eval/metrics/subjectAccuracy.js';
export { useTaskPoints, useGradeNorm, USE_MAX_GRADE } from './eval/metrics/useGrade.js';
export { MMLU_CATEGORIES, mmluCategory } from './eval/mmluSubjects.js';
export { stemmedRougeWords } from './eval/metrics/rougeStem.js';
export { DARUMERU_GROUPS, microAverage, summarize, type Summary, type GroupWeight } from './eval/metrics/microAvg.js';
export { PROMPT_FORMATS, DEFAULT_SHOTS, type PromptFormat } from './eval/prompts.js';
export { writeReport, renderReport, formatTable, parseTrainLog, type ReportInput, type ReportRow, type TrainingRun, type TrainPoint } from './report/writeReport.js';
export { adapt, STAGES, MANIFEST_FILE, type AdaptOptions, type AdaptProgress, type AdaptResult, type StageManifest, type StageName } from './adapt/adapt.js';
export { readRecipe, validateRecipe, resolveRecipePaths, type AdaptRecipe, type TokenizerKind } from './adapt/recipe.js';
