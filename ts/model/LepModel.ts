/**
 * A loaded model: the native LLaMA-family decoder plus its tokenizer. `score` and `generate` run on a
 * native thread; the event loop keeps turning; `signal` aborts them.
 */
import { LepError, optionError } from '../errors.js';
import { getNative } from '../binding/loadNative.js';
import type { JobProgress } from '../binding/progress.js';
import { abortedError, checkJobOptions, runJob, type JobOptions } from '../binding/runJob.js';
import type {
  NativeDtype,
  NativeGenerateResult,
  NativeModel,
  NativeScoreResult,
} from '../binding/NativeTypes.js';
import { checkVocab, readModelDir, type ModelDir } from '../checkpoint/modelDir.js';
import { checkTokenIds } from '../tokenizer/checkTokenIds.js';
import { Tokenizer } from '../tokenizer/Tokenizer.js';
import { checkPlainOptions } from '../options/checkPlainOptions.js';
import { checkOptions, withDefaults, type OptionsOf } from '../options/optionSpec.js';
import { GENERATE_SPEC } from './generateOptions.js';
import { LOAD_SPEC } from './loadOptions.js';

// The native result types under public names (the native surface itself is internal: binding/NativeTypes.ts).
export type ScoreResult = NativeScoreResult;
export type GenerateResult = NativeGenerateResult;
export type Dtype = NativeDtype;

/** LepModel.load's options: LOAD_SPEC (loadOptions.ts) gives each one's type, default and doc. */
export type LoadModelOptions = OptionsOf<typeof LOAD_SPEC>;

/** The keys of load's options that are not options of the spec (the job's). */
const LOAD_NON_SPEC_KEYS = ['signal', 'onProgress'];

/** The sampling options: GENERATE_SPEC (generateOptions.ts) gives each one's type, bounds, default and doc. */
export type GenerateOptions = OptionsOf<typeof GENERATE_SPEC> &
  JobOptions & {
    /** Called at each step with the token every prompt got (-1: that prompt had stopped), as they come. */
    onTokens?: (tokens: number[]) => void;
  };

/** The keys of GenerateOptions (and of `generate`'s own options) that are not options of the spec. */
const GENERATE_NON_SPEC_KEYS = ['signal', 'onProgress', 'onTokens', 'addSpecialTokens', 'onText'];

export interface ScoreOptions extends JobOptions {
  /** Padded tokens per forward pass. Defaults to `4096`. */
  maxBatchTokens?: number;
  /** Also return the full next-token log-distribution after each sequence. Defaults to `false`. */
  lastLogprobs?: boolean;
}


/** Sampling options checked against GENERATE_SPEC (once, before the native job; messages name the CLI flags). */
export function checkSampling(o: GenerateOptions): void {
  checkOptions(GENERATE_SPEC, o, { kind: 'options' }, GENERATE_NON_SPEC_KEYS);
}

export class LepModel {
  readonly dir: ModelDir;
  readonly tokenizer: Tokenizer | undefined;
  /**
   * @internal The native model (lep's own modules and tests use it). Left out of the published types
   * (tsconfig's stripInternal): its calls skip the checks, the queue and the LepError wrapping above.
   */
  readonly native: NativeModel;

  /** The end of this model's queue of scores and generations: each starts when the one before it ends. */
  private turn: Promise<void> = Promise.resolve();
  /** Calls in that queue, running or waiting. */
  private queued = 0;

  private constructor(dir: ModelDir, tokenizer: Tokenizer | undefined, native: NativeModel) {
    this.dir = dir;
    this.tokenizer = tokenizer;
    this.native = native;
  }

