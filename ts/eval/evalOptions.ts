/**
 * The options of `lep eval` / `evaluate` and of `lep eval --compare` / `compareResults`, written once (see
 * options/optionSpec.ts): the TS types, the validation, the CLI flags and help and the resolved options a
 * result records (EvalResult.options) derive from these tables. Evaluation has no recipe section.
 */
import { Type } from '@sinclair/typebox';

import { DEFAULT_CORPUS_CACHE_DIR } from '../corpus/fetchDebian.js';
import { defineOptions, oneOf, SEED_SCHEMA } from '../options/optionSpec.js';
import { LOAD_FLAGS_SPEC } from '../model/loadOptions.js';
import { DEFAULT_SUITES_DIR } from './builtinSuites.js';
import { PARAGRAPH_OVERLAPS } from './itemScores.js';
import { DEFAULT_SHOTS, PROMPT_FORMATS } from './prompts.js';
import { DEFAULT_EVAL_BATCH_SIZE } from './scoreAnswers.js';
import { ROUGE_VARIANTS } from './taskScores.js';

const posInt = Type.Integer({ minimum: 1 });
const dir = Type.String({ minLength: 1 });

export const EVAL_SPEC = defineOptions({
  format: { schema: oneOf(...PROMPT_FORMATS), default: 'chat', doc: 'chat: zero-shot through the chat template (instruct models); plain: few-shot (base models).' },
  shots: { schema: Type.Integer({ minimum: 0 }), default: DEFAULT_SHOTS, doc: 'Few-shot examples per item in the plain format (fewer where the context is short).' },
  limit: { schema: posInt, defaultDoc: 'all', doc: 'Items per task at most (the first N).' },
  skipBadLines: { schema: Type.Boolean(), default: false, doc: 'Leave malformed task-file lines out (reported) instead of failing.' },
  batchSize: { schema: posInt, default: DEFAULT_EVAL_BATCH_SIZE, doc: 'Sequences per native call.' },
  rouge: { schema: oneOf(...ROUGE_VARIANTS), default: 'recall', doc: 'ROUGE variant of the abstractive summary score: recall (the paper) or f (llmtf).' },
  rougeStem: {
    schema: Type.Boolean(),
    default: false,
    doc: 'ROUGE on stemmed words (Snowball Russian, Porter English), nearer the reference code\'s lemmatised ROUGE.',
  },
  paragraphOverlap: { schema: oneOf(...PARAGRAPH_OVERLAPS), default: 'paper', doc: 'Paragraph copy overlap: paper (LCS tokens / reference tokens) or llmtf (difflib).' },
  suitesDir: { schema: dir, flag: 'suites', arg: 'DIR', default: DEFAULT_SUITES_DIR, doc: 'Where built-in suites live (built there from the held-out corpora when missing).' },
  corporaDir: { schema: dir, flag: 'corpora', arg: 'DIR', default: DEFAULT_CORPUS_CACHE_DIR, doc: 'Corpora cache with heldout/ (for building suites and text metrics).' },
  textMaxChars: { schema: Type.Integer({ minimum: 0 }), default: 50_000, doc: 'Characters of held-out text per language for bits per character and symbols per token (0 = all).' },
  // How the model loads: LepModel.load's own options.
  ...LOAD_FLAGS_SPEC,
});

/** `lep eval --compare`: the paired bootstrap (eval/compare.ts). */
export const COMPARE_SPEC = defineOptions({
  samples: { schema: posInt, default: 1000, doc: 'Bootstrap resamples.' },
  seed: { schema: SEED_SCHEMA, default: 0, doc: 'Seed of the resampling.' },
  alpha: { schema: Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1 }), default: 0.05, doc: 'Significance level: a difference is significant when p < alpha.' },
});
