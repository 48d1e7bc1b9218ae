/**
 * `--progress text|json` of the stage commands (tokenizer train, init, data pack, train, propagate, calibrate, eval,
 * adapt): progress on stderr as lines for people (each command draws its own), or as the one stage
 * progress event (ts/stage/stageProgress.ts), one JSON object a line, for programs that drive lep.
 * In json mode a warning or note is a line of its own kind, {"stage","warning"}, so that every stderr line
 * before an error parses as JSON.
 */
import { LepError } from '../errors.js';
import { oneOf, type OptionSpec } from '../options/optionSpec.js';
import { PhaseClock, type StageProgress } from '../stage/stageProgress.js';

export const PROGRESS_FLAG = {
  schema: oneOf('text', 'json'),
  default: 'text',
  doc: 'Progress on stderr: text (lines for people) or json (one {"stage","phase","done","total","etaSeconds","detail"} object a line).',
} as const satisfies OptionSpec;

/** The --progress value, checked (the flag is the command's own, outside the stage's spec). */
export function progressMode(v: unknown): 'text' | 'json' {
  if (v === undefined || v === 'text' || v === 'json') return v ?? 'text';
  throw new LepError('LEP_BAD_OPTION', `Expected text or json for --progress but received ${JSON.stringify(v)}\nHINT: --progress json prints one JSON object a line on stderr; text (the default) prints lines for people.`);
}

/** Writes one stage progress event as a JSON line on stderr. */
export function writeProgressJson(e: StageProgress): void {
  process.stderr.write(`${JSON.stringify(e)}\n`);
}

/** The --progress json writer of one stage: counted events (ETA per phase), and warnings or notes. */
export interface JsonProgress {
  (phase: string, done: number, total: number, detail?: string): void;
  warning(text: string): void;
}

/** With --progress json, the writer for `stage`; with text, undefined (the command prints for people). */
export function jsonProgress(stage: string, mode: unknown): JsonProgress | undefined {
  if (progressMode(mode) === 'text') return undefined;
  const clock = new PhaseClock();
  const write = (phase: string, done: number, total: number, detail?: string) => writeProgressJson(clock.event(stage, phase, done, total, detail));
  return Object.assign(write, { warning: (text: string) => void process.stderr.write(`${JSON.stringify({ stage, warning: text })}\n`) });
}
