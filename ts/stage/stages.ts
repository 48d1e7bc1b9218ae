/**
 * The one stage contract: every stage of the method as `{ name, resolve, run }`, so that a program that
 * drives lep (a pipeline runner, a sweep) treats them all alike:
 *
 *   const resolved = stages.train.resolve({ steps: 300, lr: 2e-3 });      // checks, fills defaults, reads nothing
 *   await stages.train.run({ model: 'init', data: 'train.safetensors' }, 'trained', resolved, { signal, onProgress, tags });
 *
 * - `inputs` are the files and folders the stage reads (what its record lists with fingerprints), the
 *   options are its settings: a stage's spec (ts/…/…Options.ts) minus its input keys.
 * - `resolve` is the spec's check (a LepError naming the option and its CLI flag) with every default
 *   filled in (`run` hands the function only what differs from a default, as the function fills those
 *   in itself and refuses some that do not apply: init's solveDtype under the mean rule). What only the inputs decide (a rule that needs an auxiliary model, the warm-up from the
 *   step count) is checked and filled by `run`; the record's `resolved` holds both.
 * - `run` writes `outDir` and its stage record (`lep-stage.json`) last; `tags` go into the record as they
 *   are. Aborted through `signal`, it rejects with LEP_ABORTED.
 * - `onProgress` gets the one stage progress event (stage/stageProgress.ts: stage, phase, done of total,
 *   ETA, a line for people), whichever stage runs.
 *
 * Each `run` calls the stage's function (trainTokenizer, initEmbeddings, …), which stays the API with the
 * stage's own richer progress events; this module only gives them one shape.
 */
import { throwIfAborted } from '../binding/runJob.js';
import { calibrate, type CalibrateOptions, type CalibrateResult } from '../calibrate/calibrate.js';
import { CALIBRATE_SPEC } from '../calibrate/calibrateOptions.js';
import { initEmbeddings, type InitEmbeddingsOptions, type InitEmbeddingsResult } from '../init/initEmbeddings.js';
import { INIT_SPEC } from '../init/initOptions.js';
import { checkOptions, withDefaults, type OptionSpecs } from '../options/optionSpec.js';
import { propagate, type PropagateManyResult, type PropagateOptions, type PropagateResult } from '../propagate/propagate.js';
import { PROPAGATE_SPEC } from '../propagate/propagateOptions.js';
import { EXTEND_SPEC } from '../tokenizer/extendOptions.js';
import type { ExtendOptions } from '../tokenizer/extend.js';
import { extendTokenizerDir, type ExtendTokenizerDirResult } from '../tokenizer/extendTokenizerDir.js';
import { SHRINK_DIR_SPEC } from '../tokenizer/shrinkOptions.js';
import { shrinkTokenizerDir, type ShrinkTokenizerDirOptions, type ShrinkTokenizerDirResult } from '../tokenizer/shrinkTokenizerDir.js';
import { trainTokenizer, type TrainTokenizerOptions, type TrainTokenizerResult } from '../tokenizer/train.js';
import { TOKENIZER_TRAIN_SPEC } from '../tokenizer/trainTokenizerOptions.js';
import { trainModel, type TrainOptions, type TrainResult } from '../train/trainModel.js';
import { TRAIN_SPEC } from '../train/trainOptions.js';
import { trainEventDetail } from '../train/trainEventDetail.js';
import { PhaseClock, type StageProgress } from './stageProgress.js';
import type { RecordedStage, StageTagOptions } from './stageRecord.js';

/** What every `run` takes besides inputs, output and options. */
export interface StageContext extends StageTagOptions {
  /** Aborts the stage: `run` rejects with a LepError `LEP_ABORTED`. */
  signal?: AbortSignal;
  /** The stage's progress, one event shape for every stage. */
  onProgress?: (event: StageProgress) => void;
}

export interface Stage<Inputs, Options, Result> {
  /** The stage its record names. */
  readonly name: RecordedStage;
  /** The options checked against the stage's spec, every default filled in; nothing is read. */
  resolve(options?: Options): Options;
  /** Runs the stage on `inputs` into `outDir`; its record is written last. */
  run(inputs: Inputs, outDir: string, resolved: Options, context?: StageContext): Promise<Result>;
}

/** What the run callbacks and the inputs take out of a stage function's options. */
type Ctx = 'signal' | 'onProgress' | 'tags';

/** A spec without the keys that are inputs. */
function without<T extends OptionSpecs>(spec: T, inputs: readonly string[]): OptionSpecs {
  return Object.fromEntries(Object.entries(spec).filter(([k]) => !inputs.includes(k)));
}

