/**
 * `lep calibrate`: the method's optional last step (docs/method.md §5) — a short LoRA fine-tune of a propagated
 * model, either
 *   - self-calibration (`mode: 'self'`): the ORIGINAL instruct model answers instruction prompts
 *     (greedy, resumable), the answers are filtered, copy-task examples are mixed in; or
 *   - instruction-tuning calibration (`mode: 'data'`): a chat dataset, optionally with copy examples.
 * Then LoRA training with the method's preset (`self` or `sft`; loss on assistant tokens only) writes the
 * merged model to OUT and the adapter (PEFT layout) to OUT/adapter, and last the stage record
 * OUT/lep-stage.json (stage/stageRecord.ts; it replaces the one the training step wrote there).
 *
 * Files in `workDir` (default OUT/calibration-data): answers.jsonl (+ .run.json), calibration.jsonl,
 * blocks-<vocabulary size>.safetensors (one per tokenizer, so models of two vocabularies can share it). The answers file is what is expensive; it is reused and resumed, so several models
 * can be calibrated from one set of answers (pass the same workDir).
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { LepError, optionError } from '../errors.js';
import { readTexts } from '../corpus/readCorpus.js';
import { LORA_PRESETS, type LoraOptions, type LoraPreset } from '../lora/loraOptions.js';
import type { JobOptions } from '../binding/runJob.js';
import { beginStage, STAGE_RECORD_FILE, stageInput, writeStageRecord, type StageTagOptions } from '../stage/stageRecord.js';
import { Tokenizer } from '../tokenizer/Tokenizer.js';
import { TRAIN_DEFAULTS, TRAIN_OUTPUT, trainModel, type TrainOptions, type TrainResult } from '../train/trainModel.js';
import { checkTrainDiskSpace } from '../train/trainDisk.js';
import { checkWritable } from '../util/prepareFileOutput.js';
import { readModelDir } from '../checkpoint/modelDir.js';
import { checkOptions, withDefaults, type OptionsOf } from '../options/optionSpec.js';
import { CALIBRATE_SPEC, checkCalibrateCombination, type CALIBRATE_TRAIN_KEYS } from './calibrateOptions.js';
import { buildCalibrationSet } from './buildCalibrationSet.js';
import { builtinCalibrationPrompts } from './calibrationPrompts.js';
import { copyExamples } from './copyExamples.js';
import { filterAnswers, scriptByLang, type FilterAnswersOptions } from './filterAnswers.js';
import { generateAnswers, type CalibrationPrompt, type GenerateAnswersOptions } from './generateAnswers.js';
import { packCalibrationSet } from './packCalibrationSet.js';
import { readChatDataset, type ChatRecord } from './readChatDataset.js';
import { checkOutputPath } from '../util/checkOutputPath.js';

/** The calibration options: CALIBRATE_SPEC (calibrateOptions.ts) gives each one's type, bounds, default and doc. */
export type CalibrateOptions = Omit<OptionsOf<typeof CALIBRATE_SPEC>, 'lora' | 'train'> &
  JobOptions &
  StageTagOptions & {
    /** LoRA settings over the preset's. */
    lora?: LoraOptions;
    /** lep train's options over the preset's (steps default: one epoch of the data). */
    train?: Pick<Partial<TrainOptions>, (typeof CALIBRATE_TRAIN_KEYS)[number]>;
    /** Called as the original model's answers are generated (self mode): prompts answered of all. */
    onAnswers?: GenerateAnswersOptions['onAnswers'];
    /** self: answer filter (see filterAnswers). Defaults to unfinished answers dropped, the answer's script checked by the prompt's `lang`, the repetition rule on. */
    filter?: FilterAnswersOptions<ChatRecord>;
  };

/** The keys of CalibrateOptions that are not options of the spec. */
const CALIBRATE_NON_SPEC_KEYS = ['onAnswers', 'filter', 'signal', 'onProgress', 'tags'];

export interface CalibrateResult {
  /** The calibrated model's directory (the merged model; its adapter in `adapter`). */
  outDir: string;
  /** @deprecated the 0.1.0 name of `outDir` (docs/migration.md). */
  out: string;
  adapter: string;
  examples: { generated: number; kept: number; rejected: Record<string, number>; copy: number };
  blocks: number;
  train: TrainResult;
}

