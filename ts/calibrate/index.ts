/**
 * The data side of calibration (docs/method.md §5), one file a step:
 *
 *   1. prompts      calibrationPrompts.ts   instruction prompts from the training corpora (built-in case);
 *   2. answers      generateAnswers.ts      the original instruct model answers them greedily, resumably;
 *   3. filter       filterAnswers.ts        empty / unfinished / length / language / repetition / judge;
 *   4. copy         copyExamples.ts         "copy this text" examples from target-language text;
 *   5. mix          buildCalibrationSet.ts  answers + copy examples, shuffled, as chat JSONL;
 *   6. read         readChatDataset.ts      a chat JSONL file (ours or an instruction dataset), validated;
 *   7. pack         packCalibrationSet.ts   blocks with loss on assistant tokens (packChat + writeBlocks).
 *
 * Re-exports only.
 */
export { generateAnswers, readAnswerIds, runFile, DEFAULT_ANSWER_MAX_NEW_TOKENS, MIN_ANSWER_ROOM, type CalibrationPrompt, type CalibrationAnswer, type GenerateAnswersOptions, type GenerateAnswersResult, type AnswersProgress } from './generateAnswers.js';
export { filterAnswers, repeatedNgrams, scriptByLang, LANG_SCRIPTS, FILTER_RULES, DEFAULT_REPETITION, DEFAULT_SCRIPT_MIN_SHARE, DEFAULT_JUDGE_THRESHOLD, DEFAULT_JUDGE_CONCURRENCY, type FilterAnswersOptions, type FilterAnswersResult, type FilterRule, type AnswerJudge, type AnswerLike } from './filterAnswers.js';
export { calibrationPrompts, builtinCalibrationPrompts, readTrainingMaterial, corpusParagraphs, promptCounts, PROMPT_KINDS, DEFAULT_PROMPT_MIX, DEFAULT_PROMPT_CHARS, DEFAULT_PROMPT_SEED, type BuiltinPrompt, type PromptKind, type PromptMix, type CalibrationPromptsOptions } from './calibrationPrompts.js';
export { copyExamples } from './copyExamples.js';
export { buildCalibrationSet, DEFAULT_CALIBRATION_SEED, type CalibrationSetOptions, type CalibrationSetResult, type CalibrationLine } from './buildCalibrationSet.js';
export { readChatDataset, readChatLines, checkChatRecord, CHAT_ROLES, type ChatRecord } from './readChatDataset.js';
export { packCalibrationSet, type PackCalibrationResult } from './packCalibrationSet.js';
export { calibrate, DEFAULT_CALIBRATION_PROMPTS, type CalibrateOptions, type CalibrateResult } from './calibrate.js';
