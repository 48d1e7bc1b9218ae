/**
 * The one typed declaration of lep's native surface (lep.node and lep_spm.node). Everything else in TS
 * imports these types; nothing else touches the addon objects untyped.
 */
import type { JobProgress, SpmProgress } from './progress.js';

/** A job running on its own native thread. `abort()` stops it at the next step boundary. */
export interface NativeJob<T> {
  promise: Promise<T>;
  abort(): void;
}

/** Progress callback; return false to stop the job. Events: ./progress.ts. */
export type NativeProgressFn<E = JobProgress> = ((event: E) => boolean | void) | null | undefined;

export interface NativeRuntimeInfo {
  torchVersion: string;
  /** File name of the BLAS library libtorch uses ("unknown" if none was found mapped). */
  blas: string;
  blasPath: string;
  /** OpenBLAS's kernel set in use (`openblas_get_corename`, e.g. "SkylakeX"); "" for another BLAS. */
  blasCore: string;
  /** OpenBLAS's build line (`openblas_get_config`: version, DYNAMIC_ARCH, ...); "" for another BLAS. */
  blasConfig: string;
  blasThreads: number;
  intraOpThreads: number;
  interOpThreads: number;
  /**
   * CPU training (and a float32 prompt in oneDNN) gives libtorch's pool the threads beside OpenBLAS's
   * (cpp/core/compute_threads.h): the BLAS is not OpenBLAS, or idle
   * workers of both sleep soon (OPENBLAS_THREAD_TIMEOUT, GOMP_SPINCOUNT or OMP_WAIT_POLICY as the libraries
   * read them when they loaded; ts/binding/threadWaits.ts, cpp/core/runtime.h).
   */
  trainingSharesPools: boolean;
  /** "oneDNN 2.6.3" when lep was built to call oneDNN for float32 products and the training loss softmax, else "". */
  onednn: string;
  /** oneDNN is built in and runs AVX2 kernels or better here (AVX2 + FMA, AVX-512; ONEDNN_MAX_CPU_ISA caps it), where its edge over the BLAS was measured. */
  onednnFitsCpu: boolean;
  /**
   * What runs a float32 model's products on the CPU now, in training (with its loss softmax) and in
   * products of several rows (prompts, scoring, batched decoding), and why (cpp/core/runtime.h, float32_products: the rule jobs
   * use; LEP_F32_PRODUCTS as it is at this call).
   */
  f32Products: string;
  /** Whether a CPU model's weights stay in the mmap'ed checkpoint or are copied (LEP_MMAP as it is at this call; cpp/core/runtime.h, weight_mapping). */
  weights: string;
  /** libtorch's CPU allocator in use and why (LEP_CPU_ALLOCATOR, read when lep.node loads; cpp/core/cpu_allocator.h). */
  allocator: string;
  cudaAvailable: boolean;
  cudaDevices: number;
  /** The CUDA version this libtorch was built with ("12.4"), or "" for a libtorch without CUDA. */
  cudaVersion: string;
  parallelInfo: string;
}

/** Flat model hyper-parameters (camelCase mirror of the fields lep reads from config.json). */
export interface NativeModelConfig {
  modelType: 'llama' | 'mistral' | 'qwen2';
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  maxPositionEmbeddings: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling?: {
    type: 'llama3';
    factor: number;
    lowFreqFactor: number;
    highFreqFactor: number;
    originalMaxPositionEmbeddings: number;
  };
  tieWordEmbeddings: boolean;
  attentionBias: boolean;
}

export type NativeDtype = 'f32' | 'bf16' | 'f16' | 'f64';
export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export interface NativeTensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

export interface NativeTensorData {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  data: Uint8Array;
}

export interface NativeLoadOptions {
  config: NativeModelConfig;
  /** safetensors files making up the checkpoint; empty = random initialisation from `seed`. */
  files: string[];
  /** safetensors files whose tensors replace same-named ones of `files` (a training checkpoint's weights). */
  overrides?: string[];
  device: string;
  dtype: NativeDtype;
  /** Random initialisation (no `files`): required, resolved by createModel (CREATE_MODEL_SPEC); the addon has no defaults. */
  seed?: number;
  initStd?: number;
  embedStd?: number;
}

export interface NativeScoreOptions {
  maxBatchTokens?: number;
  lastLogprobs?: boolean;
}

export interface NativeScoreResult {
  tokenLogprobs: Float32Array;
  lastLogprobs?: Float32Array;
}

/** Fully resolved by LepModel.generateTokens (GENERATE_SPEC holds the defaults; the addon has none). */
export interface NativeGenerateOptions {
  maxNewTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
  stopTokens: number[];
  seed: number;
}

