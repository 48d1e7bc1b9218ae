/**
 * One progress event for every stage, what the CLI shows and what `--progress json` prints, one JSON
 * object a line on stderr:
 *
 *   {"stage":"train","phase":"train","done":120,"total":300,"etaSeconds":41.9,"detail":"step 120/300 loss 3.210"}
 *
 * The ETA is a straight-line estimate: the phase's elapsed time scaled by what is left of it (as good
 * as the phase's units are even in time).
 */

export interface StageProgress {
  /** The stage (`tokenizer`, `init`, `data`, `train`, `propagate`, `calibrate`, …). */
  stage: string;
  /** The step inside the stage (the native job's phase, `answers`, `packing`, …). */
  phase: string;
  /** Units done of `total` (0: unknown); where a stage knows only a fraction, done of 1. */
  done: number;
  total: number;
  /** Seconds left in this phase, when `done` and `total` allow an estimate. */
  etaSeconds?: number;
  /** The human line ("step 120/300 loss 3.210"). */
  detail?: string;
}

/** Seconds left when `fraction` of a phase took `elapsed` seconds; undefined before any progress. */
export function etaSeconds(elapsed: number, fraction: number): number | undefined {
  if (!(fraction > 0)) return undefined;
  return fraction >= 1 ? 0 : (elapsed * (1 - fraction)) / fraction;
}

/** Turns counts into events with an ETA: each (stage, phase) starts its own clock when first seen. */
export class PhaseClock {
  private key = '';
  private start = 0;

  constructor(private readonly now: () => number = Date.now) {}

  event(stage: string, phase: string, done: number, total: number, detail?: string): StageProgress {
    const key = `${stage}\0${phase}`;
    const t = this.now();
    if (key !== this.key) {
      this.key = key;
      this.start = t;
    }
    const eta = total > 0 ? etaSeconds((t - this.start) / 1000, done / total) : undefined;
    return { stage, phase, done, total, ...(eta === undefined ? {} : { etaSeconds: Math.round(eta * 10) / 10 }), ...(detail === undefined ? {} : { detail }) };
  }
}
