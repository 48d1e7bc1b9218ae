/**
 * Tokenizer training through SentencePiece (docs/method.md §1: the BPE and Unigram variants), written as a
 * Hugging Face tokenizer directory in the layout of Llama-2/Mistral tokenizers.
 *
 *   1. options checked; special tokens planned (`trainSpecials.ts`, optionally imitating `like`);
 *   2. the corpus streams through `readTexts` (files, globs, JSONL, gzip, NFKC, script filter, caps) into a
 *      temporary one-sentence-per-line file, sampled with a seed when asked (`writeTrainingText.ts`) —
 *      nothing but one read chunk (and the sample, if any) is held in memory here;
 *   3. SentencePiece trains on that file on a worker thread of the `lep_spm.node` addon (progress parsed
 *      from its log); text normalisation is off there (`identity`, no whitespace collapsing), because the
 *      Llama/Mistral tokenizer.json layout cannot reproduce SentencePiece's normaliser — normalise the
 *      corpus with `corpus.normalize` instead;
 *   4. the model's pieces, scores and types become tokenizer.json (`fromSentencePiece.ts`), checked to load
 *      in Hugging Face `tokenizers`;
 *   5. written atomically: tokenizer.json, tokenizer_config.json, tokenizer.model (SentencePiece's own
 *      model, for `spm_encode` and slow tokenizers), the resolved run (`lep_tokenizer_run.json`) and last
 *      the stage record (`lep-stage.json`, stage/stageRecord.ts).
 *
 * SentencePiece itself holds the sentences it trains on in memory (`inputSentenceSize` caps them), and it
 * cannot be interrupted: an abort during training takes effect when
 * the training step returns.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { getSpmNative } from '../binding/loadNative.js';
import type { ReadTextsOptions } from '../corpus/readCorpus.js';
import { LepError, callNative } from '../errors.js';
import { checkOptions, defaultsOf, withDefaults, type OptionsOf } from '../options/optionSpec.js';
import type { SpmProgress } from '../binding/progress.js';
import { runJob } from '../binding/runJob.js';
import { beginStage, corpusInputs, stageInput, writeStageRecord, type StageTagOptions } from '../stage/stageRecord.js';
import { writeFileAtomic } from '../util/atomicWrite.js';
import { checkOutputPath } from '../util/checkOutputPath.js';
import { freeBytes } from '../util/freeBytes.js';
import { trackTemp, untrackTemp } from '../util/tempPaths.js';
import { writeDirAtomicSync } from '../util/writeDirAtomic.js';
import type { AddedToken, Json } from './bpeJson.js';
import { RUN_FILE } from './extendTokenizerDir.js';
import { sentencePieceToTokenizerJson } from './fromSentencePiece.js';
import { saveTokenizerDir } from './shrink.js';
import { Tokenizer } from './Tokenizer.js';
import { planSpecials, trainedConfig, type SpecialsPlan } from './trainSpecials.js';
import { writeTrainingText } from './writeTrainingText.js';
import { TOKENIZER_TRAIN_SPEC } from './trainTokenizerOptions.js';

export { TOKENIZER_TRAIN_TYPES, type TokenizerTrainType } from './trainTokenizerOptions.js';

/** Defaults of `trainTokenizer`: TOKENIZER_TRAIN_SPEC's (trainTokenizerOptions.ts). */
export const TOKENIZER_TRAIN_DEFAULTS = defaultsOf(TOKENIZER_TRAIN_SPEC);

/** SentencePiece's model file in the output directory (the name Llama/Mistral checkpoints use). */
export const SPM_MODEL_FILE = 'tokenizer.model';

/** How the corpus is read: `readTexts` options; items are always lines (SentencePiece trains on lines). */
export type TrainCorpusOptions = Omit<ReadTextsOptions, 'mode' | 'signal'>;

export interface TokenizerTrainProgress {
  /** `corpus` (lines written), `load` (sentences SentencePiece kept), `bpe`/`unigram` (training), `save`. */
  phase: string;
  done: number;
  total: number;
  /** @deprecated the 0.1.0 name of `done` (docs/migration.md). */
  step: number;
}

