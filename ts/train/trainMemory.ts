/**
 * Training memory on the CPU, counted before the model loads: a run that cannot fit is refused with the
 * numbers and the options that would fit, instead of being killed by the kernel minutes later (an 8B
 * model's embeddings-only run in bf16 grew past 24 GiB while it allocated the optimizer).
 *
 * A lower bound: the weights in the compute dtype, plus per trainable parameter its gradient in the
 * compute dtype, and in bf16 its f32 master copy and f32 gradient, plus AdamW's two f32 moments
 * (cpp/core/trainer.cpp, cpp/core/adamw.cpp). A row set (`rows`) keeps the master copy, its gradient
 * and the moments for its rows only; the model's own gradient stays whole. Of the activations only each
 * layer's input is counted (batch x positions x hidden in the compute dtype: autograd, or activation
 * checkpointing, keeps it for the backward pass, whichever parameters train); temporaries are not, so a
 * refusal is never wrong (a run just under the bound can still run out), and a batch of 1e9 blocks is
 * refused instead of filling memory for minutes.
 */

import { parameterCounts, type ModelConfig } from '../checkpoint/config.js';
import { LepError } from '../errors.js';
import { gib, memoryClause, processMemory, spareBytes, type ProcessMemory } from '../processMemory.js';
import { newRowIds } from '../init/provenance.js';

export type TrainParams = 'all' | 'embeddings' | 'lora';
export type TrainDtype = 'f32' | 'bf16';

const GIB = 2 ** 30;


/** A step's tokens: blocks per batch (per rank) and positions per block. */
export interface TrainBatch {
  batchSize: number;
  positions: number;
}

/** Bytes a training run holds at least (see the module comment). LoRA counts the weights only. */
export function trainMemoryBytes(c: ModelConfig, params: TrainParams, dtype: TrainDtype, rows?: number, batch?: TrainBatch): number {
  const n = parameterCounts(c);
  const trainable = params === 'all' ? n.all : params === 'embeddings' ? n.embeddings : 0;
  const weightBytes = dtype === 'bf16' ? 2 : 4;
  // LoRA on some layers saves nothing below the lowest of them: counting none keeps the bound a bound.
  const activations = params === 'lora' ? 0 : activationBytes(c, dtype, batch);
  if (rows === undefined) return n.all * weightBytes + trainable * bytesPerTrainable(dtype) + activations;
  // The gradient of each whole matrix in the compute dtype; per trained row element an f32 master copy,
  // its f32 gradient and two moments.
  return n.all * weightBytes + trainable * weightBytes + ROW_ELEMENT_BYTES * rowParameters(c, rows) + activations;
}

/** Each layer's input for the backward pass: layers x batch x positions x hidden in the compute dtype. */
function activationBytes(c: ModelConfig, dtype: TrainDtype, batch?: TrainBatch): number {
  return batch ? c.numHiddenLayers * batch.batchSize * batch.positions * c.hiddenSize * (dtype === 'bf16' ? 2 : 4) : 0;
}

/** Per trainable parameter: its gradient, in bf16 also an f32 master copy and f32 gradient, and two f32 moments. */
function bytesPerTrainable(dtype: TrainDtype): number {
  return dtype === 'bf16' ? 2 + 4 + 4 + 8 : 4 + 8;
}

/** Per trained row element of a row set: f32 master copy, f32 gradient, two f32 moments. */
const ROW_ELEMENT_BYTES = 16;

/** Elements of a row set's rows across the trained matrices (input, and output when untied). */
function rowParameters(c: ModelConfig, rows: number): number {
  return rows * c.hiddenSize * (c.tieWordEmbeddings ? 1 : 2);
}


/** How much training only the rows `lep init` made needs: counted where the model has its provenance. */
function newRowsHint(c: ModelConfig, modelDir: string, gib: (b: number) => string): string {
  let rows: number | undefined;
  try {
    rows = newRowIds(modelDir, '--rows new').length;
  } catch {
    // Not a model lep init wrote (or no new rows): the bound per row element is all there is to say.
  }
  return rows === undefined
    ? `--rows FILE; recipe train.newRowsOnly: at least ${gib(trainMemoryBytes(c, 'embeddings', 'bf16', 0))} plus ${ROW_ELEMENT_BYTES} bytes per trained row element`
    : `--embeddings-only --dtype bf16 --rows new, its ${rows} rows; recipe train.newRowsOnly: at least ${gib(trainMemoryBytes(c, 'embeddings', 'bf16', rows))}`;
}

/**
 * Refuses a CPU training run whose lower bound exceeds `memory` (bytes of RAM + swap, or what
 * processMemory() found, cgroup limit included), naming the options that fit
 * (bf16, embeddings-only) or, when none does, the smallest run and what it needs.
 */
