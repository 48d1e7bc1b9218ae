/**
 * Comparison of evaluation runs: per task, the score difference B − A with a paired bootstrap over the
 * items both runs scored (Koehn 2004): resample the items with replacement (seeded), recompute both task
 * scores from the resampled records, and count how often the difference has the other sign. `p` is the
 * two-sided bootstrap p-value; `significant` means p < alpha. Items are paired by id, so two runs of
 * the same suite are compared item by item and a noisy task shows a wide interval.
 */
import { readFileSync } from 'node:fs';

import { LepError } from '../errors.js';
import { seededRandom } from '../util/random.js';
import { checkOptions, withDefaults, type OptionsOf } from '../options/optionSpec.js';
import { COMPARE_SPEC } from './evalOptions.js';
import type { EvalResult, TaskResult } from './evaluate.js';
import { aggregate, type ItemRecord } from './taskScores.js';

/** Bootstrap resamples. */
export const DEFAULT_BOOTSTRAP_SAMPLES: number = COMPARE_SPEC.samples.default;
export const DEFAULT_BOOTSTRAP_SEED: number = COMPARE_SPEC.seed.default;
/** Significance level. */
export const DEFAULT_ALPHA: number = COMPARE_SPEC.alpha.default;

/** The bootstrap's options: COMPARE_SPEC (evalOptions.ts) gives each one's type, bounds, default and doc. */
export type CompareOptions = OptionsOf<typeof COMPARE_SPEC>;

export interface TaskDifference {
  task: string;
  a: number;
  b: number;
  delta: number;
  /** 95% (1 − alpha) percentile interval of the bootstrapped difference. */
  low: number;
  high: number;
  p: number;
  significant: boolean;
  /** Items scored by both runs. */
  items: number;
}

/** Paired bootstrap of one task's score difference. */
export function pairedBootstrap(a: TaskResult, b: TaskResult, options: CompareOptions = {}): TaskDifference {
  checkOptions(COMPARE_SPEC, options, { kind: 'options' });
  const { samples, alpha, seed } = withDefaults(COMPARE_SPEC, options);
  const rand = seededRandom(seed);
  const bById = new Map(b.records.map((r) => [r.id, r]));
  const pairs: [ItemRecord, ItemRecord][] = [];
  for (const r of a.records) {
    const o = bById.get(r.id);
    if (o) pairs.push([r, o]);
  }
  if (pairs.length === 0) throw new LepError('LEP_COMPARE', `task ${a.name}: the two runs share no item ids\nHINT: compare runs of the same task files.`);
  const score = (res: TaskResult, rs: ItemRecord[]) => aggregate(res.spec, rs).score;
  const sa = score(a, pairs.map((p) => p[0]));
  const sb = score(b, pairs.map((p) => p[1]));
  const delta = sb - sa;
  const deltas: number[] = [];
  let le = 0;
  let ge = 0;
  for (let s = 0; s < samples; s++) {
    const ra: ItemRecord[] = [];
    const rb: ItemRecord[] = [];
    for (let i = 0; i < pairs.length; i++) {
      const k = Math.floor(rand() * pairs.length);
      ra.push(pairs[k]![0]);
      rb.push(pairs[k]![1]);
    }
    const d = score(b, rb) - score(a, ra);
    deltas.push(d);
    if (d <= 0) le++;
    if (d >= 0) ge++;
  }
  deltas.sort((x, y) => x - y);
  const q = (f: number) => deltas[Math.min(deltas.length - 1, Math.max(0, Math.floor(f * deltas.length)))]!;
  // Two-sided: how often the resampled difference reaches zero from the observed side.
  const p = delta === 0 ? 1 : Math.min(1, (2 * (delta > 0 ? le : ge)) / samples);
  return { task: a.name, a: sa, b: sb, delta, low: q(alpha / 2), high: q(1 - alpha / 2), p, significant: p < alpha, items: pairs.length };
}

export interface Comparison {
  base: string;
  other: string;
  tasks: TaskDifference[];
  /** Tasks in only one of the runs. */
  unmatched: string[];
}

/** Compares run B with run A, task by task (tasks matched by name). */
export function compareResults(a: EvalResult, b: EvalResult, options: CompareOptions = {}): Comparison {
  checkOptions(COMPARE_SPEC, options, { kind: 'options' });
  const bByName = new Map(b.tasks.map((t) => [t.name, t]));
  const tasks: TaskDifference[] = [];
  const unmatched: string[] = [];
  for (const t of a.tasks) {
    const o = bByName.get(t.name);
    if (o) tasks.push(pairedBootstrap(t, o, options));
    else unmatched.push(t.name);
  }
  for (const t of b.tasks) if (!a.tasks.some((x) => x.name === t.name)) unmatched.push(t.name);
  return { base: a.model, other: b.model, tasks, unmatched };
}

/** Reads a results file written by `lep eval --out` / `--json`. */
export function readEvalResult(file: string): EvalResult {
  let v: EvalResult;
  try {
    v = JSON.parse(readFileSync(file, 'utf8')) as EvalResult;
  } catch (e) {
    throw new LepError('LEP_COMPARE', `cannot read results ${file}: ${(e as Error).message}\nHINT: write results with lep eval MODEL --tasks ... --out FILE.json.`);
  }
  if (!Array.isArray(v?.tasks) || !v.tasks.every((t) => Array.isArray(t.records) && t.spec))
    throw new LepError('LEP_COMPARE', `${file} is not an evaluation results file (no tasks with records)\nHINT: write results with lep eval MODEL --tasks ... --out FILE.json.`);
  return v;
}

/** A text table of a comparison: one row per task, `*` marks a significant difference. */
export function formatComparison(c: Comparison, alpha = DEFAULT_ALPHA): string {
  const rows = [['task', 'A', 'B', 'B−A', `${Math.round((1 - alpha) * 100)}% CI`, 'p', ''], ...c.tasks.map((t) => [
    t.task, t.a.toFixed(3), t.b.toFixed(3), (t.delta >= 0 ? '+' : '') + t.delta.toFixed(3), `[${t.low.toFixed(3)}, ${t.high.toFixed(3)}]`, t.p.toFixed(3), t.significant ? '*' : '',
  ])];
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((x, i) => (i === 0 ? x.padEnd(w[i]!) : x.padStart(w[i]!))).join('  ').trimEnd());
  lines.splice(1, 0, '-'.repeat(lines[0]!.length));
  return [`A = ${c.base}`, `B = ${c.other}`, ...lines, `* p < ${alpha} (paired bootstrap over items)`, ...(c.unmatched.length ? [`not in both runs: ${c.unmatched.join(', ')}`] : [])].join('\n');
}
