/**
 * The options of `lep init` / `initEmbeddings`, written once (see options/optionSpec.ts): the TS type, the
 * validation, the CLI flags and help, the recipe's `init` keys and the resolved options recorded in
 * manifest.json derive from this table. `checkInitCombination` checks what one value cannot say alone
 * (the rules omp/focus and the options only they take), for the API, the CLI and recipes alike.
 */
import { Type } from '@sinclair/typebox';

import { combinationError, defineOptions, flagOf, nameIn, oneOf, SEED_SCHEMA, type Source } from '../options/optionSpec.js';
import { DEVICE_SCHEMA } from '../train/trainOptions.js';
import { DONOR_RULES, INIT_RULES, OUTPUT_RULES, type InitRule } from './buildInitPlan.js';

/** Dtype of the donor-space solve of rules omp/focus. */
export type SolveDtype = 'float32' | 'float64';
const dir = Type.String({ minLength: 1 });

export const INIT_SPEC = defineOptions({
  rule: {
    schema: oneOf(...INIT_RULES),
    default: 'mean',
    recipe: true,
    doc:
      "Rows of new tokens: mean of their old sub-tokens' rows (the paper's rule, docs/method.md §2), random (seeded normal with the old rows' std), " +
      "global-mean, or from an auxiliary model's embedding space: omp (mergekit-tokensurgeon's Orthogonal Matching Pursuit over shared tokens) or focus " +
      '(sparsemax of cosine similarities to shared tokens); omp and focus need auxModel. Common tokens and specials are copied under every rule.',
  },
  auxModel: {
    schema: dir,
    arg: 'DIR',
    recipe: true,
    doc: "Rules omp/focus: a model directory whose tokenizer has the new tokens and shares tokens with the model (mergekit's \"donor\"); each new row combines shared tokens' rows with weights found in its embedding space.",
  },
  // mergekit's recommendation.
  ompK: { schema: Type.Integer({ minimum: 1 }), default: 64, recipe: true, doc: 'Rule omp: shared tokens per new token (clamped to the shared tokens available).' },
  solveDtype: { schema: oneOf('float32', 'float64'), default: 'float32', recipe: true, doc: 'Rules omp/focus: dtype of the donor-space solve.' },
  device: { schema: DEVICE_SCHEMA, default: 'cpu', arg: 'cpu|cuda[:N]', doc: 'Rules omp/focus: where the solve runs.' },
  outputRule: {
    schema: oneOf(...OUTPUT_RULES),
    default: 'mean',
    recipe: true,
    doc: "Output (lm_head) rows of new tokens: the mean like the input side, or the first sub-token's row (some vocabulary-expansion methods).",
  },
  seed: { schema: SEED_SCHEMA, default: 0, recipe: true, doc: 'Seed of the random rule.' },
  padToMultipleOf: {
    schema: Type.Integer({ minimum: 1 }),
    default: 1,
    recipe: true,
    doc: 'Pad the embedding rows and config.json vocab_size up to a multiple of N; padding rows get the global mean (1: rows = the new tokenizer size).',
  },
  idMap: {
    schema: Type.Union([dir, Type.Literal(false), Type.Object({})], { title: 'an id_map.json path, false, or an id map' }),
    arg: 'FILE',
    defaultDoc: 'DIR/id_map.json when present',
    doc: "Optimized tokenizer: its id map (a file, or the object); false (--no-id-map) ignores one.",
  },
  copyRows: {
    schema: Type.Record(Type.String(), Type.String(), { title: 'an object of new token -> old token strings' }),
    flag: false,
    doc: "New token string -> old token string whose row it copies (e.g. a reserved token a new chat template uses).",
  },
  oldTokenizerDir: { schema: dir, flag: 'old-tokenizer', arg: 'DIR', defaultDoc: 'MODEL_DIR', doc: "The model's own tokenizer, if not in MODEL_DIR." },
});

/** The options of the spec that `checkInitCombination` reads. */
interface Combination {
  rule?: InitRule;
  auxModel?: string;
  ompK?: number;
  solveDtype?: SolveDtype;
  device?: string;
}

/**
 * The rules omp/focus need `auxModel`; `auxModel`, `solveDtype` and `device` apply to them only, `ompK` to
 * omp only. A recipe is checked here too, before its first stage runs, not when init starts hours later.
 */
export function checkInitCombination(o: Combination, source: Source): void {
  const rule = o.rule ?? INIT_SPEC.rule.default;
  const recipe = source.kind === 'recipe';
  const name = (k: keyof Combination): string => nameIn(source, k, INIT_SPEC[k]);
  /** "--rule omp" on the command line, "rule: omp" in a recipe. */
  const set = (k: keyof Combination, v: string): string => (recipe ? `${k}: ${v}` : `${flagOf(k, INIT_SPEC[k])} ${v}`);
  const rules = DONOR_RULES.map((x) => `"${x}"`).join(', ');
  if (DONOR_RULES.includes(rule) && o.auxModel === undefined)
    throw combinationError(
      source,
      `${recipe ? `${name('rule')}: "${rule}"` : `rule "${rule}" (--rule ${rule})`} needs an auxiliary model (${recipe ? name('auxModel') : 'auxModel, --aux-model'}) but none was given`,
      `${recipe ? 'set auxModel to' : 'pass --aux-model DIR,'} a model directory whose tokenizer has the new tokens and shares tokens with the model (docs/method.md §2); without one, keep ${set('rule', 'mean')}.`,
    );
  for (const k of ['auxModel', 'solveDtype', 'device'] as const)
    if (!DONOR_RULES.includes(rule) && o[k] !== undefined)
      throw combinationError(source, `${name(k)} applies to the rules ${rules} but the rule is "${rule}"`, `add ${set('rule', 'omp')} (or focus) ${recipe ? 'and auxModel' : '--aux-model DIR'}, or drop ${recipe ? k : flagOf(k, INIT_SPEC[k])}.`);
  if (o.ompK !== undefined && rule !== 'omp')
    throw combinationError(source, `${name('ompK')} applies to the rule "omp" but the rule is "${rule}"`, `drop ${recipe ? 'ompK' : '--omp-k'}, or use ${set('rule', 'omp')}.`);
}
