/**
 * Self-calibration answers (docs/method.md §5): the *original* instruct model answers instruction prompts
 * greedily through its chat template. The decoding is the evaluation harness's (`generateEvalAnswers` in
 * ts/eval/scoreAnswers.ts: batched, EOS and stop strings, a max-token bound), so an answer here is what
 * `lep eval` would have seen from the same model.
 *
 * Output: a JSONL file, one line per answered prompt,
 *   {"id", "messages": [...prompt turns, {"role": "assistant", "content"}], "tokens", "stopped", ...prompt extras}
 * appended and fsynced batch by batch, so a run stopped by its AbortSignal or killed restarts where it
 * left off:
 *   - the prompts are sorted by length (short batches pad little) and cut into fixed batches of the whole
 *     prompt list; a batch whose prompts are all in the file is skipped;
 *   - a batch with any prompt missing is generated again whole and only the missing answers are
 *     appended. Keeping each batch's members fixed means an answer never depends on where a run was
 *     interrupted, even on devices where padded batched decoding is not bit-identical to unbatched;
 *   - a kill in the middle of a write leaves a last line without its newline: it is cut off (the file
 *     truncated to its last newline) and that prompt answered again. A complete line that does not parse
 *     was not written by a kill and is an error naming the file and line.
 * `<out>.run.json` records the model and the decoding options; resuming with other ones is an error
 * (an answer file must come from one model and one set of options).
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, truncateSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';

import { LepError, optionError } from '../errors.js';
import { generateEvalAnswers as generateBatch, DEFAULT_EVAL_BATCH_SIZE } from '../eval/scoreAnswers.js';
import { LepModel, type LoadModelOptions } from '../model/LepModel.js';
import { throwIfAborted, type JobOptions } from '../binding/runJob.js';
import type { ChatMessage } from '../tokenizer/Tokenizer.js';
import { withPath, writeJsonAtomic } from '../util/atomicWrite.js';

/** An instruction prompt: the turns before the answer (ending with a user turn) plus any extra fields. */
export interface CalibrationPrompt {
  /** Unique within a run; how a restarted run knows what is done. */
  id: string;
  messages: ChatMessage[];
  /** Other fields (`kind`, `lang`, ...) are copied to the answer line. */
  [field: string]: unknown;
}

/** One line of the answer file. */
export interface CalibrationAnswer extends CalibrationPrompt {
  /** Generated tokens up to the stop (stop token and stop string excluded). */
  tokens: number;
  /** False when the answer ran to max tokens (or the context's end) without EOS or a stop string. */
  stopped: boolean;
}

export interface GenerateAnswersOptions extends Pick<JobOptions, 'signal'>, Pick<LoadModelOptions, 'device' | 'dtype'> {
  /** New tokens per answer at most (also bounded by the model's context). Defaults to `DEFAULT_ANSWER_MAX_NEW_TOKENS`. */
  maxNewTokens?: number;
  /** Strings that end an answer (cut before them), in addition to the tokenizer's EOS. Defaults to none. */
  stop?: string[];
  /** Prompts per native generation call; also the unit of saving and resuming. Defaults to `16`. */
  batchSize?: number;
  /** Called after each batch is written (and once at the start, with what the file already had). */
  onAnswers?: (event: AnswersProgress) => void;
}

export interface AnswersProgress {
  /** Prompts answered so far, including those found in the file. */
  done: number;
  total: number;
  /** Of `done`, answers that were already in the file at the start. */
  reused: number;
}

export interface GenerateAnswersResult {
  file: string;
  /** Prompts answered by this run. */
  generated: number;
  /** Prompts whose answers were already in the file. */
  reused: number;
  /** Ids of prompts left out because they leave no room to answer in the model's context. */
  tooLong: string[];
  /** Whether the file ended in a torn line (a kill mid-write) that was cut off. */
  repairedTornLine: boolean;
}

export const DEFAULT_ANSWER_MAX_NEW_TOKENS = 256;
/** A prompt must leave at least this many tokens to answer in, or it is left out (reported in `tooLong`). */
export const MIN_ANSWER_ROOM = 16;

