/**
 * `lep init`: a model directory resized to a new tokenizer, every new embedding row initialised by
 * docs/method.md §2 (the plan: `buildInitPlan.ts`; the rows: cpp/core/embedding_init.*).
 *
 * Writes into `outDir`: the checkpoint with the same file layout as the old one (other tensors copied
 * through), config.json with `vocab_size` = rows and special-token ids remapped by string,
 * generation_config.json likewise, the new tokenizer's files, `init_provenance.json` (per new id the old
 * ids averaged), `manifest.json` (inputs with hashes, resolved options, counts; kept for one release, see
 * docs/migration.md) and last the stage record `lep-stage.json` (stage/stageRecord.ts).
 *
 * Rules `omp` and `focus` read an auxiliary model (`auxModel`, mergekit-tokensurgeon's "donor"; not the
 * donor of `lep propagate`): see docs/method.md §2, "Rules with an auxiliary model".
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';

import { getNative } from '../binding/loadNative.js';
import type { NativeDonorPlan, NativeInitResult } from '../binding/NativeTypes.js';
import { checkVocab, copyTokenizerFiles, inspectWeights, readModelDir } from '../checkpoint/modelDir.js';
import { callNative, LepError, optionError } from '../errors.js';
import { checkOptions, defaultsOf, withDefaults, type OptionsOf } from '../options/optionSpec.js';
import { runJob, type JobOptions } from '../binding/runJob.js';
import { ID_MAP_FILE, type IdMap } from '../tokenizer/shrink.js';
import { Tokenizer } from '../tokenizer/Tokenizer.js';
import { beginStage, stageInput, writeStageRecord, type StageInput, type StageTagOptions } from '../stage/stageRecord.js';
import { writeJsonAtomic } from '../util/atomicWrite.js';
import { checkOutputPath } from '../util/checkOutputPath.js';
import { writeDirAtomic } from '../util/writeDirAtomic.js';
import { buildInitPlan, planArrays, type RowSource } from './buildInitPlan.js';
import { checkInitCombination, INIT_SPEC } from './initOptions.js';
import { PROVENANCE_FILE, provenanceEntries, writeProvenance } from './provenance.js';

/** The defaults of INIT_SPEC (initOptions.ts). */
export const INIT_DEFAULTS = defaultsOf(INIT_SPEC);

export type { SolveDtype } from './initOptions.js';

/** The init options: INIT_SPEC (initOptions.ts) gives each one's type, bounds, default and doc. */
export type InitEmbeddingsOptions = Omit<OptionsOf<typeof INIT_SPEC>, 'idMap' | 'copyRows'> &
  JobOptions &
  StageTagOptions & {
    /** Optimized tokenizer: its id map (a path, or the object); `false` ignores one. Defaults to `<tokenizerDir>/id_map.json` when that file exists. */
    idMap?: string | IdMap | false;
    /** New token string -> old token string whose row it copies (e.g. a reserved token a new chat template uses). Defaults to none. */
    copyRows?: Record<string, string>;
    /** Called with each warning before the work starts (they are also in the result). Defaults to none. */
    onWarning?: (message: string) => void;
  };

/** The keys of InitEmbeddingsOptions that are not options of the spec. */
const INIT_NON_SPEC_KEYS = ['onWarning', 'signal', 'onProgress', 'tags'];

export interface InitSideSummary {
  /** Old rows that were all zero (never trained), left out of means. */
  zeroRows: number;
  /** New mean rows that fell back to the global mean. */
  fallbackRows: number;
  /** Std of the usable old rows (the scale of random rows). */
  oldStd: number;
  /** Rules omp/focus: rows built in the auxiliary model's space, rows that kept the mean (its row is all zero), shared tokens used, and omp's relative residual in that space. */
  donor?: { rows: number; keptMean: number; atoms: number; meanResidual: number; maxResidual: number };
}