export interface NativeGenerateResult {
  tokens: Int32Array;
  finishReason: 'stop' | 'length' | 'aborted';
}

/** LoRA adapters (cpp/core/lora.h): PEFT's semantics and names. */
export interface NativeLoraOptions {
  rank: number;
  alpha: number;
  dropout?: number;
  /** Projection names: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj. */
  targets: string[];
  /** Decoder layers that get adapters; empty = all. */
  layers?: number[];
  /** Fully trained modules: embed_tokens, lm_head. */
  modulesToSave?: string[];
  /** `peft`: B = 0, the output unchanged (default); `random`: B random too (gradient checks). */
  init?: 'peft' | 'random';
  /** Seed of A's (and a random B's) initialisation. */
  seed?: number;
}

export interface NativeTrainOptions {
  params: 'all' | 'embeddings' | 'lora';
  /** lora mode: the adapters to add (unless the model already has adapters). */
  lora?: NativeLoraOptions;
  rows?: ArrayLike<number>;
  data: string;
  evalData?: string;
  batchSize: number;
  gradAccum: number;
  steps: number;
  lr: number;
  /** Peak learning rate of the input embeddings and LM head (the same schedule); equal to lr unless set. */
  embeddingLr: number;
  minLrRatio: number;
  warmupSteps: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  clip: number;
  seed: number;
  evalEvery: number;
  evalBatches: number;
  checkpointEvery: number;
  checkpointDir?: string;
  keepCheckpoints: number;
  resumeFrom?: string;
  reportEvery: number;
  /** Recompute each decoder layer in backward instead of storing its activations. */
  activationCheckpointing: boolean;
  /** Data-parallel: join this c10d group (absent = one process). */
  dist?: NativeDistOptions;
}

export interface NativeDistOptions {
  rank: number;
  worldSize: number;
  masterAddr: string;
  masterPort: number;
  /** Seconds to wait for the other ranks (rendezvous and each collective). */
  timeoutS: number;
  gradSync: 'dense' | 'touched-rows';
  /** Dense gradient bucket size in MiB. */
  bucketMb: number;
}

export interface NativeTrainReport {
  stepsDone: number;
  lastLoss: number;
  /** -1 when there is no evaluation data */
  lastEvalLoss: number;
  stoppedEarly: boolean;
  lastCheckpoint: string;
  blasThreads: number;
  intraOpThreads: number;
  /** Where a float32 model's matrix products ran (TrainResult.products). */
  products: 'onednn' | 'libtorch';
  /** Positions per loss chunk and head rows given a gradient, per micro-batch (TrainResult.head). */
  lossChunkRows: number;
  headGradRows: number;
}

export interface NativeModel {
  train(options: NativeTrainOptions, onProgress: NativeProgressFn): NativeJob<NativeTrainReport>;
  /** Loss and gradients of one batch of blocks (gradient checks). */
  lossAndGrads(
    options: { tokens: Int32Array; rows: number; cols: number; lossMask?: Uint8Array; params: 'all' | 'embeddings' | 'lora'; activationCheckpointing?: boolean },
    onProgress: NativeProgressFn,
  ): NativeJob<{ loss: number; grads: Record<string, Float64Array>; products: 'onednn' | 'libtorch'; lossChunkRows: number; headGradRows: number }>;
  score(sequences: ArrayLike<number>[], options: NativeScoreOptions, onProgress: NativeProgressFn): NativeJob<NativeScoreResult[]>;
  generate(prompts: ArrayLike<number>[], options: NativeGenerateOptions, onProgress: NativeProgressFn): NativeJob<NativeGenerateResult[]>;
  save(options: { dir: string; dtype: NativeDtype; maxShardBytes?: number }, onProgress: NativeProgressFn): NativeJob<string[]>;
  /** Adds LoRA adapters (initialised from `seed`). */
  addLora(options: NativeLoraOptions, onProgress: NativeProgressFn): NativeJob<void>;
  /**
   * Adds adapters described by `options` and fills them (and the modules to save) from a PEFT adapter_model.safetensors.
   * `skipModulesToSave`: leave the model's own modules to save (their tensors in the file are not loaded).
   */
  loadLora(options: NativeLoraOptions & { file: string; skipModulesToSave?: boolean }, onProgress: NativeProgressFn): NativeJob<void>;
  /** Writes the adapters and modules to save with PEFT's names ("base_model.model.…"), atomically. */
  saveLora(options: { file: string; dtype: NativeDtype }, onProgress: NativeProgressFn): NativeJob<void>;
  /** W += (alpha / r)·B·A for every adapter; the adapters are dropped. */
  mergeLora(onProgress: NativeProgressFn): NativeJob<void>;
  /**
   * The adapter merged straight from the file (for a float32 model, loadLora then mergeLora bit for bit):
   * no adapter tensors are added in the model's dtype, so a bf16 model merges as a float32 copy of it
   * would (summed in float32 from the file's A and B, rounded once).
   */
  mergeLoraFile(options: NativeLoraOptions & { file: string; skipModulesToSave?: boolean }, onProgress: NativeProgressFn): NativeJob<void>;
  info(): { parameters: number; loraParameters: number; device: string; dtype: string };
  dispose(): void;
}

