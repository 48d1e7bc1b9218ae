/**
 * Copy-task examples for calibration (docs/method.md §5: the paper adds 10000 "repeat this Wikipedia article"
 * examples to self-calibration and optionally 2000 to instruction-tuning calibration): the user turn asks
 * to copy a target-language text exactly, the assistant turn is the text. The prompt wording is the one
 * the toy instruct model was tuned with (`copyExample`, ts/train/instructData.ts), so the calibrated model
 * is taught the skill in the words the evaluation's copy tasks use.
 */
import { LepError, optionError } from '../errors.js';
import { copyExample } from '../train/instructData.js';
import { seededRandom, shuffle } from '../util/random.js';
import type { ChatExample } from '../train/packChat.js';

/**
 * `n` copy examples from distinct texts, chosen by a seeded shuffle (the same texts, n and seed give the
 * same examples on every machine). Blank texts and repeated texts are left out first, so no text is
 * copied twice. `lang` picks the prompt's language. Throws `LEP_NOT_ENOUGH_TEXT` when fewer than `n`
 * distinct texts are given: sampling with replacement would train on duplicates.
 */
export function copyExamples(texts: readonly string[], n: number, seed: number, lang: 'en' | 'ru' = 'ru'): ChatExample[] {
  if (!Number.isSafeInteger(n) || n < 0) throw optionError('n', 'a non-negative integer', n, '--copy-examples');
  if (!Number.isSafeInteger(seed)) throw optionError('seed', 'an integer', seed, '--seed');
  const distinct = [...new Set(texts.filter((t) => t.trim() !== ''))];
  if (distinct.length < n)
    throw new LepError('LEP_NOT_ENOUGH_TEXT', `${n} copy examples were asked for but only ${distinct.length} distinct non-blank texts were given\nHINT: give more text or ask for fewer copy examples.`);
  return shuffle(distinct, seededRandom(seed)).slice(0, n).map((t) => copyExample(lang, t));
}