/** `resolve` of a stage: its spec minus the input keys; `extra` names the options outside the spec (checked by the stage). */
function resolver<O extends object>(spec: OptionSpecs, extra: readonly string[] = []): (options?: O) => O {
  return (options) => {
    const o = (options ?? {}) as O;
    checkOptions(spec, o, { kind: 'options' }, extra);
    return withDefaults(spec, o) as O;
  };
}

/**
 * The resolved options without those at their spec default, for the stage function (which fills them in
 * again): a default such as init's solveDtype is there even where the rule does not use it, and the
 * function refuses such an option when it is given.
 */
function given<O extends object>(spec: OptionSpecs, resolved: O): O {
  return Object.fromEntries(
    Object.entries(resolved).filter(([k, v]) => !(k in spec && spec[k]!.default !== undefined && JSON.stringify(spec[k]!.default) === JSON.stringify(v))),
  ) as O;
}

/** The stage progress of `stage`, each phase with its own clock (ETA). */
function progress(stage: RecordedStage, context: StageContext | undefined): (phase: string, done: number, total: number, detail?: string) => void {
  const clock = new PhaseClock();
  return (phase, done, total, detail) => context?.onProgress?.(clock.event(stage, phase, done, total, detail));
}

const TOKENIZER_INPUTS = ['like'] as const;
type TokenizerStageOptions = Omit<TrainTokenizerOptions, Ctx | (typeof TOKENIZER_INPUTS)[number]>;

/** lep tokenizer train: a SentencePiece BPE or Unigram tokenizer from a corpus (`like`: whose specials and chat template it carries). */
const tokenizer: Stage<{ corpus: string | readonly string[]; like?: string }, TokenizerStageOptions, TrainTokenizerResult> = {
  name: 'tokenizer',
  resolve: resolver(without(TOKENIZER_TRAIN_SPEC, TOKENIZER_INPUTS), ['corpus']),
  run: (inputs, outDir, resolved, context) => {
    const report = progress('tokenizer', context);
    return trainTokenizer(inputs.corpus, outDir, {
      ...given(TOKENIZER_TRAIN_SPEC, resolved),
      ...(inputs.like === undefined ? {} : { like: inputs.like }),
      tags: context?.tags,
      signal: context?.signal,
      onProgress: (e) => report(e.phase, e.done, e.total, `${e.phase} ${e.done}/${e.total}`),
    });
  },
};

/** lep tokenizer extend: the original vocabulary with the donor's new pieces appended (ids kept). */
const extend: Stage<{ original: string; donor: string }, ExtendOptions, ExtendTokenizerDirResult> = {
  name: 'extend',
  resolve: resolver(EXTEND_SPEC),
  run: async (inputs, outDir, resolved, context) => {
    throwIfAborted(context?.signal);
    const report = progress('extend', context);
    report('extend', 0, 1);
    const r = extendTokenizerDir(inputs.original, inputs.donor, outDir, { ...given(EXTEND_SPEC, resolved), tags: context?.tags });
    report('extend', 1, 1, `${r.stats.newTokens} tokens added`);
    return r;
  },
};

const SHRINK_INPUTS = ['corpus', 'donorDir'] as const;
type ShrinkStageOptions = Omit<ShrinkTokenizerDirOptions, Ctx | (typeof SHRINK_INPUTS)[number]>;

/** lep tokenizer shrink: the original vocabulary shrunk to what the corpus uses (and extended with the donor's pieces). */
const shrink: Stage<{ original: string; corpus?: string | readonly string[]; donor?: string }, ShrinkStageOptions, ShrinkTokenizerDirResult> = {
  name: 'shrink',
  resolve: resolver(without(SHRINK_DIR_SPEC, SHRINK_INPUTS), ['read', 'extend']),
  run: (inputs, outDir, resolved, context) => {
    const report = progress('shrink', context);
    return shrinkTokenizerDir(inputs.original, outDir, {
      ...given(SHRINK_DIR_SPEC, resolved),
      ...(inputs.corpus === undefined ? {} : { corpus: typeof inputs.corpus === 'string' ? [inputs.corpus] : [...inputs.corpus] }),
      ...(inputs.donor === undefined ? {} : { donorDir: inputs.donor }),
      tags: context?.tags,
      onProgress: (e) => report('count', e.bytes, 0, `${e.texts} texts, ${(e.bytes / 1e6).toFixed(1)} MB read`),
    });
  },
};

const INIT_INPUTS = ['auxModel'] as const;
type InitStageOptions = Omit<InitEmbeddingsOptions, Ctx | 'onWarning' | (typeof INIT_INPUTS)[number]>;