export interface InitEmbeddingsResult {
  outDir: string;
  /** Old and new tokenizer sizes, and the rows written (>= newSize when padded). */
  oldSize: number;
  newSize: number;
  rows: number;
  /** New ids per row source (see `buildInitPlan`). */
  counts: Record<RowSource, number>;
  input: InitSideSummary;
  /** Absent for tied models. */
  output?: InitSideSummary;
  /** bos/eos/pad ids of config.json / generation_config.json that the new tokenizer has no counterpart for (removed). */
  droppedSpecialIds: string[];
  provenanceFile: string;
  seconds: number;
  /** Things that ran but may not be what was meant (e.g. omp's k not below the auxiliary model's width). */
  warnings: string[];
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function readIdMap(o: InitEmbeddingsOptions['idMap'], tokenizerDir: string): IdMap | undefined {
  if (o === false) return undefined;
  if (typeof o === 'object') return o;
  const path = o ?? join(tokenizerDir, ID_MAP_FILE);
  if (!existsSync(path)) {
    if (o === undefined) return undefined;
    throw optionError('idMap', 'an existing id_map.json', o, '--id-map');
  }
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as IdMap;
  } catch (e) {
    throw new LepError('LEP_BAD_JSON', `${path} is not valid JSON: ${(e as Error).message}`);
  }
}

/** The options with a default, resolved: what manifest.json records (with idMap and copyRows). */
type ResolvedInitOptions = typeof INIT_DEFAULTS;

/** Validates options once, before anything is read (INIT_SPEC and checkInitCombination); messages name the option and its CLI flag. */
export function resolveInitOptions(options: InitEmbeddingsOptions): ResolvedInitOptions {
  checkOptions(INIT_SPEC, options, { kind: 'options' }, INIT_NON_SPEC_KEYS);
  checkInitCombination(options, { kind: 'options' });
  const o = withDefaults(INIT_SPEC, options);
  return Object.fromEntries(Object.keys(INIT_DEFAULTS).map((k) => [k, o[k as keyof typeof o]])) as ResolvedInitOptions;
}

/**
 * Remaps bos/eos/pad ids (a number or a list) from old to new ids by token string; an id whose token the
 * new tokenizer lacks becomes the new tokenizer's own bos/eos/pad where it declares one, else is dropped
 * (and reported in `dropped`): a stale id would point at an unrelated token.
 */
function remapSpecialIds(
  json: Record<string, unknown>,
  map: (id: number) => number | undefined,
  own: (kind: 'bos' | 'eos' | 'pad') => number | undefined,
  where: string,
  dropped: string[],
): Record<string, unknown> {
  const out = { ...json };
  for (const kind of ['bos', 'eos', 'pad'] as const) {
    const key = `${kind}_token_id`;
    const v = out[key];
    if (v === undefined || v === null) continue;
    const one = (id: unknown): number | undefined => {
      const n = typeof id === 'number' ? (map(id) ?? own(kind)) : undefined;
      if (n === undefined) dropped.push(`${where} ${key} ${JSON.stringify(id)}`);
      return n;
    };
    const r = Array.isArray(v) ? [...new Set(v.map(one).filter((x) => x !== undefined))] : one(v);
    if (r === undefined || (Array.isArray(r) && r.length === 0)) delete out[key];
    else out[key] = r;
  }
  return out;
}