  /**
   * Loads a Hugging Face model directory (config.json, safetensors, tokenizer.json if present). The
   * options are checked against LOAD_SPEC before the folder is read.
   */
  static async load(path: string, options: LoadModelOptions & JobOptions = {}): Promise<LepModel> {
    checkOptions(LOAD_SPEC, options, { kind: 'options' }, LOAD_NON_SPEC_KEYS);
    const { device, dtype } = withDefaults(LOAD_SPEC, options);
    const dir = readModelDir(path);
    let tokenizer: Tokenizer | undefined;
    try {
      tokenizer = Tokenizer.fromDir(path);
    } catch (e) {
      if ((e as LepError).code !== 'LEP_NO_TOKENIZER') throw e;
    }
    checkVocab(dir, tokenizer?.size);
    const native = await runJob(
      (p) => getNative().loadModel({ config: dir.config, files: dir.weightFiles, overrides: options.overrides, device, dtype }, p),
      options,
    );
    return new LepModel(dir, tokenizer, native);
  }

  get config() {
    return this.dir.config;
  }

  private needTokenizer(): Tokenizer {
    if (!this.tokenizer) throw new LepError('LEP_NO_TOKENIZER', `${this.dir.dir} has no tokenizer.json`);
    return this.tokenizer;
  }

  /**
   * Checks token sequences before native code sees them: each non-empty, at most `maxLength` tokens, and
   * every id an integer inside the vocabulary (1.5 or NaN would otherwise be truncated to a valid id).
   */
  private checkSequences(sequences: ArrayLike<number>[], name: string, maxLength: number): void {
    if (!Array.isArray(sequences)) throw optionError(name, 'an array of token id arrays', sequences);
    const vocab = this.config.vocabSize;
    sequences.forEach((seq, i) => {
      if (!seq || typeof seq.length !== 'number') throw optionError(`${name}[${i}]`, 'an array of token ids', seq);
      if (seq.length === 0) throw optionError(`${name}[${i}]`, 'at least one token', []);
      if (seq.length > maxLength)
        throw new LepError(
          'LEP_SEQUENCE_TOO_LONG',
          `${name}[${i}] has ${seq.length} tokens, more than the ${maxLength} the model's context allows (max_position_embeddings ${this.config.maxPositionEmbeddings})` +
            '\nHINT: split the text into windows no longer than the context.',
        );
      checkTokenIds(seq, vocab, `${name}[${i}]`);
    });
  }

  /**
   * Runs `start` once the scores and generations asked of this model before it have ended, in the order
   * they were asked. A waiting call holds no native thread (each native job has one: 40 overlapping
   * generations held 40, and the model's native lock served them in no order), and one whose signal
   * aborts while it waits rejects at once (LEP_ABORTED, the reason as cause).
   */
  private inTurn<T>(options: JobOptions<never>, start: () => Promise<T>): Promise<T> {
    checkJobOptions(options);
    const before = this.turn;
    let done!: () => void;
    this.turn = new Promise<void>((r) => (done = r));
    const finish = (): void => {
      this.queued--;
      done();
    };
    // Nothing ahead: the job starts now, as without a queue (a caller that checks runningJobs right after,
    // such as forkWhenIdle, sees it).
    if (this.queued++ === 0) return start().finally(finish);
    const { signal } = options;
    const ready = !signal
      ? before
      : new Promise<void>((resolve, reject) => {
          if (signal.aborted) return reject(abortedError(signal));
          const onAbort = (): void => reject(abortedError(signal));
          signal.addEventListener('abort', onAbort, { once: true });
          void before.then(() => {
            signal.removeEventListener('abort', onAbort);
            resolve();
          });
        });
    // The next call's turn comes when this one has ended, or, if it left while waiting, when the one
    // before it has.
    return ready.then(start).finally(() => void before.then(finish));
  }

