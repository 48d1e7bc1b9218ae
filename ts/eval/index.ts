/** `lep/eval`: step 7 of the method, evaluation: task files, built-in suites, metrics, comparison of
 * results, the Darumeru converter. Re-exports only. */
export { textMetrics, type TextMetrics, type TextMetricsOptions } from './textMetrics.js';
export { evaluate, evalRecordFile, DEFAULT_TEXT_MAX_CHARS, type EvaluateOptions, type EvalResult, type TaskResult } from './evaluate.js';
export { readTaskFile, TASK_KINDS, TASK_METRICS, CHOICE_SCORES, DEFAULT_MAX_NEW_TOKENS, type TaskFile, type TaskHeader, type TaskItem, type TaskMetric, type TaskKind, type ReadTaskOptions } from './taskFile.js';
export { aggregate, ROUGE_VARIANTS, type ItemRecord, type ScoreSpec, type RougeVariant } from './taskScores.js';
export { compareResults, pairedBootstrap, formatComparison, readEvalResult, DEFAULT_BOOTSTRAP_SAMPLES, DEFAULT_ALPHA, type Comparison, type TaskDifference, type CompareOptions } from './compare.js';
export { BUILTIN_TASKS, buildSuites, writeBuiltinSuites, ensureBuiltinSuites, DEFAULT_SUITES_DIR, DEFAULT_SUITE_ITEMS, SUITE_SEED } from './builtinSuites.js';
export { formatResults } from './formatResults.js';
export { convertDarumeru, DARUMERU_SETS, readJsonlRecords, type ConvertOptions, type ConvertReport } from './convertDarumeru.js';
export { subjectCategoryAccuracy } from './metrics/subjectAccuracy.js';
export { useTaskPoints, useGradeNorm, USE_MAX_GRADE } from './metrics/useGrade.js';
export { MMLU_CATEGORIES, mmluCategory } from './mmluSubjects.js';
export { stemmedRougeWords } from './metrics/rougeStem.js';
export { DARUMERU_GROUPS, microAverage, summarize, type Summary, type GroupWeight } from './metrics/microAvg.js';
export { PROMPT_FORMATS, DEFAULT_SHOTS, type PromptFormat } from './prompts.js';
