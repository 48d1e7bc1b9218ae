/**
 * Progress of long CLI work (the main job): a label, a percentage and an ETA. On a terminal one line is
 * rewritten in place; in a log (not a TTY) a line is printed when a phase starts or ends and otherwise
 * every `everyMs` (15 s), from a timer, so a slow native step still shows the job is alive. The ETA is the
 * phase's elapsed time scaled by what is left of its fraction (a straight-line estimate: it is only as
 * good as the fraction is even in time: stage/stageProgress.ts, which `--progress json` uses too).
 */
import { etaSeconds } from '../stage/stageProgress.js';

export interface ProgressLineOptions {
  /** Milliseconds between log lines when nothing starts or ends. Defaults to `15000`. */
  everyMs?: number;
  /** Where lines go. Defaults to stdout. */
  stream?: NodeJS.WriteStream;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  return s >= 3600 ? `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min` : s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}

export class ProgressLine {
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;
  private phase: string | undefined;
  private phaseStart = 0;
  private label = '';
  private fraction: number | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(options: ProgressLineOptions = {}) {
    this.stream = options.stream ?? process.stdout;
    this.tty = this.stream.isTTY === true;
    // unref: the timer never keeps the process alive on its own.
    this.timer = setInterval(() => this.print(false), options.everyMs ?? 15_000);
    this.timer.unref();
  }

  /** The text of the current state: label, percentage, elapsed and ETA of the phase. */
  line(now = Date.now()): string {
    const elapsed = (now - this.phaseStart) / 1000;
    const f = this.fraction;
    if (f === undefined) return `${this.label} (${formatDuration(elapsed)})`;
    return `${this.label} ${(100 * f).toFixed(0).padStart(3)}% (${formatDuration(elapsed)}, ETA ${formatDuration(etaSeconds(elapsed, f) ?? Number.NaN)})`;
  }

  /**
   * Reports progress of `phase` (a new phase name restarts the ETA clock). `keep`: also print this as a
   * line of its own (a phase starting or ending, a result).
   */
  update(phase: string, label: string, fraction?: number, keep = false): void {
    const samePhase = phase === this.phase;
    if (!samePhase) {
      this.phase = phase;
      this.phaseStart = Date.now();
    }
    this.label = label;
    // An event without a fraction (an evaluation loss in the middle of training) keeps the phase's last one.
    if (fraction !== undefined) this.fraction = Math.min(1, Math.max(0, fraction));
    else if (!samePhase) this.fraction = undefined;
    if (this.tty || keep) this.print(keep);
  }

  private print(keep: boolean): void {
    if (this.phase === undefined) return;
    if (this.tty) this.stream.write(`\r\x1b[K${this.line()}${keep ? '\n' : ''}`);
    else this.stream.write(`${this.line()}\n`);
  }

  /** Ends the current phase: nothing more is printed for it until the next update. */
  done(): void {
    if (this.tty && this.phase !== undefined) this.stream.write('\r\x1b[K');
    this.phase = undefined;
  }

  close(): void {
    this.done();
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
