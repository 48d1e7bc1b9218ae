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

/** One job's progress: its phase (a new one restarts the ETA clock), label and fraction. */
interface Lane {
  phase: string;
  phaseStart: number;
  label: string;
  fraction: number | undefined;
}

/**
 * One progress line, shared by jobs that run side by side (the main job's pipelines): each job reports in
 * its own `lane`, with its own phase clock and ETA, and the line shows every running lane. A command with
 * one job at a time uses the default lane and prints exactly what it printed before lanes existed.
 */
export class ProgressLine {
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;
  private readonly lanes = new Map<string, Lane>();
  private timer: NodeJS.Timeout | undefined;

  constructor(options: ProgressLineOptions = {}) {
    this.stream = options.stream ?? process.stdout;
    this.tty = this.stream.isTTY === true;
    // unref: the timer never keeps the process alive on its own.
    this.timer = setInterval(() => this.print(undefined, false), options.everyMs ?? 15_000);
    this.timer.unref();
  }

  /**
   * The text of one lane: label, percentage, elapsed and ETA of its phase. `width`: at most this many
   * characters, the label cut short first (the numbers are what the reader looks for).
   */
  private laneLine(l: Lane, now: number, trim: boolean, width = Number.POSITIVE_INFINITY): string {
    const label = trim ? l.label.trim() : l.label;
    const elapsed = (now - l.phaseStart) / 1000;
    const f = l.fraction;
    const stats = f === undefined ? `(${formatDuration(elapsed)})` : `${(100 * f).toFixed(0).padStart(3)}% (${formatDuration(elapsed)}, ETA ${formatDuration(etaSeconds(elapsed, f) ?? Number.NaN)})`;
    const room = width - stats.length - 1;
    const shown = label.length <= room ? label : room >= 2 ? `${label.slice(0, room - 1)}…` : '';
    return `${shown} ${stats}`.slice(0, width);
  }

  /**
   * The text of the current state: every running lane (one: as it was labelled; several: side by side).
   * `width`: fit the line in this many characters, each lane getting its share.
   */
  line(now = Date.now(), width = Number.POSITIVE_INFINITY): string {
    const lanes = [...this.lanes.values()];
    if (lanes.length === 1) return this.laneLine(lanes[0]!, now, false, width);
    const share = Math.floor((width - 3 - 5 * (lanes.length - 1)) / lanes.length);
    return `   ${lanes.map((l) => this.laneLine(l, now, true, share)).join('  |  ')}`;
  }

  /**
   * The line rewritten in place on a terminal, narrower than the terminal: `\r\x1b[K` clears one screen
   * row only, so a wrapped line would leave its first rows behind on every update.
   */
  private live(now = Date.now()): string {
    return this.line(now, Math.max(20, (this.stream.columns || 80) - 1));
  }

  /**
   * Reports progress of `phase` in `lane` (a new phase name restarts that lane's ETA clock). `keep`: also
   * print this lane's state as a line of its own (a phase starting or ending, a result).
   */
  update(phase: string, label: string, fraction?: number, keep = false, lane = ''): void {
    let l = this.lanes.get(lane);
    if (l === undefined || l.phase !== phase) {
      l = { phase, phaseStart: Date.now(), label, fraction: undefined };
      this.lanes.set(lane, l);
    }
    l.label = label;
    // An event without a fraction (an evaluation loss in the middle of training) keeps the phase's last one.
    if (fraction !== undefined) l.fraction = Math.min(1, Math.max(0, fraction));
    if (this.tty || keep) this.print(keep ? lane : undefined, keep);
  }

  /** Prints `lane`'s state as a line of its own (`keep`), or the whole line. */
  private print(lane: string | undefined, keep: boolean): void {
    if (this.lanes.size === 0) return;
    const now = Date.now();
    const own = lane === undefined ? undefined : this.lanes.get(lane);
    if (!this.tty) return void this.stream.write(`${own && this.lanes.size > 1 ? this.laneLine(own, now, false) : this.line(now)}\n`);
    if (!keep) return void this.stream.write(`\r\x1b[K${this.live(now)}`);
    // A kept line on a terminal: that lane's line stays (whole: it may wrap), and the live line goes on below it.
    if (this.lanes.size === 1) return void this.stream.write(`\r\x1b[K${this.line(now)}\n`);
    this.stream.write(`\r\x1b[K${own ? this.laneLine(own, now, false) : this.line(now)}\n${this.live(now)}`);
  }

  /** Prints `text` (a heading, a note) as lines of their own, above the live line on a terminal. */
  note(text: string): void {
    this.stream.write(this.tty && this.lanes.size > 0 ? `\r\x1b[K${text}\n${this.live()}` : `${text}\n`);
  }

  /** Ends `lane`'s current phase: nothing more is printed for it until its next update. */
  done(lane = ''): void {
    if (!this.lanes.delete(lane)) return;
    if (this.tty) this.stream.write(this.lanes.size > 0 ? `\r\x1b[K${this.live()}` : '\r\x1b[K');
  }

  close(): void {
    for (const lane of [...this.lanes.keys()]) this.done(lane);
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
