/**
 * Filters generated answers before calibration (docs/method.md §5: the paper keeps 13531 judged pairs). Cheap
 * rules first, then an optional judge; each rejected answer is counted under the first rule it fails, in
 * this order, so the counts add up to the number rejected:
 *
 *   1. `empty`       the answer is blank;
 *   2. `unfinished`  the generation hit max tokens without EOS or a stop string (`stopped: false` in the
 *                    answer line; lines without the field, e.g. from a dataset, pass): a cut-off answer
 *                    would teach the model to stop mid-sentence;
 *   3. `length`      fewer than `min` or more than `max` characters (code points) or tokens;
 *   4. `language`    less than `minShare` of the answer's letters are in the expected script (the corpus
 *                    reader's script filter, ts/corpus/scriptFilter.ts); an answer without letters fails;
 *   5. `repetition`  a degenerate loop, see `repeatedNgrams`;
 *   6. `judge`       the caller's judge said no (false, or a score below `judgeThreshold`).
 */
import { LepError, optionError } from '../errors.js';
import { scriptFilter, type LineFilter } from '../corpus/scriptFilter.js';
import type { Tokenizer } from '../tokenizer/Tokenizer.js';
import type { ChatExample } from '../train/packChat.js';

export const FILTER_RULES = ['empty', 'unfinished', 'length', 'language', 'repetition', 'judge'] as const;
export type FilterRule = (typeof FILTER_RULES)[number];

/** What the filter needs of an answer line: messages ending in an assistant turn; `stopped` when generated. */
export type AnswerLike = ChatExample & { stopped?: unknown; [field: string]: unknown };

/** The judge: a verdict, or a score compared with `judgeThreshold`. Gets the last user turn and the answer. */
export type AnswerJudge<T extends AnswerLike = AnswerLike> = (prompt: string, answer: string, record: T) => Promise<boolean | number>;

/** The answer's expected script for the language codes `buildCalibrationPrompts` writes in `lang`. */
export const LANG_SCRIPTS: Readonly<Record<string, string>> = { ru: 'Cyrillic', en: 'Latin' };

/** A `language.script` that reads the line's `lang` field through a map; lines without a known lang are not checked. */
export const scriptByLang =
  (scripts: Readonly<Record<string, string>> = LANG_SCRIPTS) =>
  (record: AnswerLike): string | undefined =>
    typeof record.lang === 'string' ? scripts[record.lang] : undefined;

export interface FilterAnswersOptions<T extends AnswerLike = AnswerLike> {
  /** Reject answers that ran to max tokens (`stopped: false`). Defaults to `true`. */
  dropUnfinished?: boolean;
  /** Length bounds of the answer; `unit` `tokens` needs `tokenizer`. Defaults to no bounds. */
  length?: { min?: number; max?: number; unit?: 'chars' | 'tokens' };
  /** Counts tokens for `length.unit: 'tokens'` (the answer alone, no special tokens). */
  tokenizer?: Tokenizer;
  /**
   * The answer's expected Unicode script (`Cyrillic`, `Latin`, ...), fixed or per line (e.g.
   * `scriptByLang()`: translations into English must be Latin even when the target language is Russian;
   * `undefined` skips the check for that line), and the share of its letters that must be in it.
   * Defaults to no language check; `minShare` defaults to `DEFAULT_SCRIPT_MIN_SHARE`.
   */
  language?: { script: string | ((record: T) => string | undefined); minShare?: number };
  /** The loop detector (see `repeatedNgrams`); `false` turns it off. Defaults to `DEFAULT_REPETITION`. */
  repetition?: { n?: number; maxShare?: number } | false;
  /** Called for answers that pass every other rule. Defaults to none. */
  judge?: AnswerJudge<T>;
  /** A numeric verdict keeps the answer when >= this. Defaults to `0.5`. */
  judgeThreshold?: number;
  /** Judge calls in flight at once (a judge is usually a model server). Defaults to `4`. */
  judgeConcurrency?: number;
}