  /** Per-token log-probabilities of each sequence (teacher forcing). */
  async score(sequences: ArrayLike<number>[], options: ScoreOptions = {}): Promise<NativeScoreResult[]> {
    checkPlainOptions(options, { maxBatchTokens: 'number', lastLogprobs: 'boolean', signal: 'object', onProgress: 'function' }, 'score');
    this.checkSequences(sequences, 'sequences', this.config.maxPositionEmbeddings);
    const { maxBatchTokens, lastLogprobs } = options;
    if (maxBatchTokens !== undefined && (!Number.isSafeInteger(maxBatchTokens) || maxBatchTokens < 1))
      throw optionError('maxBatchTokens', 'a positive integer', maxBatchTokens);
    return this.inTurn(options, () => runJob((p) => this.native.score(sequences, { maxBatchTokens, lastLogprobs }, p), options));
  }

  /** Generates from token prompts (batched; left-padded natively). */
  async generateTokens(prompts: ArrayLike<number>[], options: GenerateOptions = {}): Promise<NativeGenerateResult[]> {
    checkSampling(options);
    const o = withDefaults(GENERATE_SPEC, options);
    const max = o.maxNewTokens;
    this.checkSequences(prompts, 'prompts', this.config.maxPositionEmbeddings);
    const longest = prompts.reduce((m, p) => Math.max(m, p.length), 0);
    if (longest + max > this.config.maxPositionEmbeddings)
      throw optionError(
        'maxNewTokens',
        `at most ${this.config.maxPositionEmbeddings - longest} (max_position_embeddings ${this.config.maxPositionEmbeddings} minus the prompt's ${longest} tokens)`,
        max,
        '--max-new-tokens',
      );
    const eos = this.tokenizer?.specialId('eos');
    const stopTokens = options.stopTokens ?? (eos === undefined ? [] : [eos]);
    const { temperature, topK, topP, repetitionPenalty, seed } = o;
    const { onTokens } = options;
    if (onTokens !== undefined && typeof onTokens !== 'function') throw optionError('onTokens', 'a function', onTokens);
    const onProgress = onTokens
      ? (e: JobProgress): void => {
          if (e.phase === 'generate') onTokens(e.tokens);
          options.onProgress?.(e);
        }
      : options.onProgress;
    return this.inTurn(options, () =>
      runJob((p) => this.native.generate(prompts, { maxNewTokens: max, temperature, topK, topP, repetitionPenalty, stopTokens, seed }, p), { ...options, onProgress }),
    );
  }