/** The training options: TOKENIZER_TRAIN_SPEC (trainTokenizerOptions.ts) gives each one's type, bounds, default and doc. */
export type TrainTokenizerOptions = OptionsOf<typeof TOKENIZER_TRAIN_SPEC> &
  StageTagOptions & {
  /** How the corpus is read (format, text field, normalisation, script filter, caps). Defaults to `readTexts`' defaults. */
  corpus?: TrainCorpusOptions;
  onProgress?: (event: TokenizerTrainProgress) => void;
  /** Aborts reading the corpus; during SentencePiece training it takes effect when training returns. */
  signal?: AbortSignal;
};

/** The keys of TrainTokenizerOptions that are not options of the spec. */
const NON_SPEC_KEYS = ['corpus', 'onProgress', 'signal', 'tags'];

export interface TrainTokenizerStats {
  /** Lines written for SentencePiece and their characters (UTF-16 units). */
  lines: number;
  chars: number;
  /** Lines read from the corpus, before sampling and the length limit. */
  linesRead: number;
  /** Lines longer than `maxSentenceLength` bytes, left out. */
  skippedLongLines: number;
  /** Sentences SentencePiece trained on (after sampling), from its log. */
  sentences: number | undefined;
  /** Characters SentencePiece gave a piece of their own, from its log. */
  alphabetSize: number | undefined;
  vocabSize: number;
  merges: number | undefined;
  readSeconds: number;
  trainSeconds: number;
}

export interface TrainTokenizerResult {
  outDir: string;
  stats: TrainTokenizerStats;
  /** SentencePiece's log. */
  log: string[];
}

/** The resolved training run, as lep_tokenizer_run.json records it (with the corpus options). */
type Resolved = ReturnType<typeof resolved>;

function resolved(options: TrainTokenizerOptions) {
  const o = withDefaults(TOKENIZER_TRAIN_SPEC, options);
  const { type, vocabSize, characterCoverage, byteFallback, splitDigits, inputSentenceSize, shuffleInputSentence, seed, maxSentenceLength, maxPieceLength } = o;
  return {
    type, vocabSize, characterCoverage, byteFallback, splitDigits, userDefinedSymbols: [...(o.userDefinedSymbols ?? [])],
    inputSentenceSize, shuffleInputSentence, seed, threads: o.threads ?? availableParallelism(), maxSentenceLength, maxPieceLength,
  };
}

/** Checks options once, before anything is read (TOKENIZER_TRAIN_SPEC); messages name the option and its CLI flag. */
export function resolveTrainOptions(options: TrainTokenizerOptions): Resolved {
  checkOptions(TOKENIZER_TRAIN_SPEC, options, { kind: 'options' }, NON_SPEC_KEYS);
  return resolved(options);
}

/**
 * Trains a SentencePiece BPE or Unigram tokenizer on `corpus` (file, directory or glob specs) and writes
 * a Hugging Face tokenizer directory to `outDir`.
 */
