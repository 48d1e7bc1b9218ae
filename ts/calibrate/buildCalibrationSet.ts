/**
 * The calibration set (docs/method.md §5): generated (or instruction-dataset) conversations mixed with copy-task
 * examples, shuffled by a seed and written as chat JSONL, one `{"messages": [...], "source": ...}` a line,
 * the format `readChatDataset` reads and `packCalibrationSet` packs. The paper's self-calibration uses all
 * its judged answers plus 10000 copy examples; instruction-tuning calibration the whole dataset plus an
 * optional 2000 copy examples, so the mix is given in counts, not shares.
 */
import { optionError } from '../errors.js';
import { isSeed, seededRandom, shuffle } from '../util/random.js';
import type { ChatExample } from '../train/packChat.js';
import { writeFileAtomic } from '../util/atomicWrite.js';

export interface CalibrationSetOptions {
  /** Generated answers (self-calibration) or instruction-dataset conversations. An `id` field is kept. */
  generated: readonly (ChatExample & { id?: unknown })[];
  /** Copy-task examples (`copyExamples`). Defaults to none. */
  copy?: readonly ChatExample[];
  /** Generated examples to use at most, chosen by the seeded shuffle. Defaults to all. */
  maxGenerated?: number;
  /** Copy examples to use at most, chosen by the seeded shuffle. Defaults to all. */
  maxCopy?: number;
  /** Seed of the shuffles. Defaults to `DEFAULT_CALIBRATION_SEED`. */
  seed?: number;
  /** Where the chat JSONL goes (written atomically). */
  out: string;
}

export const DEFAULT_CALIBRATION_SEED = 1;

export interface CalibrationSetResult {
  file: string;
  examples: number;
  generated: number;
  copy: number;
}

/** One output line: the messages, where the example came from, and its id when it had one. */
export interface CalibrationLine extends ChatExample {
  source: 'generated' | 'copy';
  id?: unknown;
}

function cap(v: number | undefined, name: string, flag: string, all: number): number {
  if (v === undefined) return all;
  if (!Number.isSafeInteger(v) || v < 0) throw optionError(name, 'a non-negative integer', v, flag);
  return Math.min(v, all);
}

/** Mixes, shuffles and writes the calibration set; the same inputs and seed give a byte-identical file. */
export function buildCalibrationSet(options: CalibrationSetOptions): CalibrationSetResult {
  const seed = options.seed ?? DEFAULT_CALIBRATION_SEED;
  if (!isSeed(seed)) throw optionError('seed', 'an integer from 0 to 2^32 - 1', seed, '--seed');
  const copy = options.copy ?? [];
  const nGen = cap(options.maxGenerated, 'maxGenerated', '--max-generated', options.generated.length);
  const nCopy = cap(options.maxCopy, 'maxCopy', '--copy-examples', copy.length);
  const rand = seededRandom(seed);
  // Only the messages (and an id, for tracing an example back) go to training: fields such as `stopped`
  // or `tokens` describe the generation run, not the example.
  const lines: CalibrationLine[] = [
    ...shuffle([...options.generated], rand).slice(0, nGen).map((e): CalibrationLine => ({ messages: e.messages, source: 'generated', ...(e.id === undefined ? {} : { id: e.id }) })),
    ...shuffle([...copy], rand).slice(0, nCopy).map((e): CalibrationLine => ({ messages: e.messages, source: 'copy' })),
  ];
  const mixed = shuffle(lines, rand);
  writeFileAtomic(options.out, mixed.map((l) => `${JSON.stringify(l)}\n`).join(''));
  return { file: options.out, examples: mixed.length, generated: nGen, copy: nCopy };
}