interface RunConfig {
  model: string;
  maxNewTokens: number;
  stop: string[];
  batchSize: number;
  /**
   * Where and in what the model ran ("cpu Float", "cuda:0 BFloat16": its info()), known once it is
   * loaded: greedy answers differ between them. Absent in the files of lep before 2026-12-06.
   */
  numerics?: string;
}

/** The run-config file kept next to the answers. */
export const runFile = (out: string): string => `${out}.run.json`;

/**
 * Reads the answers already in `file`: cuts a torn last line off the file, returns the answered ids.
 * Throws LEP_BAD_ANSWERS naming file and line for a complete line that is not a JSON object with an id,
 * or for an id that appears twice.
 */
export function readAnswerIds(file: string): { ids: Set<string>; repairedTornLine: boolean } {
  const ids = new Set<string>();
  if (!existsSync(file)) return { ids, repairedTornLine: false };
  const buf = readFileSync(file);
  const end = buf.lastIndexOf(0x0a) + 1; // bytes up to and including the last newline
  const repairedTornLine = end < buf.length;
  if (repairedTornLine) truncateSync(file, end);
  const lines = buf.subarray(0, end).toString('utf8').split('\n');
  lines.pop(); // the empty string after the last newline
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let id: unknown;
    try {
      id = (JSON.parse(line) as { id?: unknown }).id;
    } catch (e) {
      throw new LepError('LEP_BAD_ANSWERS', `${file}:${i + 1}: malformed JSON (${(e as Error).message}) in a complete line, which a killed run does not leave\nHINT: the file was edited or damaged; delete the line (its prompt is answered again) or the file.`);
    }
    if (typeof id !== 'string') throw new LepError('LEP_BAD_ANSWERS', `${file}:${i + 1}: the line has no string "id"\nHINT: an answer file is written by generateAnswers; do not append other data to it.`);
    if (ids.has(id)) throw new LepError('LEP_BAD_ANSWERS', `${file}:${i + 1}: the id ${JSON.stringify(id)} is answered twice\nHINT: the file was edited; keep one of the two lines.`);
    ids.add(id);
  });
  return { ids, repairedTornLine };
}

function checkPrompts(prompts: readonly CalibrationPrompt[]): void {
  const seen = new Set<string>();
  prompts.forEach((p, i) => {
    if (typeof p.id !== 'string' || p.id === '') throw optionError(`prompts[${i}].id`, 'a non-empty string', p.id);
    if (seen.has(p.id)) throw optionError(`prompts[${i}].id`, 'an id no other prompt has', p.id);
    seen.add(p.id);
    const last = Array.isArray(p.messages) ? p.messages[p.messages.length - 1] : undefined;
    if (last?.role !== 'user') throw optionError(`prompts[${i}].messages`, 'turns ending with a user turn', p.messages);
  });
}

/** Compares the saved run config with this run's; a difference is an error with the way out. */
function checkRunConfig(out: string, config: Partial<RunConfig>, hasAnswers: boolean): void {
  const path = runFile(out);
  const saved = existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Partial<RunConfig>) : {};
  if (hasAnswers) {
    for (const k of Object.keys(config) as (keyof RunConfig)[]) {
      if (k === 'numerics' && saved.numerics === undefined) continue;  // answers of an older lep: not recorded
      if (JSON.stringify(saved[k]) !== JSON.stringify(config[k]))
        throw new LepError(
          'LEP_RESUME_MISMATCH',
          `${out} holds answers made with ${k} ${JSON.stringify(saved[k])}, but this run has ${JSON.stringify(config[k])}\nHINT: resume with the same model and options (device and dtype too), or write to another file (or delete ${out} and ${path}).`,
        );
    }
  }
  writeJsonAtomic(path, { ...saved, ...config });
}

function appendLines(file: string, lines: string[]): void {
  // One write per batch, then fsync: after a kill the file holds whole batches plus at most one torn line.
  const fd = openSync(file, 'a');
  try {
    // Every byte, or the error that stopped it (a short write is not one: the next call says why).
    const buf = Buffer.from(lines.join(''), 'utf8');
    for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } catch (e) {
    throw withPath(e, file);  // writeSync's error names no path ("cannot write: ENOSPC")
  } finally {
    closeSync(fd);
  }
}