export async function trainTokenizer(corpus: string | readonly string[], outDir: string, options: TrainTokenizerOptions = {}): Promise<TrainTokenizerResult> {
  const stage = beginStage('tokenizer');
  const o = resolveTrainOptions(options);
  checkOutputPath(outDir, '--out', { '--corpus': corpus, '--like': options.like }, 'folder');
  const plan = planSpecials(options.like, o.userDefinedSymbols, o.byteFallback);
  const metaCount = plan.metaPieces.length + (o.byteFallback ? 256 : 0);
  if (o.vocabSize <= metaCount)
    throw new LepError(
      'LEP_VOCAB_TOO_SMALL',
      `vocabSize (--vocab-size) ${o.vocabSize} leaves no room for text pieces: ${plan.metaPieces.length} special/user-defined pieces` +
        `${o.byteFallback ? ' + 256 byte-fallback pieces' : ''} take ${metaCount}\nHINT: raise --vocab-size well above ${metaCount} (Mistral uses 32000)`,
    );
  const spm = getSpmNative();
  const work = mkdtempSync(join(options.tmpDir ?? tmpdir(), 'lep-spm-'));
  // Tracked so that an interrupted `lep tokenizer train` removes the corpus copy before it exits.
  trackTemp(work);
  try {
    const t0 = performance.now();
    const input = join(work, 'corpus.txt');
    const written = await writeTrainingText(corpus, input, {
      read: { ...options.corpus, signal: options.signal },
      sampleSize: o.inputSentenceSize,
      shuffle: o.shuffleInputSentence,
      seed: o.seed,
      maxLineBytes: o.maxSentenceLength,
      onLines: (lines) => options.onProgress?.({ phase: 'corpus', done: lines, total: 0, step: lines }),
    }).catch((e: unknown) => {
      // The working copy of the corpus goes to a temporary folder the user did not name: say which, and
      // how to put it elsewhere.
      const code = (e as NodeJS.ErrnoException).code;
      if (e instanceof Error && typeof code === 'string' && (e as NodeJS.ErrnoException).errno !== undefined && !(e as NodeJS.ErrnoException).path)
        throw new LepError('LEP_IO', `cannot write the working copy of the corpus, ${input}: ${code}\nHINT: it takes about the corpus's size (or --input-sentence-size lines): point --tmp-dir at a disk with room for it${code === 'EFBIG' ? ', or raise the file-size limit (ulimit -f)' : ''}.`, { cause: e });
      throw e;
    });
    options.onProgress?.({ phase: 'corpus', done: written.lines, total: written.lines, step: written.lines });
    if (written.lines === 0)
      throw new LepError(
        'LEP_CORPUS_EMPTY',
        `all ${written.linesRead} lines of the corpus are longer than maxSentenceLength (--max-sentence-length) ${o.maxSentenceLength} bytes\nHINT: raise --max-sentence-length, or split the text into shorter lines`,
      );
    const t1 = performance.now();
    const prefix = join(work, 'spm');
    const args = spmArgs(o, plan, input, prefix);
    let trained: { log: string[] };
    try {
      trained = await runJob<{ log: string[] }, SpmProgress>((onProgress) => spm.train({ args, seed: o.seed, echo: options.verbose ?? TOKENIZER_TRAIN_DEFAULTS.verbose }, onProgress), {
        signal: options.signal,
        onProgress: (e) => options.onProgress?.({ phase: e.phase, done: e.done, total: e.total, step: e.done }),
      });
    } catch (e) {
      throw explainTrainError(e, o, plan, work);
    }
    // SentencePiece reports that it starts saving (save 0/1); its job resolving is the save's end.
    options.onProgress?.({ phase: 'save', done: 1, total: 1, step: 1 });
    const t2 = performance.now();
    const modelFile = `${prefix}.model`;
    const model = callNative(() => spm.readModel(modelFile));
    const json = sentencePieceToTokenizerJson(model, { bosToken: plan.bos, eosToken: plan.eos, addBos: plan.addBos, addEos: plan.addEos });
    const config = trainedConfig(plan, json.added_tokens as AddedToken[]);
    // With user-defined pieces the layout is Hugging Face's non-legacy one (see fromSentencePiece.ts).
    if (json.pre_tokenizer && config.legacy === true) config.legacy = false;
    // Whatever lep writes must load in Hugging Face tokenizers unchanged: check before writing.
    Tokenizer.fromJson(JSON.stringify(json), config, join(outDir, 'tokenizer.json'));
    const stats: TrainTokenizerStats = {
      ...written,
      sentences: logNumber(trained.log, /(?:Loaded all|Sampled) (\d+) sentences/),
      alphabetSize: logNumber(trained.log, /Alphabet size=(\d+)/),
      vocabSize: model.pieces.length,
      merges: Array.isArray((json.model as Json).merges) ? ((json.model as Json).merges as unknown[]).length : undefined,
      readSeconds: (t1 - t0) / 1000,
      trainSeconds: (t2 - t1) / 1000,
    };
    const inputs = [...(await corpusInputs('corpus', corpus)), ...(options.like === undefined ? [] : [stageInput('like', options.like)])];
    const sentencepiece = Object.fromEntries(Object.entries(args).filter(([k]) => k !== 'input' && k !== 'model_prefix'));
    writeDirAtomicSync(outDir, '--out', (tmp) => {
      saveTokenizerDir(tmp, json, config, {
        [RUN_FILE]: {
          operation: 'train',
          corpus: typeof corpus === 'string' ? [corpus] : [...corpus],
          like: options.like === undefined ? null : resolve(options.like),
          options: { ...o, corpus: options.corpus ?? {} },
          sentencepiece,
          stats,
        },
      });
      writeFileAtomic(join(tmp, SPM_MODEL_FILE), readFileSync(modelFile));
      // Last: the stage record (the directory is then renamed into place as a whole).
      writeStageRecord(tmp, stage, { inputs, resolved: { ...o, corpus: options.corpus ?? {}, like: options.like === undefined ? null : resolve(options.like), sentencepiece }, result: { stats }, tags: options.tags });
    });
    return { outDir, stats, log: trained.log };
  } finally {
    rmSync(work, { recursive: true, force: true });
    untrackTemp(work);
  }
}

