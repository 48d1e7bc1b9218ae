/**
 * The progress events native jobs report, as the C++ glue makes them (cpp/addon/convert.cpp,
 * progress_to_js; cpp/spm/SpmJob.h): one discriminated union over `phase`, camelCase throughout,
 * `done` of `total` in every event.
 *
 * Migration from 0.1.0 (docs/migration.md): events also carry `step` (now `done`) and the snake_case value
 * names (`grad_norm`, `tokens_per_s`, `eval_loss`, `allreduce_bytes`, `allreduce_wait_s`,
 * `allreduce_early_buckets`) for one minor release; they are typed as deprecated.
 */

interface Counted {
  /** Units of the phase done so far (steps, tokens generated, rows, tensors, files...). */
  done: number;
  /** Units the phase has in all (0 where unknown). */
  total: number;
  /** @deprecated the 0.1.0 name of `done`. */
  step: number;
}

/** `LepModel.load` / `createModel`: the model is in memory (one event, done = total = 1). */
export interface LoadProgress extends Counted {
  phase: 'load';
}

/** One decoding step of a batch: the token each prompt got (-1: that prompt had stopped before). */
export interface GenerateProgress extends Counted {
  phase: 'generate';
  /** Prompts still generating after this step. */
  active: number;
  tokens: number[];
}

/** Sequences scored so far. */
export interface ScoreProgress extends Counted {
  phase: 'score';
}

/** An optimizer step (every `reportEvery` steps and the last). */
export interface TrainStepProgress extends Counted {
  phase: 'train';
  loss: number;
  lr: number;
  gradNorm: number;
  /** Tokens the loss of this step was averaged over. */
  tokens: number;
  tokensPerS: number;
  /** Data-parallel (0 otherwise): bytes this rank all-reduced, seconds it then waited, buckets started during backward. */
  allreduceBytes: number;
  allreduceWaitS: number;
  allreduceEarlyBuckets: number;
  /** @deprecated 0.1.0 name of `gradNorm`. */
  grad_norm: number;
  /** @deprecated 0.1.0 name of `tokensPerS`. */
  tokens_per_s: number;
  /** @deprecated 0.1.0 name of `allreduceBytes`. */
  allreduce_bytes: number;
  /** @deprecated 0.1.0 name of `allreduceWaitS`. */
  allreduce_wait_s: number;
  /** @deprecated 0.1.0 name of `allreduceEarlyBuckets`. */
  allreduce_early_buckets: number;
}

/** An evaluation on held-out data (at step `done`; 0 = before training). */
export interface EvalProgress extends Counted {
  phase: 'eval';
  evalLoss: number;
  /** Bits per character, when the evaluation data is text (trainModel adds it). */
  bpc?: number;
  /** @deprecated 0.1.0 name of `evalLoss`. */
  eval_loss: number;
}

/** Files or tensors written (a model directory, the initialised checkpoint). */
export interface WriteProgress extends Counted {
  phase: 'write';
  /** Propagation to several instruct models: which one (its index) is being written. */
  target?: number;
}

/** Tensors written into a GGUF file. */
export interface GgufProgress extends Counted {
  phase: 'gguf';
}

/** Propagation: rows of a chunked pass over one side (0 = input embeddings, 1 = output head). */
export interface PropagateProgress extends Counted {
  phase: 'correlation' | 'solve' | 'apply';
  side: 0 | 1;
  /** Propagation to several instruct models: which one (its index) a per-target pass is for. */
  target?: number;
}

/** Embedding initialisation: rows of the input or output matrix (` donor`: the donor-model rules). */
export interface InitProgress extends Counted {
  phase: 'input' | 'output' | 'input donor' | 'output donor';
}

/** Any progress event of a lep.node job; switch on `phase`. */
export type JobProgress =
  | LoadProgress
  | GenerateProgress
  | ScoreProgress
  | TrainStepProgress
  | EvalProgress
  | WriteProgress
  | GgufProgress
  | PropagateProgress
  | InitProgress;

/** lep_spm.node's events: SentencePiece training phases read from its log, and `encode` (texts done). */
export interface SpmProgress extends Counted {
  phase: string;
}