/**
 * Answers `prompts` with the model in `model` (a directory, or a loaded LepModel the caller keeps), greedily
 * through its chat template, appending to `out`; see the module comment for resuming.
 */
export async function generateAnswers(model: string | LepModel, prompts: readonly CalibrationPrompt[], out: string, options: GenerateAnswersOptions = {}): Promise<GenerateAnswersResult> {
  const maxNewTokens = options.maxNewTokens ?? DEFAULT_ANSWER_MAX_NEW_TOKENS;
  if (!Number.isSafeInteger(maxNewTokens) || maxNewTokens < 1) throw optionError('maxNewTokens', 'a positive integer', maxNewTokens, '--max-new-tokens');
  const batchSize = options.batchSize ?? DEFAULT_EVAL_BATCH_SIZE;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw optionError('batchSize', 'a positive integer', batchSize, '--batch-size');
  const stop = options.stop ?? [];
  if (!Array.isArray(stop) || stop.some((s) => typeof s !== 'string' || s === '')) throw optionError('stop', 'an array of non-empty strings', stop, '--stop');
  checkPrompts(prompts);

  const modelPath = resolve(typeof model === 'string' ? model : model.dir.dir);
  const { ids: done, repairedTornLine } = readAnswerIds(out);
  checkRunConfig(out, { model: modelPath, maxNewTokens, stop, batchSize }, done.size > 0);
  const total = prompts.length;
  const reused = prompts.filter((p) => done.has(p.id)).length;
  let answered = reused;
  options.onAnswers?.({ done: answered, total, reused });
  const result: GenerateAnswersResult = { file: out, generated: 0, reused, tooLong: [], repairedTornLine };
  if (reused === total) return result;

  const owned = typeof model === 'string';
  const m = owned ? await LepModel.load(model, { device: options.device, dtype: options.dtype, signal: options.signal }) : model;
  try {
    const { device, dtype } = m.native.info();
    checkRunConfig(out, { numerics: `${device} ${dtype}` }, done.size > 0);
    const tok = m.tokenizer;
    if (!tok) throw new LepError('LEP_NO_TOKENIZER', `${m.dir.dir} has no tokenizer.json\nHINT: answer generation needs the instruct model's tokenizer (with its chat template) next to its weights.`);
    // The chat template's text starts with BOS itself, so it is encoded without special tokens (as in eval).
    const encoded = await tok.encodeBatch(
      prompts.map((p) => tok.applyChatTemplate(p.messages, { addGenerationPrompt: true })),
      { addSpecialTokens: false },
    );
    const ctx = m.config.maxPositionEmbeddings;
    const items = prompts.map((p, i) => ({ p, ids: encoded[i]! })).filter(({ p, ids }) => {
      if (ids.length + MIN_ANSWER_ROOM <= ctx) return true;
      result.tooLong.push(p.id);
      return false;
    });
    // Fixed batches over the whole list (not over what is left), so resuming never changes a batch.
    items.sort((a, b) => a.ids.length - b.ids.length || (a.p.id < b.p.id ? -1 : a.p.id > b.p.id ? 1 : 0));
    for (let s = 0; s < items.length; s += batchSize) {
      const batch = items.slice(s, s + batchSize);
      if (batch.every(({ p }) => done.has(p.id))) continue;
      const gens = await generateBatch(m, tok, batch.map((b) => b.ids), { maxNewTokens, stop, batchSize, signal: options.signal });
      const lines: string[] = [];
      batch.forEach(({ p }, k) => {
        if (done.has(p.id)) return;
        const g = gens[k]!;
        const line: CalibrationAnswer = { ...p, messages: [...p.messages, { role: 'assistant', content: g.text }], tokens: g.tokens, stopped: g.stopped };
        lines.push(`${JSON.stringify(line)}\n`);
        done.add(p.id);
      });
      // An abort that lands while the batch ran rejects above; one that lands now still lets the
      // finished batch be saved, and stops before the next.
      appendLines(out, lines);
      result.generated += lines.length;
      answered += lines.length;
      options.onAnswers?.({ done: answered, total, reused });
      throwIfAborted(options.signal);
    }
    return result;
  } finally {
    if (owned) m.dispose();
  }
}