  /**
   * Encodes a text prompt (BOS added as the tokenizer says), generates, decodes the new text. `onText`
   * receives the text as it comes, in pieces whose concatenation is the returned `text`.
   * The new text is decoded after the prompt, as Hugging Face's text-generation pipeline does: a
   * SentencePiece decoder drops the leading space of a sequence's first piece, so decoding the new tokens
   * alone would turn "choose" + "▁Tools" into "chooseTools"; `prompt + text` reads as the model wrote it.
   */
  async generate(
    prompt: string,
    options: GenerateOptions & { addSpecialTokens?: boolean; onText?: (piece: string) => void } = {},
  ): Promise<{ text: string; tokens: number[]; finishReason: string }> {
    const tok = this.needTokenizer();
    checkSampling(options);  // before the options are read here (a stopTokens that is not an array)
    if (typeof prompt !== 'string') throw optionError('prompt', 'a string', prompt);
    const { onText } = options;
    if (onText !== undefined && typeof onText !== 'function') throw optionError('onText', 'a function', onText);
    // A prompt rendered by the chat template already carries BOS: pass addSpecialTokens false for it.
    const ids = await tok.encode(prompt, { addSpecialTokens: options.addSpecialTokens ?? true });
    const stop = new Set([...(options.stopTokens ?? []), ...[tok.specialId('eos')].filter((t) => t !== undefined)]);
    // The prompt's tail as decoding context: 8 tokens cover any piece boundary (and a partial UTF-8
    // character) while the cost per streamed step stays independent of the prompt's length.
    const context = ids.slice(-8);
    const contextText = await tok.decode(context, { skipSpecialTokens: true });
    const decodeNew = async (newIds: number[]): Promise<string> => {
      const all = await tok.decode([...context, ...newIds], { skipSpecialTokens: true });
      // A decoder that rewrites across the boundary (cleanup of " ." and the like): the new tokens alone.
      return all.startsWith(contextText) ? all.slice(contextText.length) : tok.decode(newIds, { skipSpecialTokens: true });
    };
    let streamed = Promise.resolve();
    // What onText (or decoding for it) threw: thrown from the next onTokens, which stops the job and
    // rejects with it (runJob's rule for a throwing callback), or after the last step.
    let failed: { error: unknown } | undefined;
    let emitted = '';
    const sofar: number[] = [];
    // Each step decodes the tokens up to that step (not whatever has come meanwhile, so the pieces are the
    // same however busy the machine is) and passes on what is new; text that ends in a partial UTF-8
    // character (byte-fallback pieces) waits for the next token. Decoding is async: steps are chained.
    const flush = async (upTo: number): Promise<void> => {
      const text = await decodeNew(sofar.slice(0, upTo));
      if (!text.endsWith('\uFFFD') && text.startsWith(emitted) && text.length > emitted.length) {
        onText!(text.slice(emitted.length));
        emitted = text;
      }
    };
    const onTokens = onText
      ? (step: number[]): void => {
          if (failed) throw failed.error;
          options.onTokens?.(step);
          const t = step[0]!;
          if (t < 0 || stop.has(t)) return;
          const upTo = sofar.push(t);
          streamed = streamed.then(() => (failed ? undefined : flush(upTo))).catch((error: unknown) => void (failed ??= { error }));
        }
      : undefined;
    const [r] = await this.generateTokens([ids], { ...options, onTokens: onTokens ?? options.onTokens });
    if (!r) throw new LepError('LEP_NATIVE', 'generate returned no result');
    const tokens = Array.from(r.tokens);
    const shown = tokens.filter((t, i) => !(i === tokens.length - 1 && stop.has(t)));
    const text = await decodeNew(shown);
    if (onText) {
      await streamed;
      if (failed) throw failed.error;
      if (text.startsWith(emitted) && text.length > emitted.length) onText(text.slice(emitted.length));
    }
    return { text, tokens, finishReason: r.finishReason };
  }

  /**
   * `generate` as an async iterable of text pieces, as they come:
   * `for await (const piece of model.stream(prompt)) process.stdout.write(piece)`.
   */
  async *stream(prompt: string, options: GenerateOptions & { addSpecialTokens?: boolean } = {}): AsyncGenerator<string, { text: string; tokens: number[]; finishReason: string }> {
    if ((options as { onText?: unknown }).onText !== undefined) throw optionError('onText', 'no onText with stream(): its pieces are what the iteration yields', 'a callback');
    const pieces: string[] = [];
    let wake: (() => void) | undefined;
    // A consumer that stops iterating (break, return, a throw) stops the generation too.
    const closed = new AbortController();
    const onOuterAbort = (): void => closed.abort(options.signal!.reason);
    options.signal?.addEventListener('abort', onOuterAbort, { once: true });
    if (options.signal?.aborted) onOuterAbort();
    const done = this.generate(prompt, { ...options, signal: closed.signal, onText: (p) => { pieces.push(p); wake?.(); } });
    let finished = false;
    const result = done.finally(() => { finished = true; wake?.(); });
    result.catch(() => {}); // rethrown below, at the await
    try {
      for (;;) {
        while (pieces.length) yield pieces.shift()!;
        if (finished) break;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
      while (pieces.length) yield pieces.shift()!;
      return await result;
    } finally {
      options.signal?.removeEventListener('abort', onOuterAbort);
      if (!finished) {
        closed.abort(new LepError('LEP_ABORTED', 'the stream was closed before the generation finished'));
        await result.catch(() => {});
      }
    }
  }

  /**
   * Frees the model once the jobs already started on it end (it does not stop them: abort them with their
   * signals); later calls reject with LEP_DISPOSED.
   */
  dispose(): void {
    this.native.dispose();
  }
}