/** lep init: the model resized to the new tokenizer, new rows initialised (mean of sub-tokens, or omp/focus with `auxModel`). */
const init: Stage<{ model: string; tokenizer: string; auxModel?: string }, InitStageOptions, InitEmbeddingsResult> = {
  name: 'init',
  resolve: resolver(without(INIT_SPEC, INIT_INPUTS), ['idMap', 'copyRows']),
  run: (inputs, outDir, resolved, context) => {
    const report = progress('init', context);
    return initEmbeddings(inputs.model, inputs.tokenizer, outDir, {
      ...given(INIT_SPEC, resolved),
      ...(inputs.auxModel === undefined ? {} : { auxModel: inputs.auxModel }),
      tags: context?.tags,
      signal: context?.signal,
      onProgress: (e) => report(e.phase, e.done, e.total),
    });
  },
};

const TRAIN_INPUTS = ['data', 'evalData'] as const;
type TrainStageOptions = Omit<TrainOptions, Ctx | 'onResume' | (typeof TRAIN_INPUTS)[number]>;

/** lep train: the model trained on packed blocks (all parameters, embeddings only, given rows, or LoRA). */
const train: Stage<{ model: string; data: string; evalData?: string }, TrainStageOptions, TrainResult> = {
  name: 'train',
  resolve: resolver(without(TRAIN_SPEC, TRAIN_INPUTS), ['lora', 'distributed']),
  run: (inputs, outDir, resolved, context) => {
    const report = progress('train', context);
    return trainModel(inputs.model, outDir, {
      ...given(TRAIN_SPEC, resolved),
      data: inputs.data,
      ...(inputs.evalData === undefined ? {} : { evalData: inputs.evalData }),
      tags: context?.tags,
      signal: context?.signal,
      onProgress: (e) => {
        if (e.phase === 'train' || e.phase === 'eval') report(e.phase, e.done, e.total, trainEventDetail(e));
        else report(e.phase, e.done, e.total);
      },
    });
  },
};

const PROPAGATE_INPUTS = ['base', 'donor', 'lora'] as const;
type PropagateStageOptions = Omit<PropagateOptions, Ctx | 'onWarning' | 'instruct' | 'out' | (typeof PROPAGATE_INPUTS)[number]>;

/**
 * lep propagate: the donor's embeddings carried into the instruct model(s) (swap / overlap / conversion);
 * `lora`: a LoRA adapter trained with the embeddings, merged too. With several instruct models `outDir`
 * holds one folder per model, named as the instruct model's.
 */
const propagateStage: Stage<{ base: string; donor: string; instruct: string | readonly string[]; lora?: string }, PropagateStageOptions, PropagateResult | PropagateManyResult> = {
  name: 'propagate',
  resolve: resolver(without(PROPAGATE_SPEC, PROPAGATE_INPUTS)),
  run: (inputs, outDir, resolved, context) => {
    const report = progress('propagate', context);
    return propagate({
      ...given(PROPAGATE_SPEC, resolved),
      base: inputs.base,
      donor: inputs.donor,
      instruct: inputs.instruct,
      out: outDir,
      ...(inputs.lora === undefined ? {} : { lora: inputs.lora }),
      tags: context?.tags,
      signal: context?.signal,
      onProgress: (e) => {
        const target = 'target' in e && e.target !== undefined && typeof inputs.instruct !== 'string' ? `#${e.target + 1} ` : '';
        report(target + (e.phase === 'write' ? 'write' : `${'side' in e && e.side === 1 ? 'output' : 'input'} ${e.phase}`), e.done, e.total);
      },
    });
  },
};

const CALIBRATE_INPUTS = ['original', 'data', 'copyText'] as const;
type CalibrateStageOptions = Omit<CalibrateOptions, Ctx | 'onAnswers' | (typeof CALIBRATE_INPUTS)[number]>;

/** lep calibrate: a short LoRA fine-tune of the propagated model on the original's answers (self) or a chat dataset (data). */
const calibrateStage: Stage<{ model: string; original?: string; data?: string; copyText?: string }, CalibrateStageOptions, CalibrateResult> = {
  name: 'calibrate',
  resolve: resolver(without(CALIBRATE_SPEC, CALIBRATE_INPUTS), ['filter']),
  run: (inputs, outDir, resolved, context) => {
    const report = progress('calibrate', context);
    const { model, ...files } = inputs;
    return calibrate(model, outDir, {
      ...given(CALIBRATE_SPEC, resolved),
      ...Object.fromEntries(Object.entries(files).filter(([, v]) => v !== undefined)),
      tags: context?.tags,
      signal: context?.signal,
      onAnswers: (e) => report('answers', e.done, e.total, `answers ${e.done}/${e.total}`),
      onProgress: (e) => {
        if (e.phase === 'train') report('train', e.done, e.total, trainEventDetail(e));
      },
    });
  },
};

/** Every stage of the method under the one contract, by the name its record carries. */
export const stages = { tokenizer, extend, shrink, init, train, propagate: propagateStage, calibrate: calibrateStage } as const;