/** A GGUF metadata value with its GGUF type spelled out (the writer does not guess types). */
export type GgufValue =
  | { type: 'u32' | 'i32' | 'f32' | 'u64' | 'bool'; value: number | boolean }
  | { type: 'string'; value: string }
  | { type: 'array'; itemType: 'string'; value: string[] }
  | { type: 'array'; itemType: 'f32' | 'i32' | 'u32'; value: ArrayLike<number> };

export interface NativeGgufTensor {
  /** GGUF tensor name, e.g. blk.0.attn_q.weight */
  name: string;
  /** tensor name in the checkpoint */
  source: string;
  /** ggml storage type */
  type: 'f32' | 'f16' | 'bf16';
  /** llama-style q/k row permutation with this many heads (0 = none) */
  permuteHeads: number;
  /** generated tensor values (e.g. rope_freqs); `source` is ignored when given */
  data?: Float32Array;
}

export interface NativeGgufOptions {
  path: string;
  files: string[];
  metadata: [string, GgufValue][];
  tensors: NativeGgufTensor[];
}

export interface NativeAddon {
  info(): NativeRuntimeInfo;
  setThreads(threads: number): void;
  /** Worst relative error of a few f32/f64 BLAS products against a float64 loop (runtime.h: blas_self_check). */
  blasSelfCheck(): { f32Error: number; f64Error: number };
  /** Jobs of lep.node started and not yet settled (their promise resolved or rejected). */
  runningJobs(): number;
  /** Throws LEP_NO_CUDA (or LEP_BAD_ARGUMENT) for a device this libtorch and machine lack (core/device.h). */
  checkDevice(device: string): void;
  /** Ends the process at once with `code`, without C++ static destructors (cli/interrupt.ts, exitProcess). */
  exitNow(code: number): never;
  /** Stops this thread's running jobs, waiting up to `waitMs`; false if one still computes (cpp/common/NodeJob.h). */
  stopJobs(waitMs: number): boolean;
  inspectSafetensors(path: string): { tensors: NativeTensorInfo[]; metadata: Record<string, string> };
  readSafetensors(path: string): NativeTensorData[];
  writeSafetensors(path: string, tensors: NativeTensorData[], metadata?: Record<string, string>): void;
  loadModel(options: NativeLoadOptions, onProgress: NativeProgressFn): NativeJob<NativeModel>;
  /** Checks the checkpoint's tensor headers against the config (synchronous; no tensor data is read). */
  checkModelWeights(options: { config: NativeModelConfig; files: string[]; where?: string }): void;
  writeGguf(options: NativeGgufOptions, onProgress: NativeProgressFn): NativeJob<{ bytes: number }>;
}

/** A SentencePiece training job's options: trainer flags as `spm_train` takes them, without `--`. */
export interface NativeSpmTrainOptions {
  /** e.g. `{ input: 'corpus.txt', model_prefix: 'out/spm', vocab_size: '32000', model_type: 'bpe' }` */
  args: Record<string, string>;
  /** SentencePiece's global random seed (its self-test sampler; 0.1.97 samples input with a fixed seed); omitted keeps the last one set. */
  seed?: number;
  /** Also print SentencePiece's own log to stderr. */
  echo?: boolean;
}

/** A trained SentencePiece model as the tokenizer.json conversion needs it. */
export interface NativeSpmModel {
  pieces: string[];
  scores: Float32Array;
  /** ModelProto piece types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte. */
  types: Uint8Array;
  modelType: 'unigram' | 'bpe' | 'word' | 'char' | 'unknown';
  byteFallback: boolean;
  /** NormalizerSpec.name, e.g. `identity` or `nmt_nfkc`. */
  normalization: string;
  addDummyPrefix: boolean;
  removeExtraWhitespaces: boolean;
}