export const DEFAULT_CALIBRATION_PROMPTS: number = CALIBRATE_SPEC.prompts.default;

async function prompts(o: CalibrateOptions & { prompts: string | number; corpora: string; seed: number }): Promise<CalibrationPrompt[]> {
  if (typeof o.prompts === 'string') return readPromptLines(o.prompts);
  return builtinCalibrationPrompts(resolve(o.corpora), { count: o.prompts, seed: o.seed });
}

/** A prompt file: {"messages": [..., {"role": "user", ...}], "id"?: ...} per line; ids default to the line number. */
function readPromptLines(file: string): CalibrationPrompt[] {
  if (!existsSync(file)) throw optionError('prompts', 'a prompt file (chat JSONL) or a count', file, '--prompts');
  const out: CalibrationPrompt[] = [];
  for (const [i, line] of readFileSync(file, 'utf8').split('\n').entries()) {
    if (line.trim() === '') continue;
    let v: { id?: unknown; messages?: { role?: unknown; content?: unknown }[] };
    try {
      v = JSON.parse(line) as typeof v;
    } catch (e) {
      throw new LepError('LEP_BAD_CHAT_DATA', `${file}:${i + 1}: not valid JSON (${(e as Error).message})`);
    }
    const last = Array.isArray(v.messages) ? v.messages[v.messages.length - 1] : undefined;
    if (!last || last.role !== 'user' || typeof last.content !== 'string')
      throw new LepError('LEP_BAD_CHAT_DATA', `${file}:${i + 1}: a prompt needs "messages" ending with a user turn`);
    out.push({ ...v, id: String(v.id ?? `line-${i + 1}`), messages: v.messages as CalibrationPrompt['messages'] });
  }
  if (out.length === 0) throw new LepError('LEP_CORPUS_EMPTY', `${file} holds no prompts`);
  return out;
}

