/**
 * Learned Embedding Propagation (docs/method.md §4): carries the donor's embeddings (trained on the base model
 * with a new vocabulary) into an instruct model derived from that base.
 *
 *   1. read and check the three models (`checkInputs.ts`): architectures, hidden sizes, tensors, tokenizers;
 *   2. relate the donor's vocabulary to the base's by decoded string (`vocabularyMap.ts`): the averaging
 *      map T (conversion) and the overlap set C (overlap; cosines for every method);
 *   3. build the final tokenizer (`finalTokenizer.ts`): donor vocabulary + the instruct model's added
 *      tokens, special-token map and chat template; which rows are copied from the instruct model;
 *   4. one native job: float64 least squares per side, new embedding rows, the instruct checkpoint
 *      rewritten with them (cpp/core/propagate.h);
 *   5. config.json (new vocab_size), tokenizer files, and `propagate_report.json` beside the weights.
 */
import { copyFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { optionError } from '../errors.js';
import { getNative } from '../binding/loadNative.js';
import type { NativePropagateReport, NativePropagateSide } from '../binding/NativeTypes.js';
import { runJob, type JobOptions } from '../model/LepModel.js';
import { checkOutputPath } from '../util/checkOutputPath.js';
import { writeDirAtomic } from '../util/writeDirAtomic.js';
import { writeJsonAtomic } from '../util/atomicWrite.js';
import { checkFamily, readPropagateModel } from './checkInputs.js';
import { buildFinalTokenizer } from './finalTokenizer.js';
import { buildVocabularyMap } from './vocabularyMap.js';

export type PropagateMethod = 'swap' | 'overlap' | 'conversion';
export const PROPAGATE_METHODS: readonly PropagateMethod[] = ['swap', 'overlap', 'conversion'];
/** The paper's best method. */
export const DEFAULT_PROPAGATE_METHOD: PropagateMethod = 'conversion';
export type LstsqSolverName = 'normal' | 'qr';
export const LSTSQ_SOLVERS: readonly LstsqSolverName[] = ['normal', 'qr'];
export const DEFAULT_LSTSQ_SOLVER: LstsqSolverName = 'normal';
export const DEFAULT_PROPAGATE_CHUNK_ROWS = 4096;
/** Hugging Face's default `max_shard_size` ("5GB"). */
export const DEFAULT_PROPAGATE_MAX_SHARD_BYTES = 5_000_000_000;
/**
 * Below this Pearson correlation between the base and instruct embeddings the instruct model is probably
 * not derived from the base (fine-tuning keeps them above 0.9; unrelated models give about 0).
 */
export const DEFAULT_MIN_CORRELATION = 0.5;
export const PROPAGATE_REPORT_FILE = 'propagate_report.json';

export interface PropagateOptions extends JobOptions {
  /** The base model directory the donor was trained from (`--base`). */
  base: string;
  /** The donor: the base after `lep init` + embedding training, with its tokenizer (`--donor`). */
  donor: string;
  /** The instruct model derived from the base (`--instruct`). */
  instruct: string;
  /** Output model directory (`--out`); must differ from the inputs. */
  out: string;
  /** `swap`, `overlap` or `conversion` (`--method`). Defaults to `'conversion'`. */
  method?: PropagateMethod;
  /** Least-squares solver (`--solver`): `normal` (AᵀA, fast) or `qr` (streaming QR, for ill-conditioned systems). Defaults to `'normal'`. */
  solver?: LstsqSolverName;
  /** Rows converted to float64 at a time (`--chunk-rows`). Defaults to `4096`. */
  chunkRows?: number;
  /** Shard the written checkpoint above this many bytes (`--max-shard-bytes`; 0 = one file). Defaults to `5e9`. */
  maxShardBytes?: number;
  /** Where the float64 products run (`--device`): `cpu` or `cuda[:N]`. Defaults to `'cpu'`. */
  device?: string;
  /** Warn below this base/instruct embedding correlation (`--min-correlation`). Defaults to `0.5`. */
  minCorrelation?: number;
  /**
   * Keep the instruct model's own rows for every token the old vocabulary already has (the overlap set,
   * matched by decoded string) and take only the new tokens' rows from the method (`--keep-overlap-rows`).
   * Not one of the paper's methods: for Extended/Optimized vocabularies it leaves the instruct model's
   * handling of its old tokens untouched, which embedding training of all rows otherwise drifts (measured
   * on the toy family: Extended/swap sentence copy EN/RU 0.50/0.46 -> 0.93/0.91). Defaults to `false`.
   */
  keepOverlapRows?: boolean;
  /** Called with each warning as it arises (they are also in the result). Defaults to none. */
  onWarning?: (message: string) => void;
}

export interface PropagateSideResult extends NativePropagateSide {
  /** Warnings about this side (low base/instruct correlation, rank-deficient system). */
  warnings: string[];
}

export interface PropagateResult {
  out: string;
  method: PropagateMethod;
  solver: LstsqSolverName;
  sides: PropagateSideResult[];
  vocabulary: {
    oldSize: number;
    donorSize: number;
    finalSize: number;
    /** Embedding rows written (≥ finalSize when the donor matrix is padded). */
    rows: number;
    overlapTokens: number;
    averaging: { identityRows: number; averagedRows: number; emptyRows: number; entries: number };
    copiedRows: number;
    appendedTokens: string[];
  };
  hiddenSize: number;
  dtype: string;
  warnings: string[];
  timings: { prepareSeconds: number; nativeSeconds: number; writeSeconds: number; totalSeconds: number };
  files: string[];
}

function resolveOptions(o: PropagateOptions) {
  const method = o.method ?? DEFAULT_PROPAGATE_METHOD;
  if (!PROPAGATE_METHODS.includes(method)) throw optionError('method', 'swap, overlap or conversion', o.method, '--method');
  const solver = o.solver ?? DEFAULT_LSTSQ_SOLVER;
  if (!LSTSQ_SOLVERS.includes(solver)) throw optionError('solver', 'normal or qr', o.solver, '--solver');
  const chunkRows = o.chunkRows ?? DEFAULT_PROPAGATE_CHUNK_ROWS;
  if (!Number.isInteger(chunkRows) || chunkRows <= 0) throw optionError('chunkRows', 'a positive integer', o.chunkRows, '--chunk-rows');
  const maxShardBytes = o.maxShardBytes ?? DEFAULT_PROPAGATE_MAX_SHARD_BYTES;
  if (!Number.isInteger(maxShardBytes) || maxShardBytes < 0) throw optionError('maxShardBytes', 'a non-negative integer', o.maxShardBytes, '--max-shard-bytes');
  const minCorrelation = o.minCorrelation ?? DEFAULT_MIN_CORRELATION;
  if (typeof minCorrelation !== 'number' || !(minCorrelation >= -1 && minCorrelation <= 1))
    throw optionError('minCorrelation', 'a number in [-1, 1]', o.minCorrelation, '--min-correlation');
  const device = o.device ?? 'cpu';
  if (!/^(cpu|cuda(:\d+)?)$/.test(device)) throw optionError('device', 'cpu or cuda[:N]', o.device, '--device');
  for (const [name, flag] of [['base', '--base'], ['donor', '--donor'], ['instruct', '--instruct'], ['out', '--out']] as const)
    if (typeof o[name] !== 'string' || o[name] === '') throw optionError(name, 'a directory path', o[name], flag);
  const out = resolve(o.out);
  checkOutputPath(out, '--out', { '--base': o.base, '--donor': o.donor, '--instruct': o.instruct });
  return { method, solver, chunkRows, maxShardBytes, minCorrelation, device, out };
}

/** Propagates `donor`'s embeddings into `instruct` and writes the result to `out` (see the module doc). */
export async function propagate(options: PropagateOptions): Promise<PropagateResult> {
  const t0 = performance.now();
  const o = resolveOptions(options);
  const base = readPropagateModel('base', options.base);
  const donor = readPropagateModel('donor', options.donor);
  const instruct = readPropagateModel('instruct', options.instruct);
  checkFamily(base, donor, instruct);

  const map = await buildVocabularyMap(base.tokenizer, donor.tokenizer);
  const final = buildFinalTokenizer(donor.tokenizer, instruct.tokenizer);
  const rows = Math.max(donor.rows, final.size);
  // Rows copied unprojected from the instruct model: added/special tokens by string, and with
  // keepOverlapRows every overlap token (its old id is the instruct model's id for the same piece).
  const copyPairs: [number, number][] = [...final.copyRows];
  if (options.keepOverlapRows) {
    const taken = new Set(copyPairs.map(([to]) => to));
    for (let i = 0; i < map.overlap.newIds.length; i++)
      if (!taken.has(map.overlap.newIds[i]!) && map.overlap.oldIds[i]! < instruct.rows) copyPairs.push([map.overlap.newIds[i]!, map.overlap.oldIds[i]!]);
  }
  const copyTo = Int32Array.from(copyPairs.map(([to]) => to));
  const copyFrom = Int32Array.from(copyPairs.map(([, from]) => from));
  const t1 = performance.now();

  // Built aside and renamed into place: a killed propagate leaves no directory that looks finished.
  return writeDirAtomic(o.out, '--out', async (dir) => {
    const report: NativePropagateReport = await runJob(
      (p) =>
        getNative().propagate(
          {
            method: o.method,
            solver: o.solver,
            baseFiles: base.weightFiles,
            donorFiles: donor.weightFiles,
            instructFiles: instruct.weightFiles,
            ...(o.method === 'conversion' ? { tOffsets: map.averaging.offsets.subarray(0, donor.rows + 1), tIndices: map.averaging.indices } : {}),
            overlapNew: map.overlap.newIds,
            overlapOld: map.overlap.oldIds,
            copyTo,
            copyFrom,
            outRows: rows,
            outDir: dir,
            maxShardBytes: o.maxShardBytes,
            chunkRows: o.chunkRows,
            device: o.device,
          },
          p,
        ),
      options,
    );
    const t2 = performance.now();

    const warnings: string[] = [];
    const warn = (m: string): string => {
      warnings.push(m);
      options.onWarning?.(m);
      return m;
    };
    const sides: PropagateSideResult[] = report.sides.map((s) => {
      const w: string[] = [];
      if (s.baseInstructCorrelation < o.minCorrelation)
        w.push(
          warn(
            `the base and instruct ${s.tensor} correlate at only ${s.baseInstructCorrelation.toFixed(3)} (below ${o.minCorrelation}): ` +
              `the instruct model ${options.instruct} looks unrelated to the base ${options.base}, and propagation assumes it was fine-tuned from it` +
              '\nHINT: pass the base the instruct model was derived from (--base), or lower --min-correlation if this is intended.',
          ),
        );
      if (s.solverFellBack) w.push(warn(`the ${s.side} least-squares system is rank-deficient; it was solved with a rank-revealing lstsq`));
      return { ...s, warnings: w };
    });

    // Model directory files around the weights: config.json, tokenizer, generation config.
    writeJsonAtomic(join(dir, 'config.json'), { ...instruct.model!.rawConfig, vocab_size: rows });
    writeJsonAtomic(join(dir, 'tokenizer.json'), final.json);
    writeJsonAtomic(join(dir, 'tokenizer_config.json'), final.config);
    for (const f of ['special_tokens_map.json', 'generation_config.json', 'chat_template.jinja'])
      if (existsSync(join(options.instruct, f))) copyFileSync(join(options.instruct, f), join(dir, f));
    // tokenizer.model (SentencePiece) must describe the final vocabulary: the donor's, if it has one.
    if (existsSync(join(options.donor, 'tokenizer.model'))) copyFileSync(join(options.donor, 'tokenizer.model'), join(dir, 'tokenizer.model'));
    const t3 = performance.now();

    const result: PropagateResult = {
      out: o.out,
      method: o.method,
      solver: o.solver,
      sides,
      vocabulary: {
        oldSize: base.tokenizer.size,
        donorSize: donor.tokenizer.size,
        finalSize: final.size,
        rows,
        overlapTokens: map.overlap.newIds.length,
        averaging: {
          identityRows: map.averaging.identityRows,
          averagedRows: map.averaging.averagedRows,
          emptyRows: map.averaging.emptyRows,
          entries: map.averaging.indices.length,
        },
        copiedRows: copyPairs.length,
        appendedTokens: final.appended,
      },
      hiddenSize: report.hiddenSize,
      dtype: report.dtype,
      warnings,
      timings: {
        prepareSeconds: (t1 - t0) / 1000,
        nativeSeconds: (t2 - t1) / 1000,
        writeSeconds: report.writeSeconds,
        totalSeconds: (t3 - t0) / 1000,
      },
      files: [...report.files, 'config.json', 'tokenizer.json', 'tokenizer_config.json'],
    };
    writeJsonAtomic(join(dir, PROPAGATE_REPORT_FILE), {
      inputs: { base: resolve(options.base), donor: resolve(options.donor), instruct: resolve(options.instruct) },
      options: { method: o.method, solver: o.solver, chunkRows: o.chunkRows, maxShardBytes: o.maxShardBytes, device: o.device, minCorrelation: o.minCorrelation, keepOverlapRows: options.keepOverlapRows ?? false },
      ...result,
    });
    return result;
  });
}