/** Initialises the embeddings of `modelDir` for the tokenizer in `tokenizerDir` and writes the model to `outDir`. */
export async function initEmbeddings(modelDir: string, tokenizerDir: string, outDir: string, options: InitEmbeddingsOptions = {}): Promise<InitEmbeddingsResult> {
  const started = Date.now();
  const stage = beginStage('init');
  const o = resolveInitOptions(options);
  modelDir = resolve(modelDir);
  tokenizerDir = resolve(tokenizerDir);
  outDir = resolve(outDir);
  checkOutputPath(outDir, '--out', {
    MODEL_DIR: modelDir,
    '--tokenizer': tokenizerDir,
    '--old-tokenizer': options.oldTokenizerDir,
    '--id-map': typeof options.idMap === 'string' ? options.idMap : undefined,
    '--aux-model': options.auxModel,
  });
  const model = readModelDir(modelDir);
  const oldTokDir = resolve(options.oldTokenizerDir ?? modelDir);
  const oldTok = Tokenizer.fromDir(oldTokDir);
  checkVocab(model, oldTok.size);
  const newTok = Tokenizer.fromDir(tokenizerDir);
  const idMap = readIdMap(options.idMap, tokenizerDir);
  const donorDir = options.auxModel === undefined ? undefined : resolve(options.auxModel);
  const donorModel = donorDir === undefined ? undefined : readModelDir(donorDir);
  const donorTok = donorDir === undefined ? undefined : Tokenizer.fromDir(donorDir);
  if (donorModel && donorTok) checkVocab(donorModel, donorTok.size);
  const warnings: string[] = [];
  // k rows of a d-dimensional space span all of it once k >= d: every new token is then fitted exactly
  // (residual ~0) by an ill-conditioned combination. Measured on the toy family (bench/README.md): k 64
  // with a width-64 auxiliary model was worse than the mean rule on every metric.
  if (o.rule === 'omp' && donorModel && o.ompK >= donorModel.config.hiddenSize)
    warnings.push(
      `ompK ${o.ompK} (--omp-k) is not below the auxiliary model's hidden size ${donorModel.config.hiddenSize}: OMP fits every new token exactly with an ill-conditioned combination of shared rows\n` +
        'HINT: use --omp-k well below the auxiliary model\'s hidden size (mergekit\'s default 64 is meant for donor LLMs thousands wide).',
    );
  for (const w of warnings) options.onWarning?.(w);
  const plan = await buildInitPlan(oldTok, newTok, { rule: o.rule, idMap, copyRows: options.copyRows, donor: donorTok });
  const rows = Math.ceil(plan.newSize / o.padToMultipleOf) * o.padToMultipleOf;
  const tied = model.config.tieWordEmbeddings;

  // Built aside and renamed into place: a killed init leaves no directory that looks finished.
  return writeDirAtomic(outDir, '--out', async (dir) => {
    const outFiles = model.weightFiles.map((f) => join(dir, basename(f)));
    const { rowDonor, ...arrays } = planArrays(plan);
    const donor: NativeDonorPlan | undefined =
      donorModel && plan.shared
        ? {
            files: donorModel.weightFiles,
            tied: donorModel.config.tieWordEmbeddings,
            method: o.rule as NativeDonorPlan['method'],
            k: o.ompK,
            dtype: o.solveDtype,
            device: o.device,
            sharedOld: Int32Array.from(plan.shared.old),
            sharedDonor: Int32Array.from(plan.shared.donor),
            rowDonor,
          }
        : undefined;
    const report: NativeInitResult = await runJob(
      (p) =>
        getNative().initEmbeddings(
          { files: model.weightFiles, outFiles, tied, oldTokens: plan.oldSize, newTokens: plan.newSize, newRows: rows, ...arrays, outputFirst: o.outputRule === 'first', seed: o.seed, ...(donor ? { donor } : {}) },
          p,
        ),
      options,
    );

    // Weights layout: the old one; the index rebuilt from what was written.
    const indexPath = join(dir, 'model.safetensors.index.json');
    if (existsSync(join(modelDir, 'model.safetensors.index.json'))) {
      const weightMap: Record<string, string> = {};
      let total = 0;
      for (const f of outFiles)
        for (const t of callNative(() => getNative().inspectSafetensors(f)).tensors) {
          weightMap[t.name] = basename(f);
          total += t.end - t.begin;
        }
      const sorted = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
      writeJsonAtomic(indexPath, { metadata: { total_size: total }, weight_map: sorted });
    }
    // Tokenizer files: the new tokenizer's only (the directory starts empty, so no stale tokenizer.model of the old one).
    copyTokenizerFiles(tokenizerDir, dir);

    const dropped: string[] = [];
    const oldToNew = (id: number): number | undefined => {
      const t = oldTok.idToToken(id);
      return t === undefined ? undefined : newTok.tokenToId(t);
    };
    const own = (kind: 'bos' | 'eos' | 'pad'): number | undefined => newTok.specialId(kind);
    writeJsonAtomic(join(dir, 'config.json'), { ...remapSpecialIds(model.rawConfig, oldToNew, own, 'config.json', dropped), vocab_size: rows });
    if (model.generationConfig)
      writeJsonAtomic(join(dir, 'generation_config.json'), remapSpecialIds(model.generationConfig, oldToNew, own, 'generation_config.json', dropped));

    const header = {
      format: 'lep-init-provenance/1',
      model: modelDir,
      old_tokenizer: oldTokDir,
      new_tokenizer: tokenizerDir,
      rule: o.rule,
      output_rule: o.outputRule,
      ...(donorDir ? { aux_model: donorDir, omp_k: o.rule === 'omp' ? o.ompK : undefined, solve_dtype: o.solveDtype } : {}),
      old_size: plan.oldSize,
      new_size: plan.newSize,
      rows,
      zero_rows: { input: Array.from(report.input.zeroRows), ...(report.output ? { output: Array.from(report.output.zeroRows) } : {}) },
    };
    const provenanceFile = join(outDir, PROVENANCE_FILE);
    writeProvenance(join(dir, PROVENANCE_FILE), header, provenanceEntries(plan, (id) => newTok.idToToken(id), report, o.outputRule));

    const side = (s: NativeInitResult['input']): InitSideSummary => ({
      zeroRows: s.zeroRows.length,
      fallbackRows: s.fallbackRows.length,
      oldStd: s.oldStd,
      ...(s.donor
        ? { donor: { rows: s.donor.rows.length, keptMean: s.donor.keptMean.length, atoms: s.donor.atoms, meanResidual: s.donor.meanResidual, maxResidual: s.donor.maxResidual } }
        : {}),
    });
    const result: InitEmbeddingsResult = {
      outDir,
      oldSize: plan.oldSize,
      newSize: plan.newSize,
      rows,
      counts: plan.counts,
      input: side(report.input),
      ...(report.output ? { output: side(report.output) } : {}),
      droppedSpecialIds: dropped,
      provenanceFile,
      seconds: (Date.now() - started) / 1000,
      warnings,
    };
    const hashed = (from: string, names: readonly string[]): Record<string, string> =>
      Object.fromEntries(names.filter((n) => existsSync(join(from, n))).map((n) => [n, sha256(join(from, n))]));
    const manifest = {
      stage: 'init',
      inputs: {
        model: { dir: modelDir, files: hashed(modelDir, ['config.json']), weights: Object.fromEntries(model.weightFiles.map((f) => [basename(f), statSync(f).size])) },
        oldTokenizer: { dir: oldTokDir, files: hashed(oldTokDir, ['tokenizer.json', 'tokenizer_config.json']) },
        newTokenizer: { dir: tokenizerDir, files: hashed(tokenizerDir, ['tokenizer.json', 'tokenizer_config.json', ID_MAP_FILE]) },
        ...(donorDir ? { auxModel: { dir: donorDir, files: hashed(donorDir, ['config.json', 'tokenizer.json', 'tokenizer_config.json']) } } : {}),
      },
      options: { ...o, idMap: idMap ? true : false, copyRows: options.copyRows ?? {}, tied },
      result: { ...result, outDir: undefined, provenanceFile: PROVENANCE_FILE, dtype: report.dtype, hiddenSize: report.hiddenSize, bytesWritten: report.bytesWritten },
    };
    writeJsonAtomic(join(dir, 'manifest.json'), manifest);
    // Last: the stage record (the directory is then renamed into place as a whole).
    const idMapFile = typeof options.idMap === 'string' ? resolve(options.idMap) : options.idMap === undefined && idMap ? join(tokenizerDir, ID_MAP_FILE) : undefined;
    const inputs: StageInput[] = [
      stageInput('model', modelDir),
      stageInput('tokenizer', tokenizerDir),
      ...(oldTokDir !== modelDir ? [stageInput('oldTokenizer', oldTokDir)] : []),
      ...(idMapFile ? [stageInput('idMap', idMapFile)] : []),
      ...(donorDir ? [stageInput('auxModel', donorDir)] : []),
    ];
    writeStageRecord(dir, stage, {
      inputs,
      resolved: { ...o, idMap: typeof options.idMap === 'object' ? options.idMap : (idMapFile ?? false), copyRows: options.copyRows ?? {}, oldTokenizerDir: oldTokDir, ...(donorDir ? { auxModel: donorDir } : {}) },
      result: manifest.result,
      tags: options.tags,
    });
    return result;
  });
}