/** SentencePiece trainer flags for the resolved options and the planned special tokens. */
function spmArgs(o: Resolved, plan: SpecialsPlan, input: string, prefix: string): Record<string, string> {
  return {
    input,
    model_prefix: prefix,
    model_type: o.type,
    vocab_size: String(o.vocabSize),
    character_coverage: String(o.characterCoverage),
    byte_fallback: String(o.byteFallback),
    split_digits: String(o.splitDigits),
    // lep samples the input itself (writeTrainingText.ts: SentencePiece's sampler has a fixed seed).
    input_sentence_size: '0',
    num_threads: String(o.threads),
    max_sentence_length: String(o.maxSentenceLength),
    max_sentencepiece_length: String(o.maxPieceLength),
    // The Llama/Mistral tokenizer.json layout reproduces only these normaliser settings (see the module comment).
    normalization_rule_name: 'identity',
    remove_extra_whitespaces: 'false',
    add_dummy_prefix: 'true',
    ...plan.args,
  };
}

function logNumber(log: readonly string[], re: RegExp): number | undefined {
  for (const line of log) {
    const m = re.exec(line);
    if (m) return Number(m[1]);
  }
  return undefined;
}

/** Turns SentencePiece's own error texts into messages that name the option to change. */
function explainTrainError(e: unknown, o: Resolved, plan: SpecialsPlan, work: string): unknown {
  if (!(e instanceof LepError) || e.code !== 'LEP_SPM_TRAIN') return e;
  const small = /Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)/.exec(e.message);
  if (small) {
    const needed = Number(small[2]);
    const meta = plan.metaPieces.length + (o.byteFallback ? 256 : 0);
    return new LepError(
      'LEP_VOCAB_TOO_SMALL',
      `vocabSize (--vocab-size) ${o.vocabSize} is below the alphabet of this corpus: ${needed - meta} characters (characterCoverage ${o.characterCoverage}) ` +
        `+ ${meta} special${o.byteFallback ? ', byte-fallback' : ''} and user-defined pieces = ${needed}\n` +
        `HINT: raise --vocab-size to at least ${needed} (a useful vocabulary is many times that), or lower --character-coverage so rare characters fall back to bytes`,
      { cause: e },
    );
  }
  const large = /Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)/.exec(e.message);
  if (large)
    return new LepError(
      'LEP_VOCAB_TOO_LARGE',
      `vocabSize (--vocab-size) ${o.vocabSize} is more than this corpus supports: SentencePiece ${o.type === 'bpe' ? 'ran out of pairs to merge' : 'found too few candidate pieces'} at ${large[2]}\n` +
        `HINT: use more text (check --max-lines/--max-chars and --input-sentence-size) or a --vocab-size of at most ${large[2]}`,
      { cause: e },
    );
  // Its model and vocabulary are written into the working folder: a failed write there (a full disk)
  // surfaces only as SentencePiece's own check, e.g. "[output->WriteLine(os.str())]".
  if (/Write|output|open/i.test(e.message) && freeBytes(work) < 1 << 20)
    return new LepError('LEP_SPM_TRAIN', `SentencePiece could not write its model into ${work}: ${e.message}\nHINT: the disk holding it is full: point --tmp-dir at a disk with room (the model needs a few MB).`, { cause: e });
  return new LepError('LEP_SPM_TRAIN', `SentencePiece training failed: ${e.message}\nHINT: run with --verbose to see SentencePiece's log`, { cause: e });
}
