/** `lep/tokenizer`: step 1 of the method, tokenizers: train (SentencePiece), extend, shrink, the
 * tokenizer.json view, metrics and comparison, the built-in Mistral tokenizer. Re-exports only. */
export { Tokenizer, type ChatMessage } from './Tokenizer.js';
export {
  extendTokenizer,
  MERGE_ORDERS,
  DEFAULT_MERGE_ORDER,
  type ExtendOptions,
  type ExtendResult,
  type ExtendStats,
  type MergeOrder,
} from './extend.js';
export type { TokenizerFiles } from './bpeJson.js';
export { shrinkTokenizer, saveTokenizerDir, countTokens, ID_MAP_FILE, SHRINK_RULES, type ShrinkOptions, type ShrinkResult, type ShrinkRule, type IdMap } from './shrink.js';
export { readTokenizerView, pieceStyle, nodeKind, SUPPORTED_MODEL_KINDS, type TokenizerView, type ModelKind, type PieceStyle, type SpecialToken } from './view.js';
export { measureTokenizer, measureTokenizers, compareTokenizers, vocabularyOverlap, surfaceKey, DEFAULT_METRICS_BATCH_SIZE, type MetricsOptions, type TokenizerMetrics, type TokenizerComparison, type VocabularyOverlap } from './metrics.js';
export { extendTokenizerDir, checkIdsKept, RUN_FILE, type ExtendTokenizerDirResult } from './extendTokenizerDir.js';
export { shrinkTokenizerDir, type ShrinkTokenizerDirOptions, type ShrinkTokenizerDirResult } from './shrinkTokenizerDir.js';
export { trainTokenizer, resolveTrainOptions, TOKENIZER_TRAIN_DEFAULTS, TOKENIZER_TRAIN_TYPES, SPM_MODEL_FILE, type TrainTokenizerOptions, type TrainTokenizerResult, type TrainTokenizerStats, type TokenizerTrainProgress, type TokenizerTrainType, type TrainCorpusOptions } from './train.js';
export { sentencePieceToTokenizerJson, PIECE_TYPE, type SentencePieceModel, type FromSentencePieceOptions } from './fromSentencePiece.js';
export { mistralTokenizerDir } from '../data/builtinTokenizers.js';
