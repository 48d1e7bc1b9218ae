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
 *      model, for `spm_encode` and slow tokenizers) and the resolved run (`lep_tokenizer_run.json`).
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
import { LepError, callNative, optionError } from '../errors.js';
import type { SpmProgress } from '../binding/progress.js';
import { runJob } from '../binding/runJob.js';
import { writeFileAtomic } from '../util/atomicWrite.js';
import { checkOutputPath } from '../util/checkOutputPath.js';
import { trackTemp, untrackTemp } from '../util/tempPaths.js';
import { writeDirAtomicSync } from '../util/writeDirAtomic.js';
import type { AddedToken, Json } from './bpeJson.js';
import { RUN_FILE } from './extendTokenizerDir.js';
import { sentencePieceToTokenizerJson } from './fromSentencePiece.js';
import { saveTokenizerDir } from './shrink.js';
import { Tokenizer } from './Tokenizer.js';
import { planSpecials, trainedConfig, type SpecialsPlan } from './trainSpecials.js';
import { writeTrainingText } from './writeTrainingText.js';

export type TokenizerTrainType = 'bpe' | 'unigram';
export const TOKENIZER_TRAIN_TYPES: readonly TokenizerTrainType[] = ['bpe', 'unigram'];

/** Defaults of `trainTokenizer`; the method's authors used SentencePiece's defaults plus split digits and byte fallback. */
export const TOKENIZER_TRAIN_DEFAULTS = {
  type: 'bpe' as TokenizerTrainType,
  vocabSize: 32000,
  characterCoverage: 0.9995,
  byteFallback: true,
  splitDigits: true,
  inputSentenceSize: 0,
  shuffleInputSentence: true,
  seed: 0,
  maxSentenceLength: 4192,
  maxPieceLength: 16,
} as const;

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

export interface TrainTokenizerOptions {
  /** SentencePiece model: `bpe` or `unigram` (docs/method.md's BPE and Unigram variants). Defaults to `'bpe'`. */
  type?: TokenizerTrainType;
  /** Pieces in the vocabulary, special, byte-fallback and user-defined pieces included. Defaults to `32000`. */
  vocabSize?: number;
  /** Share of the corpus characters that get a piece of their own; the rarest rest fall back to bytes (or unk). Defaults to `0.9995`. */
  characterCoverage?: number;
  /** 256 `<0xNN>` pieces so that no character is unknown. Defaults to `true`. */
  byteFallback?: boolean;
  /** Never join digits into multi-digit pieces. Defaults to `true`. */
  splitDigits?: boolean;
  /** Strings that always stay one token (non-special added tokens); none may equal a special token. Defaults to none. */
  userDefinedSymbols?: readonly string[];
  /**
   * Lines SentencePiece trains on (0 = all), SentencePiece's `input_sentence_size`; the sample is held in
   * memory while the corpus is read. Defaults to `0`.
   */
  inputSentenceSize?: number;
  /** With `inputSentenceSize`, sample lines at random (reservoir) rather than take the first ones. Defaults to `true`. */
  shuffleInputSentence?: boolean;
  /** Seed of that sample (lep's own sampler: SentencePiece 0.1.97 samples with a fixed seed). Defaults to `0`. */
  seed?: number;
  /** SentencePiece training threads. Defaults to one per core. */
  threads?: number;
  /** Lines longer than this many UTF-8 bytes are left out (counted in the stats), as SentencePiece would. Defaults to `4192`. */
  maxSentenceLength?: number;
  /** Longest piece in characters. Defaults to `16`. */
  maxPieceLength?: number;
  /** A model directory whose special tokens and chat template the new tokenizer carries. Defaults to none. */
  like?: string;
  /** How the corpus is read (format, text field, normalisation, script filter, caps). Defaults to `readTexts`' defaults. */
  corpus?: TrainCorpusOptions;
  /** Folder for the temporary corpus file (as large as the text read). Defaults to the system temp folder. */
  tmpDir?: string;
  /** Also print SentencePiece's own log to stderr. Defaults to `false`. */
  verbose?: boolean;
  onProgress?: (event: TokenizerTrainProgress) => void;
  /** Aborts reading the corpus; during SentencePiece training it takes effect when training returns. */
  signal?: AbortSignal;
}

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

interface Resolved {
  type: TokenizerTrainType;
  vocabSize: number;
  characterCoverage: number;
  byteFallback: boolean;
  splitDigits: boolean;
  userDefinedSymbols: string[];
  inputSentenceSize: number;
  shuffleInputSentence: boolean;
  seed: number;
  threads: number;
  maxSentenceLength: number;
  maxPieceLength: number;
}