export async function calibrate(modelDir: string, outDir: string, options: CalibrateOptions): Promise<CalibrateResult> {
  const stage = beginStage('calibrate');
  checkOptions(CALIBRATE_SPEC, options, { kind: 'options' }, CALIBRATE_NON_SPEC_KEYS);
  checkCalibrateCombination(options, { kind: 'options' });
  const o = withDefaults(CALIBRATE_SPEC, options);
  checkOutputPath(outDir, '--out', { MODEL_DIR: modelDir, '--original': options.original, '--data': options.data, '--prompts': typeof options.prompts === 'string' ? options.prompts : undefined, '--corpora': options.corpora, '--copy-text': options.copyText }, 'folder');
  const out = resolve(outDir);
  // The merged model must fit on --out's disk: refused now, before the answers are generated (minutes to
  // hours), not when the training that follows them starts. (LoRA checkpoints are small and not counted.)
  checkWritable(out, '--out', outDir);
  checkTrainDiskSpace(readModelDir(modelDir), out, { params: 'lora', dtype: o.train?.dtype ?? TRAIN_DEFAULTS.dtype, steps: 1, checkpointEvery: 1, keepCheckpoints: o.train?.keepCheckpoints ?? TRAIN_DEFAULTS.keepCheckpoints, startStep: 0, resume: true });
  const work = resolve(o.workDir ?? join(out, 'calibration-data'));
  // The training at the end reads its blocks from the work folder: one at OUT's top level or in its
  // checkpoints would be refused only then, after the answers (trainModel's check, TRAIN_OUTPUT).
  checkOutputPath(outDir, '--out', { '--work': join(work, 'blocks.safetensors') }, TRAIN_OUTPUT);
  mkdirSync(work, { recursive: true });
  // An earlier run's record would call this one finished until it is.
  rmSync(join(out, STAGE_RECORD_FILE), { force: true });
  const seed = o.seed;

  let generated: ChatRecord[];
  let rejected: Record<string, number> = {};
  let before: number;
  if (o.mode === 'self') {
    if (o.original === undefined) throw new LepError('LEP_INTERNAL', 'calibrate: mode self without original passed checkCalibrateCombination');
    if (!existsSync(join(o.original, 'config.json'))) throw optionError('original', 'a model directory', o.original, '--original');
    const ps = await prompts(o);
    const answers = join(work, 'answers.jsonl');
    await generateAnswers(o.original, ps, answers, { maxNewTokens: o.maxNewTokens, device: o.train?.device, dtype: o.train?.dtype, signal: o.signal, onAnswers: o.onAnswers });
    const records = await readChatDataset(answers, { signal: o.signal });
    before = records.length;
    const f = await filterAnswers(records, o.filter ?? { language: { script: scriptByLang() } });
    generated = f.kept;
    rejected = f.rejected;
  } else {
    if (o.data === undefined) throw new LepError('LEP_INTERNAL', 'calibrate: mode data without data passed checkCalibrateCombination');
    generated = await readChatDataset(o.data, { signal: o.signal });
    before = generated.length;
  }

  const nCopy = o.copyExamples;
  let copy: ReturnType<typeof copyExamples> = [];
  if (nCopy > 0 && o.copyText !== undefined) {
    const texts: string[] = [];
    for await (const line of readTexts(o.copyText, { mode: 'line' })) if (line.trim().length >= 20) texts.push(line.trim());
    copy = copyExamples(texts, nCopy, seed, o.copyLang);
  }
  const set = buildCalibrationSet({ generated, copy, maxGenerated: o.maxGenerated, seed, out: join(work, 'calibration.jsonl') });
  if (set.examples === 0) throw new LepError('LEP_CORPUS_EMPTY', 'the calibration set is empty (every answer was filtered out and no copy examples were asked for)\nHINT: add copy examples (--copy-examples N with --copy-text FILE; copyExamples with copyText in a recipe or the API), ask for more prompts (--prompts), or loosen the answer filter (the API\'s `filter` options).');

  const tok = Tokenizer.fromDir(modelDir);
  const blocksFile = join(work, `blocks-${tok.size}.safetensors`);
  const seqLen = o.seqLen;
  const packed = await packCalibrationSet(set.file, tok, seqLen, blocksFile, { signal: o.signal });

  const presetName = o.preset ?? (o.mode === 'self' ? 'self' : 'sft');
  const preset = LORA_PRESETS[presetName];
  const batchSize = o.train?.batchSize ?? TRAIN_DEFAULTS.batchSize;
  const steps = o.train?.steps ?? Math.max(1, Math.ceil(packed.blocks / batchSize));  // one epoch, as the method
  const trainOptions: TrainOptions = {
    ...preset.train,
    // The preset's warm-up (sft: 10 steps; self: 10 too), at most a tenth of the steps as in lep train: a
    // short calibration (one epoch of a few blocks) would otherwise never reach its peak learning rate.
    warmupSteps: Math.min((preset.train as { warmupSteps?: number }).warmupSteps ?? 10, Math.floor(steps / 10)),
    ...o.train,
    batchSize,
    steps,
    data: blocksFile,
    params: 'lora',
    lora: { ...preset.lora, ...o.lora } as LoraOptions,
    signal: o.signal,
    onProgress: o.onProgress,
  };
  const train = await trainModel(modelDir, out, trainOptions);
  const result: CalibrateResult = { outDir: out, out, adapter: join(out, 'adapter'), examples: { generated: before, kept: generated.length, rejected, copy: copy.length }, blocks: packed.blocks, train };
  const { signal: _s, onProgress: _p, onAnswers: _a, filter, lora: _l, train: _t, tags, ...spec } = o;
  const { signal: _s2, onProgress: _p2, data: _d, lora, ...trained } = trainOptions;
  writeStageRecord(out, stage, {
    inputs: [
      stageInput('model', modelDir),
      ...(o.mode === 'self' && o.original !== undefined ? [stageInput('original', o.original)] : []),
      ...(o.mode === 'data' && o.data !== undefined ? [stageInput('data', o.data)] : []),
      ...(typeof o.prompts === 'string' ? [stageInput('prompts', o.prompts)] : []),
      ...(o.copyText !== undefined && nCopy > 0 ? [stageInput('copyText', o.copyText)] : []),
    ],
    // The LoRA and training settings as they ran (the preset's, then the caller's); a custom answer filter is named, not recorded.
    resolved: { ...spec, workDir: work, preset: presetName, lora, train: trained, filter: filter ? 'custom' : 'default' },
    result,
    tags,
  });
  return result;
}
