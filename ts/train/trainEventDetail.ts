import type { EvalProgress, TrainStepProgress } from '../binding/progress.js';

/**
 * The short line a progress display shows for a training event: `step 3/300 loss 5.069` or
 * `step 100 eval loss 5.274 bpc 1.902`. One wording for every caller that reports training (the stage
 * contract, adapt, `lep train --progress json`, calibration).
 */
export function trainEventDetail(e: TrainStepProgress | EvalProgress): string {
  if (e.phase === 'train') return `step ${e.done}/${e.total} loss ${e.loss.toFixed(3)}`;
  return `step ${e.done} eval loss ${e.evalLoss.toFixed(3)}${e.bpc === undefined ? '' : ` bpc ${e.bpc.toFixed(3)}`}`;
}
