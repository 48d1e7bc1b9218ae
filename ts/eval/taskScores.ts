/**
 * Per-item records and task scores. Every task score is a function of its items' records
 * (`aggregate`), so comparison mode can resample items and recompute it (paired bootstrap), and a saved
 * results file is enough to compare runs later. Task scores (and the summary) are on a 0–1 scale.
 *
 * | metric | record | task score |
 * |---|---|---|
 * | copy_sentence | length ratio in tokens | mean |
 * | copy_paragraph | overlap, 1 if ≥ 0.99 | mean |
 * | qa | exact match, token F1 (max over gold) | mean of EM and F1 (MultiQ) |
 * | chrf | sentence chrF statistics | corpus chrF / 100 |
 * | rouge | ROUGE-1/2 precision, recall, F | mean of ROUGE-1 and ROUGE-2 recall (paper) or F (`rouge: "f"`, llmtf) |
 * | choice | gold, prediction (both orders); subject, category | acc, acc_f1 or acc_mcc (header `score`); bothOrders: right in both; `aggregate: "subjects"`: acc per subject → category → mean (MMLU) |
 * | use_grade | points, exam variant | per variant points / 34, mean over variants (MERA USE) |
 * | r_precision | R-precision of the candidates' ranking | mean |
 */
import { accuracy, macroF1, mcc } from './metrics/classification.js';
import { chrfFromStats } from './metrics/chrf.js';
import { subjectCategoryAccuracy } from './metrics/subjectAccuracy.js';
import { useGradeNorm } from './metrics/useGrade.js';
import type { ChoiceAggregate, ChoiceScore, TaskMetric } from './taskFile.js';

export const ROUGE_VARIANTS = ['recall', 'f'] as const;
export type RougeVariant = (typeof ROUGE_VARIANTS)[number];

/** What aggregation needs to know about a task (saved with its results). */
export interface ScoreSpec {
  metric: TaskMetric;
  choiceScore?: ChoiceScore;
  bothOrders?: boolean;
  /** Choice accuracy over items (default) or per subject, then category (MMLU). */
  aggregate?: ChoiceAggregate;
  rouge?: RougeVariant;
}

export type ItemRecord = {
  id: string;
  /** Generated text (generate tasks). */
  prediction?: string;
  /** False when generation hit max tokens without a stop. */
  stopped?: boolean;
  /** choice: gold and predicted labels (and with the options swapped). */
  gold?: string;
  pred?: string;
  goldReversed?: string;
  predReversed?: string;
  /** choice with `aggregate: "subjects"`: the item's subject and its category. */
  subject?: string;
  category?: string;
  /** Numeric values of the item (metric-specific). */
  values: Record<string, number>;
  /** chrF statistics. */
  stats?: number[];
};

const mean = (xs: number[]) => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);
const meanOf = (rs: readonly ItemRecord[], k: string) => mean(rs.map((r) => r.values[k] ?? 0));

/** Task score and all reported metrics of a list of records. */
export function aggregate(spec: ScoreSpec, records: readonly ItemRecord[]): { score: number; metrics: Record<string, number> } {
  switch (spec.metric) {
    case 'copy_sentence':
      return { score: meanOf(records, 'len'), metrics: { len: meanOf(records, 'len') } };
    case 'copy_paragraph':
      return { score: meanOf(records, 'copied'), metrics: { copied: meanOf(records, 'copied'), overlap: meanOf(records, 'overlap') } };
    case 'qa': {
      const em = meanOf(records, 'em');
      const f1 = meanOf(records, 'f1');
      return { score: (em + f1) / 2, metrics: { em, f1 } };
    }
    case 'chrf': {
      const sum: number[] = [];
      for (const r of records) (r.stats ?? []).forEach((v, i) => (sum[i] = (sum[i] ?? 0) + v));
      const corpus = chrfFromStats(sum) / 100;
      return { score: corpus, metrics: { chrf: corpus, sentence_chrf: meanOf(records, 'chrf') / 100 } };
    }
    case 'rouge': {
      const m: Record<string, number> = {};
      for (const k of ['rouge1_recall', 'rouge2_recall', 'rouge1_f', 'rouge2_f']) m[k] = meanOf(records, k);
      const v = spec.rouge ?? 'recall';
      return { score: (m[`rouge1_${v}`]! + m[`rouge2_${v}`]!) / 2, metrics: m };
    }
    case 'choice': {
      const gold: string[] = [];
      const pred: string[] = [];
      for (const r of records) {
        gold.push(r.gold ?? '');
        pred.push(r.pred ?? '');
        if (spec.bothOrders) {
          gold.push(r.goldReversed ?? '');
          pred.push(r.predReversed ?? '');
        }
      }
      // Both-orders rule: an item is right only if right with the options in both orders.
      const right = (r: ItemRecord) => r.gold === r.pred && (!spec.bothOrders || r.goldReversed === r.predReversed);
      const itemsAcc = spec.bothOrders ? mean(records.map((r) => (right(r) ? 1 : 0))) : accuracy(gold, pred);
      const bySubject = spec.aggregate === 'subjects';
      const acc = bySubject ? subjectCategoryAccuracy(records.map((r) => ({ subject: r.subject ?? '', category: r.category ?? r.subject ?? '', correct: right(r) }))) : itemsAcc;
      const f1 = macroF1(gold, pred);
      const m = mcc(gold, pred);
      const score = spec.choiceScore === 'acc_f1' ? (acc + f1) / 2 : spec.choiceScore === 'acc_mcc' ? (acc + m) / 2 : acc;
      return { score, metrics: { acc, ...(bySubject ? { acc_items: itemsAcc } : {}), f1_macro: f1, mcc: m } };
    }
    case 'use_grade': {
      const grade = useGradeNorm(records.map((r) => ({ points: r.values.points ?? 0, variant: r.values.variant ?? 0 })));
      return { score: grade, metrics: { grade_norm: grade, points: meanOf(records, 'points') } };
    }
    case 'r_precision':
      return { score: meanOf(records, 'r_precision'), metrics: { r_precision: meanOf(records, 'r_precision') } };
  }
}
