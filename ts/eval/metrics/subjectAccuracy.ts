/**
 * MMLU's accuracy as Darumeru computes it (docs/method.md §6): accuracy per subject, then the mean of the
 * subjects' accuracies within each category, then the mean over categories. Every category weighs the
 * same and, within it, every subject, however many questions it has; so with unequal subject sizes
 * the result differs from the plain accuracy over items.
 */
export interface SubjectOutcome {
  subject: string;
  /** Category of the subject (the subject itself when none is known). */
  category: string;
  correct: boolean;
}

const mean = (xs: readonly number[]) => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);

export function subjectCategoryAccuracy(outcomes: readonly SubjectOutcome[]): number {
  const subjects = new Map<string, { category: string; right: number; n: number }>();
  for (const o of outcomes) {
    const s = subjects.get(o.subject) ?? { category: o.category, right: 0, n: 0 };
    // A subject belongs to one category; a second one means the task file contradicts itself.
    if (s.category !== o.category) throw new Error(`subject ${o.subject} is in two categories: ${s.category} and ${o.category}`);
    s.right += o.correct ? 1 : 0;
    s.n++;
    subjects.set(o.subject, s);
  }
  const categories = new Map<string, number[]>();
  for (const s of subjects.values()) categories.set(s.category, [...(categories.get(s.category) ?? []), s.right / s.n]);
  return mean([...categories.values()].map(mean));
}