export function checkTrainMemory(c: ModelConfig, params: TrainParams, dtype: TrainDtype, modelDir: string, memory: number | ProcessMemory = processMemory(), rows?: number, batch?: TrainBatch): void {
  const m: ProcessMemory | Pick<ProcessMemory, 'bytes' | 'limit'> = typeof memory === 'number' ? { bytes: memory, limit: 'machine' as const } : memory;
  const { limit } = m;
  // What the run may use: less what this process holds already (Node, libtorch, other models), which
  // its cgroup or the machine must hold beside it.
  const available = spareBytes(m);
  const need = trainMemoryBytes(c, params, dtype, rows, batch);
  if (need <= available) return;
  const activations = params === 'lora' ? 0 : activationBytes(c, dtype, batch);
  // The batch alone is past the memory: the parameter options below cannot help.
  if (activations > available / 2)
    throw new LepError(
      'LEP_OUT_OF_MEMORY',
      `training ${modelDir} with --batch-size ${batch!.batchSize} needs at least ${gib(need)}, ${gib(activations)} of it for the layers' inputs of one batch ` +
        `(${c.numHiddenLayers} layers x ${batch!.batchSize} blocks x ${batch!.positions} positions x ${c.hiddenSize} in ${dtype}); ${memoryClause(m)}` +
        `\nHINT: lower --batch-size and raise --grad-accum to keep the global batch (${Math.max(1, Math.floor(batch!.batchSize * available / 2 / activations))} blocks per batch at most here).`,
    );
  const n = parameterCounts(c);
  const trainable = params === 'all' ? n.all : params === 'embeddings' ? n.embeddings : 0;
  const flags = (p: TrainParams, d: TrainDtype) => [p === 'embeddings' ? '--embeddings-only' : `--params ${p}`, `--dtype ${d}`].join(' ');
  // bf16 saves only on frozen weights (trainable ones keep an f32 master copy), so full training in bf16
  // never fits where f32 does not: the ways around are embeddings-only, then bf16.
  const options: [TrainParams, TrainDtype][] = [['embeddings', 'f32'], ['embeddings', 'bf16']];
  const fits = options.filter(([p, d]) => !(p === params && d === dtype) && trainMemoryBytes(c, p, d, rows) <= available);
  // Usually embeddings-only in bf16; where the embeddings are most of the model (a toy with a large
  // vocabulary), their f32 master copy can make it need more than the run refused, which is then named.
  const [smallP, smallD] = [...options, [params, dtype] as [TrainParams, TrainDtype]].reduce((a, b) => (trainMemoryBytes(c, b[0], b[1], rows) < trainMemoryBytes(c, a[0], a[1], rows) ? b : a));
  const smallest = `the smallest run, ${flags(smallP, smallD)}, needs at least ${gib(trainMemoryBytes(c, smallP, smallD, rows))}`;
  const hint = fits.length
    ? `${fits.map(([p, d]) => `${flags(p, d)} (at least ${gib(trainMemoryBytes(c, p, d, rows))})`).join(', or ')} fits; add --activation-checkpointing to keep the activations to one layer's.`
    : `${smallest}: ${limit === 'cgroup' ? "raise this process's memory limit (the container's or job's) to that and more, or train" : limit === 'ulimit' ? 'raise ulimit -v (or lift it), or train' : 'train'} on a machine with that much memory and more (or swap), or on a GPU with --device cuda` +
      // Training only some rows (the new tokens') keeps the f32 copies and moments for those rows only.
      (rows === undefined ? `; or train only the new tokens' rows (${newRowsHint(c, modelDir, gib)}).` : '.');
  const perTrainable =
    rows === undefined
      ? `${(trainable / 1e9).toFixed(2)} B trainable parameters x ${bytesPerTrainable(dtype)} bytes (gradient${dtype === 'bf16' ? ', f32 master weight and f32 gradient' : ''}, AdamW's two moments)`
      : `${(trainable / 1e9).toFixed(2)} B parameters of the trained matrices x ${dtype === 'bf16' ? 2 : 4} bytes (gradient) + ${gib(ROW_ELEMENT_BYTES * rowParameters(c, rows))} for the ${rows} trained rows (f32 master, gradient, AdamW's two moments)`;
  throw new LepError(
    'LEP_OUT_OF_MEMORY',
    `training ${modelDir} (${(n.all / 1e9).toFixed(2)} B parameters) with ${flags(params, dtype)} needs at least ${gib(need)}: ` +
      `${gib(n.all * (dtype === 'bf16' ? 2 : 4))} of weights in ${dtype}` +
      (trainable ? ` + ${perTrainable}` : '') +
      (activations ? ` + ${gib(activations)} for the layers' inputs of one batch, other activations not counted` : ', activations not counted') +
      `; ${memoryClause(m)}\nHINT: ${hint}`,
  );
}
