/**
 * The provenance file of `lep init` (docs/method.md §2, "record, per new token, which old ids were averaged";
 * the reference code writes a JSON log). One JSON object; `tokens` has one line per new id so the file
 * stays greppable at 175k tokens:
 *
 *   {"id":8123,"token":"ĠÐ¼Ð¸ÑĢ","source":"mean","old":[220,1234,567]}
 *
 * `old` are the old ids whose input rows were averaged (never-trained all-zero rows already left out);
 * `old_output` appears where the output side used other ids (its own zero rows, or output rule `first`);
 * `fallback` lists the sides whose row became the global mean instead. Rows of the donor rules (omp, focus)
 * list the shared tokens' old ids in `old` with their coefficients in `weights` (and `old_output` /
 * `weights_output` for lm_head, solved in the donor's lm_head); a donor row that kept the mean (the
 * donor's row was all zero) has `donor_kept_mean` and its mean's ids.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import type { NativeDonorSide, NativeInitResult } from '../binding/NativeTypes.js';
import { LepError } from '../errors.js';
import { writeFileAtomic } from '../util/atomicWrite.js';
import { ROW_KIND, type InitPlan, type OutputRule, type RowSource } from './buildInitPlan.js';

export const PROVENANCE_FILE = 'init_provenance.json';

/** Sources of rows `lep init` took from the base model (copied, id-mapped, specials, overrides); every other row is new. */
const TAKEN_SOURCES: ReadonlySet<string> = new Set<RowSource>(['copy', 'id-map', 'special', 'override']);

/**
 * The ids of the rows `lep init` made for `modelDir` (not taken from the base): what `lep train --rows new`
 * and a recipe's `train.newRowsOnly` train. Read from the model's provenance file, which `lep init` writes
 * (a trained model has none: its rows no longer hold what init put there). `option` is what the user
 * wrote ('--rows new', 'recipe.train.newRowsOnly'), named in errors; only --rows can list ids instead.
 */
export function newRowIds(modelDir: string, option: string): number[] {
  const file = join(modelDir, PROVENANCE_FILE);
  const orList = option.startsWith('--rows') ? ', or list the rows yourself: --rows FILE with a JSON array of token ids' : '';
  if (!existsSync(file))
    throw new LepError('LEP_BAD_OPTION', `${option}: ${modelDir} has no ${PROVENANCE_FILE}, the record of which rows lep init made\nHINT: name the model lep init wrote (its output directory, as it is before training)${orList}.`);
  let tokens: unknown;
  try {
    tokens = (JSON.parse(readFileSync(file, 'utf8')) as { tokens?: unknown }).tokens;
  } catch (e) {
    throw new LepError('LEP_BAD_JSON', `${option}: cannot read ${file}: ${(e as Error).message}\nHINT: run lep init again to rewrite it${orList}.`);
  }
  const ok = (t: unknown): t is { id: number; source: string } =>
    typeof t === 'object' && t !== null && Number.isSafeInteger((t as { id?: unknown }).id) && typeof (t as { source?: unknown }).source === 'string';
  if (!Array.isArray(tokens) || !tokens.every(ok))
    throw new LepError('LEP_BAD_JSON', `${option}: ${file} has no "tokens" array of {id, source} records\nHINT: run lep init again to rewrite it${orList}.`);
  const ids = tokens.filter((t) => !TAKEN_SOURCES.has(t.source)).map((t) => t.id);
  if (ids.length === 0)
    throw new LepError('LEP_BAD_OPTION', `${option}: ${modelDir} has no new rows (lep init took every row from the base model): nothing would train\nHINT: train every embedding row (drop ${option}), or initialise from a tokenizer with new tokens.`);
  return ids;
}

/** One new id's record, as written. */
export interface ProvenanceEntry {
  id: number;
  token: string | null;
  source: string;
  old: number[];
  old_output?: number[];
  fallback?: ('input' | 'output')[];
  weights?: number[];
  weights_output?: number[];
  donor_kept_mean?: ('input' | 'output')[];
  dropped_unknown?: number;
}

/** The ids each side actually used, per the native report (zero rows, fallbacks). */
export function provenanceEntries(
  plan: InitPlan,
  tokenOf: (id: number) => string | undefined,
  report: NativeInitResult,
  outputRule: OutputRule,
): ProvenanceEntry[] {
  const zeroIn = new Set(report.input.zeroRows);
  const zeroOut = new Set(report.output?.zeroRows ?? []);
  const fbIn = new Set(report.input.fallbackRows);
  const fbOut = new Set(report.output?.fallbackRows ?? []);
  const donorIn = donorCodes(report.input.donor);
  const donorOut = donorCodes(report.output?.donor);
  return plan.rows.map((r, id) => {
    const e: ProvenanceEntry = { id, token: tokenOf(id) ?? null, source: r.source, old: [] };
    const fallback: ('input' | 'output')[] = [];
    if (r.kind === ROW_KIND.copy) e.old = [...r.ids];
    const codeIn = donorIn.get(id);
    const codeOut = donorOut.get(id);
    if (r.kind === ROW_KIND.donor) {
      const kept: ('input' | 'output')[] = [];
      if (codeIn) [e.old, e.weights] = codeIn;
      else kept.push('input');
      if (report.output && codeOut) [e.old_output, e.weights_output] = codeOut;
      else if (report.output) kept.push('output');
      if (kept.length) e.donor_kept_mean = kept;
    }
    // A donor row that kept the mean is recorded like a mean row on that side.
    if (r.kind === ROW_KIND.mean || (r.kind === ROW_KIND.donor && e.donor_kept_mean)) {
      const meanIn = r.kind === ROW_KIND.mean || !codeIn;
      const meanOut = r.kind === ROW_KIND.mean || !codeOut;
      if (meanIn) e.old = fbIn.has(id) ? [] : r.ids.filter((o) => !zeroIn.has(o));
      if (meanIn && fbIn.has(id)) fallback.push('input');
      if (report.output && meanOut) {
        let out = r.ids.filter((o) => !zeroOut.has(o));
        if (outputRule === 'first') out = out.slice(0, 1);
        if (fbOut.has(id)) {
          out = [];
          fallback.push('output');
        }
        if (!meanIn || out.length !== e.old.length || out.some((o, i) => o !== e.old[i])) e.old_output = out;
      }
    }
    if (fallback.length) e.fallback = fallback;
    if (r.droppedUnknown) e.dropped_unknown = r.droppedUnknown;
    return e;
  });
}

/** new id -> [old ids, weights] of one side's donor solve. */
function donorCodes(d: NativeDonorSide | undefined): Map<number, [number[], number[]]> {
  const m = new Map<number, [number[], number[]]>();
  if (!d) return m;
  d.rows.forEach((id, i) => {
    const a = d.offsets[i]!;
    const b = d.offsets[i + 1]!;
    m.set(id, [Array.from(d.oldIds.subarray(a, b)), Array.from(d.weights.subarray(a, b))]);
  });
  return m;
}

/** Writes the provenance file atomically; `header` holds the run's inputs and rules. */
export function writeProvenance(path: string, header: Record<string, unknown>, entries: ProvenanceEntry[]): void {
  const head = JSON.stringify(header, null, 2);
  const lines = entries.map((e) => `    ${JSON.stringify(e)}`);
  writeFileAtomic(path, `${head.slice(0, -2)},\n  "tokens": [\n${lines.join(',\n')}\n  ]\n}\n`);
}