export const DEFAULT_SCRIPT_MIN_SHARE = 0.5;
/**
 * Word trigrams, and at most 30% of them repeats of an earlier one. Ordinary prose of a few sentences
 * repeats almost no trigram; a greedy loop repeats nearly all of them (a loop with a period of p words
 * in an answer of L words has a share of about 1 - p/L), so the threshold sits far from both.
 */
export const DEFAULT_REPETITION = { n: 3, maxShare: 0.3 } as const;
export const DEFAULT_JUDGE_THRESHOLD = 0.5;
export const DEFAULT_JUDGE_CONCURRENCY = 4;

export interface FilterAnswersResult<T> {
  kept: T[];
  /** Rejections per rule (each answer under the first rule it failed). */
  rejected: Record<FilterRule, number>;
  /** The rejected lines with their rule, in input order. */
  rejections: { rule: FilterRule; record: T }[];
}

const WORD = /[\p{L}\p{N}]+/gu;

/**
 * Repeated word n-grams of a text: `repeats` is the number of n-gram occurrences that repeat an earlier
 * one, `share` that over all n-grams (0 for texts shorter than n words). Words are runs of letters and
 * digits, lower-cased, so punctuation and case do not hide a loop ("нет, что" / "нет. Что").
 *
 * Why this rule: the typical failure of greedy decoding is a loop (the toy base model's "что не потому,
 * что он нет, что не потому, что он нет, ..."), and a loop of any period repeats its n-grams; a
 * repeated-line ratio only sees loops whose period is whole lines. The answer is rejected when its
 * share exceeds `maxShare` *and* it has more repeats than its prompt: a faithful copy of a repetitive
 * text (a man page's option list) inherits the prompt's repeats and is kept.
 */
export function repeatedNgrams(text: string, n: number): { repeats: number; total: number; share: number } {
  const words = (text.toLowerCase().match(WORD) ?? []) as string[];
  const seen = new Set<string>();
  let repeats = 0;
  const total = Math.max(0, words.length - n + 1);
  for (let i = 0; i < total; i++) {
    const key = words.slice(i, i + n).join(' ');
    if (seen.has(key)) repeats++;
    else seen.add(key);
  }
  return { repeats, total, share: total === 0 ? 0 : repeats / total };
}

/** The answer (last assistant turn) and its prompt (the last user turn before it). */
function turns(record: AnswerLike, index: number): { prompt: string; answer: string } {
  const ms = record.messages;
  let a = -1;
  for (let i = ms.length - 1; i >= 0; i--)
    if (ms[i]!.role === 'assistant') {
      a = i;
      break;
    }
  if (a < 0) throw new LepError('LEP_BAD_ANSWERS', `answer ${index}${record.id === undefined ? '' : ` (id ${JSON.stringify(record.id)})`} has no assistant turn\nHINT: filter answer lines written by generateAnswers or read by readChatDataset.`);
  let u = a - 1;
  while (u >= 0 && ms[u]!.role !== 'user') u--;
  return { prompt: u >= 0 ? ms[u]!.content : '', answer: ms[a]!.content };
}

function bound(v: number | undefined, name: string): number | undefined {
  if (v !== undefined && !(Number.isSafeInteger(v) && v >= 0)) throw optionError(name, 'a non-negative integer', v, `--${name.replace('.', '-')}`);
  return v;
}