export interface NativeSpmAddon {
  version(): string;
  /** Trains on a worker thread; progress phases `load`, `bpe` or `unigram`, `save`, parsed from SentencePiece's log. */
  train(options: NativeSpmTrainOptions, onProgress: NativeProgressFn<SpmProgress>): NativeJob<{ log: string[] }>;
  /** Pieces, scores and types of a `.model` file (synchronous, milliseconds). */
  readModel(path: string): NativeSpmModel;
  /** SentencePiece's own ids for each text (the reference for parity checks). */
  encode(path: string, texts: string[], onProgress: NativeProgressFn<SpmProgress>): NativeJob<Int32Array[]>;
  /** As NativeAddon's. */
  stopJobs(waitMs: number): boolean;
  exitNow(code: number): never;
}

// ---- embedding initialisation (ts/init/, cpp/addon/AddonInit.cpp) ----------------------------------

/** An embedding-init plan and the files it reads and writes; see cpp/core/embedding_init.h. */
export interface NativeInitOptions {
  /** The old checkpoint's safetensors files. */
  files: string[];
  /** One output path per input file: the same tensors, embed_tokens and lm_head replaced. */
  outFiles: string[];
  /** Tied model: only embed_tokens is computed and written (a stored lm_head copy is dropped). */
  tied: boolean;
  /** Old tokenizer size; rows from here on are padding, never read into means. */
  oldTokens: number;
  /** New tokenizer size = plan rows. */
  newTokens: number;
  /** Rows written (>= newTokens; the rest are padding rows set to the global mean). */
  newRows: number;
  /** CSR: ids[offsets[i] .. offsets[i+1]) are the old ids of new row i (newTokens + 1 entries). */
  offsets: Int32Array;
  ids: Int32Array;
  /** Per new row: 0 mean of the usable listed rows, 1 copy of the one listed row, 2 global mean, 3 random. */
  kinds: Uint8Array;
  /** Output side: mean rows take their first usable sub-row instead of the mean. */
  outputFirst: boolean;
  /** Seed of random rows (the output side uses seed + 1). */
  seed: number;
  /** Rows of kind 4 (rules omp and focus) are solved in this donor's space; see cpp/core/donor_rows.h. */
  donor?: NativeDonorPlan;
}

/** The donor of rules omp/focus: its checkpoint, the token pairs it shares with the old model, and per new row its donor id. */
export interface NativeDonorPlan {
  files: string[];
  /** The donor shares one matrix: its output side is embed_tokens. */
  tied: boolean;
  method: 'omp' | 'focus';
  /** omp: shared tokens per new token. */
  k: number;
  dtype: 'float32' | 'float64';
  device: string;
  /** Pairs of the same token: old id, donor id. */
  sharedOld: Int32Array;
  sharedDonor: Int32Array;
  /** Per new row: its donor id (kind-4 rows), else -1. */
  rowDonor: Int32Array;
}

/** What a donor solve did on one side (cpp/core/donor_rows.h DonorSideReport). */
export interface NativeDonorSide {
  /** New ids built from the donor, ascending. */
  rows: Int32Array;
  /** CSR over rows: oldIds/weights[offsets[i] .. offsets[i+1]) of rows[i]. */
  offsets: Int32Array;
  oldIds: Int32Array;
  weights: Float64Array;
  /** New ids whose donor row is all zero: they kept the mean. */
  keptMean: Int32Array;
  /** Shared pairs usable on this side. */
  atoms: number;
  /** omp: relative residual |donor row - approximation| / |donor row| (0 for focus). */
  meanResidual: number;
  maxResidual: number;
}

/** What one side (input or output matrix) of an init job found. */
export interface NativeInitSide {
  /** Old ids whose row is all zero (never trained); left out of every mean. */
  zeroRows: Int32Array;
  /** New ids of mean rows that fell back to the global mean (no usable sub-row, or norm below 1e-12). */
  fallbackRows: Int32Array;
  /** Std of the usable old rows' elements (the scale of random rows). */
  oldStd: number;
  /** Present when the plan had a donor. */
  donor?: NativeDonorSide;
}

export interface NativeInitResult {
  input: NativeInitSide;
  /** Absent for tied models. */
  output?: NativeInitSide;
  /** safetensors dtype of the embedding matrices (kept from the old checkpoint). */
  dtype: SafetensorsDtype;
  hiddenSize: number;
  bytesWritten: number;
}

