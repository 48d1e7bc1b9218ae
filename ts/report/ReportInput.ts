/**
 * What a report shows: the results table (rows shaped like the paper's Table 3: vocabulary x method,
 * docs/method.md §6), training-loss curves, and per-task scores. `results.json` is this object as JSON.
 */

/** One point of a training run; a step may carry a training loss, an evaluation loss, or both. */
export interface TrainPoint {
  step: number;
  /** Training loss (nats per token) at this report step. */
  loss?: number;
  /** Evaluation loss (nats per token) on the held-out blocks. */
  evalLoss?: number;
  /** Bits per character of the evaluation loss, when the evaluation data carries character counts. */
  bpc?: number;
}

/** One model: the original instruct model, or one vocabulary x propagation method. */
export interface ReportRow {
  /** `original`, `Extended`, `BPE`, ... */
  vocabulary: string;
  /** `-` for the original model, else `swap`, `overlap` or `conversion`. */
  method: string;
  /** Group scores in column order of first appearance, e.g. `{ 'Copy-EN': 0.9, QA: 0.3 }`; may be empty. */
  groups: Record<string, number>;
  /** The benchmark's weighted mean over datasets (docs/method.md §6). */
  microAvg?: number;
  /** Characters per token on held-out Russian text (higher: fewer tokens per character). */
  symbolsPerToken: number;
  /** Bits per character on held-out Russian text (lower is better; comparable across vocabularies). */
  bitsPerChar: number;
  /** Per-task scores, drawn as grouped bars. */
  tasks?: Record<string, number>;
}

/** One training run's curve, e.g. the embedding training of one vocabulary. */
export interface TrainingRun {
  label: string;
  points: TrainPoint[];
}

export interface ReportInput {
  title: string;
  /** When the run happened (ISO 8601 or any readable form). */
  date: string;
  /** Wall time of the whole run. */
  seconds: number;
  /** The machine in words, e.g. "2 cores, libtorch 1.13, OpenBLAS". */
  machine: string;
  rows: ReportRow[];
  training: TrainingRun[];
  /** Free-text remarks shown under the table. */
  notes?: string[];
}

/** How a row is named in legends: `original`, or `vocabulary / method`. */
export function modelLabel(row: Pick<ReportRow, 'vocabulary' | 'method'>): string {
  return row.method === '-' || row.method === '' ? row.vocabulary : `${row.vocabulary} / ${row.method}`;
}