/** Applies the rules (see the module comment); the input order is kept. */
export async function filterAnswers<T extends AnswerLike>(records: readonly T[], options: FilterAnswersOptions<T> = {}): Promise<FilterAnswersResult<T>> {
  // --- validate everything before the first record (and the first judge call)
  const dropUnfinished = options.dropUnfinished ?? true;
  const len = options.length;
  const unit = len?.unit ?? 'chars';
  if (unit !== 'chars' && unit !== 'tokens') throw optionError('length.unit', '"chars" or "tokens"', unit, '--length-unit');
  const min = bound(len?.min, 'length.min');
  const max = bound(len?.max, 'length.max');
  if (min !== undefined && max !== undefined && min > max) throw optionError('length.max', `a number >= length.min (${min})`, max, '--length-max');
  if (unit === 'tokens' && (min !== undefined || max !== undefined) && !options.tokenizer) throw optionError('tokenizer', 'a Tokenizer when length.unit is "tokens"', undefined);
  const minShare = options.language?.minShare ?? DEFAULT_SCRIPT_MIN_SHARE;
  const scriptOf = options.language ? options.language.script : undefined;
  const filters = new Map<string, LineFilter>();
  const inScript = (script: string): LineFilter => {
    let f = filters.get(script);
    if (!f) filters.set(script, (f = scriptFilter(script, minShare)));
    return f;
  };
  if (typeof scriptOf === 'string') inScript(scriptOf); // a bad script name fails here, not at record 1
  const rep = options.repetition === false ? undefined : { ...DEFAULT_REPETITION, ...options.repetition };
  if (rep) {
    if (!Number.isSafeInteger(rep.n) || rep.n < 1) throw optionError('repetition.n', 'a positive integer', rep.n, '--repetition-n');
    if (!(rep.maxShare >= 0 && rep.maxShare < 1)) throw optionError('repetition.maxShare', 'a number in [0, 1)', rep.maxShare, '--max-repetition');
  }
  const threshold = options.judgeThreshold ?? DEFAULT_JUDGE_THRESHOLD;
  if (!Number.isFinite(threshold)) throw optionError('judgeThreshold', 'a finite number', threshold, '--judge-threshold');
  const concurrency = options.judgeConcurrency ?? DEFAULT_JUDGE_CONCURRENCY;
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) throw optionError('judgeConcurrency', 'a positive integer', concurrency, '--judge-concurrency');

  // --- the cheap rules
  const verdict: (FilterRule | undefined)[] = new Array(records.length);
  const toJudge: number[] = [];
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    const { prompt, answer } = turns(r, i);
    const rule = await (async (): Promise<FilterRule | undefined> => {
      if (answer.trim() === '') return 'empty';
      if (dropUnfinished && r.stopped === false) return 'unfinished';
      if (min !== undefined || max !== undefined) {
        const n = unit === 'chars' ? [...answer].length : (await options.tokenizer!.encode(answer, { addSpecialTokens: false })).length;
        if ((min !== undefined && n < min) || (max !== undefined && n > max)) return 'length';
      }
      const script = typeof scriptOf === 'function' ? scriptOf(r) : scriptOf;
      if (script !== undefined && !inScript(script)(answer)) return 'language';
      if (rep) {
        const a = repeatedNgrams(answer, rep.n);
        if (a.share > rep.maxShare && a.repeats > repeatedNgrams(prompt, rep.n).repeats) return 'repetition';
      }
      return undefined;
    })();
    verdict[i] = rule;
    if (rule === undefined && options.judge) toJudge.push(i);
  }

  // --- the judge, `concurrency` calls at a time
  const judge = options.judge;
  if (judge) {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < toJudge.length) {
        const i = toJudge[next++]!;
        const r = records[i]!;
        const { prompt, answer } = turns(r, i);
        const v: unknown = await judge(prompt, answer, r);
        if (typeof v === 'boolean') verdict[i] = v ? undefined : 'judge';
        else if (typeof v === 'number' && !Number.isNaN(v)) verdict[i] = v >= threshold ? undefined : 'judge';
        else throw new LepError('LEP_BAD_JUDGE', `the judge returned ${JSON.stringify(v)} for answer ${i}\nHINT: a judge resolves to true/false or to a number (kept when >= judgeThreshold).`);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, toJudge.length) }, worker));
  }

  const out: FilterAnswersResult<T> = { kept: [], rejected: Object.fromEntries(FILTER_RULES.map((r) => [r, 0])) as Record<FilterRule, number>, rejections: [] };
  records.forEach((record, i) => {
    const rule = verdict[i];
    if (rule === undefined) out.kept.push(record);
    else {
      out.rejected[rule]++;
      out.rejections.push({ rule, record });
    }
  });
  return out;
}
