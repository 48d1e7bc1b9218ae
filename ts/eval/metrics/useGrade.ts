/**
 * USE (the Russian Unified State Exam, part 1) as MERA grades it: each task earns points by its type,
 * the points of one exam variant are summed and divided by the exam's maximum (34), and the task score
 * is the mean of that over the variants. Answers are short strings: a word for `text` tasks, numbers
 * separated by commas for `multiple_choice*` and `matching` tasks.
 *
 *   - text: the prediction without digits and non-word characters, lower-cased, must be one of the
 *     comma-separated acceptable answers (1 point);
 *   - matching (task 26): one point per position where the predicted number equals the answer's;
 *     nothing if the counts differ;
 *   - multiple choice: 1 point if the predicted set of numbers equals the answer's; task 16 gives
 *     2 points at most: |answer ∩ prediction| − |prediction| + |answer|, never below 0 (a missing
 *     number costs one point, a wrong one costs one).
 * As in the reference scoring (llmtf's MERA USE), each predicted number is trimmed of spaces.
 */

/** Points of a full exam variant (part 1). */
export const USE_MAX_GRADE = 34;

/** Checks an item's `meta` for the USE metric; throws a message naming what is missing. */
export function checkUseMeta(meta: Record<string, string | number> | undefined): void {
  if (!meta) throw new Error('a use_grade item needs meta {type, id_task, variant}');
  if (typeof meta.type !== 'string' || meta.type.length === 0) throw new Error('meta.type must be the USE task type (text, matching, multiple_choice...)');
  if (typeof meta.id_task !== 'string' && typeof meta.id_task !== 'number') throw new Error('meta.id_task must be the exam task number');
  if (!Number.isInteger(meta.variant)) throw new Error('meta.variant must be the exam variant (an integer)');
}

const numbers = (s: string) => s.split(',').map((x) => x.trim());

/**
 * Python's `re.sub(r"[\d+\W+]", "", s)`: keeps word characters that are not decimal digits (letters,
 * other numerals, underscore). JavaScript's \w is ASCII-only even with the u flag, hence the classes.
 */
const wordLetters = (s: string) => s.replace(/[^\p{L}\p{Nl}\p{No}_]/gu, '');

/** Points of one answer. */
export function useTaskPoints(type: string, idTask: string, answer: string, prediction: string): number {
  if (type === 'text') return answer.split(',').includes(wordLetters(prediction).toLowerCase()) ? 1 : 0;
  const pred = numbers(prediction);
  const ans = answer.split(',');
  if (type === 'matching') return pred.length === ans.length ? ans.filter((a, i) => a === pred[i]).length : 0;
  const common = (p: string[]) => new Set(ans.filter((a) => p.includes(a))).size;
  if (idTask === '16') {
    while (pred.length < ans.length) pred.push('-1');
    return Math.max(0, common(pred) - pred.length + ans.length);
  }
  const p = new Set(pred);
  return common([...p]) === new Set(ans).size && new Set(ans).size === p.size ? 1 : 0;
}

/** The task score: per variant, points / USE_MAX_GRADE; then the mean over variants. */
export function useGradeNorm(items: readonly { points: number; variant: number }[]): number {
  const byVariant = new Map<number, number>();
  for (const { points, variant } of items) byVariant.set(variant, (byVariant.get(variant) ?? 0) + points);
  if (byVariant.size === 0) return 0;
  let sum = 0;
  for (const p of byVariant.values()) sum += p / USE_MAX_GRADE;
  return sum / byVariant.size;
}