/** Checks options once, before anything is read; messages name the option and its CLI flag. */
export function resolveTrainOptions(o: TrainTokenizerOptions): Resolved {
  const d = TOKENIZER_TRAIN_DEFAULTS;
  const type = o.type ?? d.type;
  if (!TOKENIZER_TRAIN_TYPES.includes(type)) throw optionError('type', '"bpe" or "unigram"', type, '--type');
  const int = (v: number | undefined, dflt: number, name: string, flag: string, min: number, max = 2 ** 31 - 1) => {
    const x = v ?? dflt;
    if (!Number.isSafeInteger(x) || x < min || x > max) throw optionError(name, `an integer from ${min} to ${max}`, v, flag);
    return x;
  };
  const bool = (v: boolean | undefined, dflt: boolean, name: string, flag: string) => {
    if (v !== undefined && typeof v !== 'boolean') throw optionError(name, 'true or false', v, flag);
    return v ?? dflt;
  };
  const characterCoverage = o.characterCoverage ?? d.characterCoverage;
  if (typeof characterCoverage !== 'number' || !(characterCoverage > 0 && characterCoverage <= 1))
    throw optionError('characterCoverage', 'a number in (0, 1]', o.characterCoverage, '--character-coverage');
  const uds = o.userDefinedSymbols ?? [];
  if (!Array.isArray(uds)) throw optionError('userDefinedSymbols', 'an array of strings', uds, '--user-defined-symbol');
  return {
    type,
    vocabSize: int(o.vocabSize, d.vocabSize, 'vocabSize', '--vocab-size', 1),
    characterCoverage,
    byteFallback: bool(o.byteFallback, d.byteFallback, 'byteFallback', '--no-byte-fallback'),
    splitDigits: bool(o.splitDigits, d.splitDigits, 'splitDigits', '--no-split-digits'),
    userDefinedSymbols: [...uds],
    inputSentenceSize: int(o.inputSentenceSize, d.inputSentenceSize, 'inputSentenceSize', '--input-sentence-size', 0, Number.MAX_SAFE_INTEGER),
    shuffleInputSentence: bool(o.shuffleInputSentence, d.shuffleInputSentence, 'shuffleInputSentence', '--no-shuffle'),
    seed: int(o.seed, d.seed, 'seed', '--seed', 0, 2 ** 32 - 2),
    threads: int(o.threads, availableParallelism(), 'threads', '--spm-threads', 1, 1024),
    maxSentenceLength: int(o.maxSentenceLength, d.maxSentenceLength, 'maxSentenceLength', '--max-sentence-length', 1),
    maxPieceLength: int(o.maxPieceLength, d.maxPieceLength, 'maxPieceLength', '--max-piece-length', 1, 512),
  };
}

/**
 * Trains a SentencePiece BPE or Unigram tokenizer on `corpus` (file, directory or glob specs) and writes
 * a Hugging Face tokenizer directory to `outDir`.
 */
export async function trainTokenizer(corpus: string | readonly string[], outDir: string, options: TrainTokenizerOptions = {}): Promise<TrainTokenizerResult> {
  const o = resolveTrainOptions(options);
  checkOutputPath(outDir, '--out', { '--corpus': corpus, '--like': options.like });
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
      trained = await runJob<{ log: string[] }, SpmProgress>((onProgress) => spm.train({ args, seed: o.seed, echo: options.verbose ?? false }, onProgress), {
        signal: options.signal,
        onProgress: (e) => options.onProgress?.({ phase: e.phase, done: e.done, total: e.total, step: e.done }),
      });
    } catch (e) {
      throw explainTrainError(e, o, plan);
    }
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
    writeDirAtomicSync(outDir, '--out', (tmp) => {
      saveTokenizerDir(tmp, json, config, {
        [RUN_FILE]: {
          operation: 'train',
          corpus: typeof corpus === 'string' ? [corpus] : [...corpus],
          like: options.like === undefined ? null : resolve(options.like),
          options: { ...o, corpus: options.corpus ?? {} },
          sentencepiece: Object.fromEntries(Object.entries(args).filter(([k]) => k !== 'input' && k !== 'model_prefix')),
          stats,
        },
      });
      writeFileAtomic(join(tmp, SPM_MODEL_FILE), readFileSync(modelFile));
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
function explainTrainError(e: unknown, o: Resolved, plan: SpecialsPlan): unknown {
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
  return new LepError('LEP_SPM_TRAIN', `SentencePiece training failed: ${e.message}\nHINT: run with --verbose to see SentencePiece's log`, { cause: e });
}