export interface NativeAddon {
  /** Computes the new embedding rows by the plan and writes the new checkpoint files (one job). */
  initEmbeddings(options: NativeInitOptions, onProgress: NativeProgressFn): NativeJob<NativeInitResult>;
  /**
   * The donor-space solve alone (cpp/core/sparse_code.h), synchronous: row-major targets (B x dim) and atoms
   * (N x dim); returns (B x width) atom indices and coefficients (focus: zero weights past a row's support).
   */
  sparseCode(options: { method: 'omp' | 'focus'; targets: Float64Array; atoms: Float64Array; dim: number; k?: number; dtype?: 'float32' | 'float64'; device?: string }): {
    indices: Int32Array;
    coeffs: Float64Array;
    width: number;
  };
}

// ---- propagation (ts/propagate/, cpp/addon/AddonPropagate.cpp) ----------------------------------------

/** One instruct model of a propagation job and where its checkpoint goes. */
export interface NativePropagateTarget {
  /**
   * This target's method, where it differs from the job's `method`. A job with overlap and conversion
   * targets accumulates the rows both systems share once (cpp/core/propagate.h).
   */
  method?: 'swap' | 'overlap' | 'conversion';
  instructFiles: string[];
  /** Rows copied unprojected from the instruct model: output id, instruct id. */
  copyTo?: Int32Array;
  copyFrom?: Int32Array;
  /** Rows of the written matrices (≥ donor rows; the extra ones must all be copied rows). */
  outRows: number;
  outDir: string;
}

/**
 * One propagation job; see cpp/core/propagate.h. Id lists are copied before the job starts. The single
 * target's fields (instructFiles … outDir) sit at the top level; NativePropagateManyOptions has `targets` instead.
 */
export interface NativePropagateOptions {
  method: 'swap' | 'overlap' | 'conversion';
  /** `normal` (AᵀA/AᵀB accumulated, Cholesky) or `qr` (streaming QR of [A | B]). */
  solver: 'normal' | 'qr';
  baseFiles: string[];
  donorFiles: string[];
  instructFiles: string[];
  /** Conversion: the averaging map T in CSR form over donor rows (offsets, then old ids). */
  tOffsets?: Int32Array;
  tIndices?: Int32Array;
  /** Pairs of the overlap set: donor id, old id. */
  overlapNew?: Int32Array;
  overlapOld?: Int32Array;
  /** Rows copied unprojected from the instruct model: output id, instruct id. */
  copyTo?: Int32Array;
  copyFrom?: Int32Array;
  /** Rows of the written matrices (≥ donor rows; the extra ones must all be copied rows). */
  outRows: number;
  outDir: string;
  /** Resolved by TS (propagate/propagateOptions.ts); the glue has no defaults of its own. */
  maxShardBytes: number;
  chunkRows: number;
  device: string;
}

export interface NativePropagateSide {
  side: 'input' | 'output';
  tensor: string;
  systemRows: number;
  /** ‖AP − B‖/‖B‖; null for swap. */
  residual: number | null;
  solverFellBack: boolean;
  /** How AᵀA was accumulated with the normal equations (cpp/core/gram_update.h); '' for swap and the QR solver. */
  gram: '' | 'syrk' | 'blocked' | 'full';
  overlapRows: number;
  overlapCosine: number;
  baseInstructCorrelation: number;
  solveSeconds: number;
  applySeconds: number;
  /** The part of applySeconds spent on the overlap cosines. */
  cosineSeconds: number;
}

export interface NativePropagateTargetReport {
  sides: NativePropagateSide[];
  files: string[];
  outRows: number;
  dtype: SafetensorsDtype;
  writeSeconds: number;
  /** Why this target was not written (LEP_NOT_RUN: an abort came first); null when it was. */
  error: { code: string; message: string } | null;
}

interface NativePropagateShared {
  hiddenSize: number;
  oldRows: number;
  donorRows: number;
  /** Mapping the models and solving every target's systems. */
  sharedSeconds: number;
  totalSeconds: number;
}

export type NativePropagateReport = NativePropagateTargetReport & NativePropagateShared;

/** Several instruct models in one job: the base side is built and factored once (cpp/core/propagate.h). */
export type NativePropagateManyOptions = Omit<NativePropagateOptions, Exclude<keyof NativePropagateTarget, 'method'>> & { targets: NativePropagateTarget[] };

export interface NativePropagateManyReport extends NativePropagateShared {
  /** One per target, in order; a target that failed has `error` set and the job still resolves. */
  targets: NativePropagateTargetReport[];
}

export interface NativeAddon {
  /** Propagates donor embeddings into the instruct model and writes its checkpoint into outDir (one job). */
  propagate(options: NativePropagateOptions, onProgress: NativeProgressFn): NativeJob<NativePropagateReport>;
  propagate(options: NativePropagateManyOptions, onProgress: NativeProgressFn): NativeJob<NativePropagateManyReport>;
}
