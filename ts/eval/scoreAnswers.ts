/**
 * The three scoring methods of the benchmark, batched over items:
 *   - choice labels by next-token probability after the prompt (one forward pass per distinct prompt,
 *     reading the full next-token distribution);
 *   - candidate answers by mean token log-probability of the continuation (teacher forcing);
 *   - greedy generation with stop tokens (EOS), stop strings (cut afterwards) and a max-token bound.
 */
import { LepError } from '../errors.js';
import type { JobOptions, LepModel } from '../model/LepModel.js';
import type { Tokenizer } from '../tokenizer/Tokenizer.js';
import { encodeAnswer, type PromptParts } from './prompts.js';
import type { Generation } from './itemScores.js';
import { fitContext } from './fitContext.js';

/** Sequences per native call. */
export const DEFAULT_EVAL_BATCH_SIZE = 16;

export interface BatchOptions extends JobOptions {
  batchSize?: number;
  /** Called after each native batch with the items done and the items in all (for progress and ETA). */
  onItems?: (done: number, total: number) => void;
  /** Called once with the number of sequences cut to fit the model's context (fitContext.ts), if any. */
  onTruncated?: (count: number) => void;
}

/** For each prompt, the log-probability of each label's first token (after any tokens all labels share); the argmax label is the prediction. */
export async function scoreChoices(model: LepModel, tok: Tokenizer, prompts: PromptParts[], labels: string[], options: BatchOptions = {}): Promise<number[][]> {
  const jobs: { context: number[]; first: number[] }[] = [];
  for (const p of prompts) {
    const enc = await Promise.all(labels.map((l) => encodeAnswer(tok, p, l)));
    const context = enc[0]!.context;
    // Labels normally share the prompt's tokens; if the boundary merges differently, the first
    // differing token is still what the model must put next after the shared part.
    const same = enc.every((e) => e.context.length === context.length && e.context.every((t, i) => t === context[i]));
    if (!same) throw new LepError('LEP_CHOICE_TOKENS', `the choice labels ${JSON.stringify(labels)} change how the prompt ends when tokenised\nHINT: use labels that start a new token (e.g. "A".."D" after a space or newline).`);
    // Tokens all labels start with join the context: SentencePiece and Llama-3 tokenizers write " 1" as
    // "▁" + "1", so PARus's 1/2 first differ at their second token. The shared tokens have the same
    // probability for every label, so the argmax over the first differing token is unchanged.
    let shared = 0;
    while (enc.every((e) => e.answer.length > shared + 1 && e.answer[shared] === enc[0]!.answer[shared])) shared++;
    const first = enc.map((e) => e.answer[shared] ?? -1);
    if (new Set(first).size !== first.length || first.includes(-1))
      throw new LepError('LEP_CHOICE_TOKENS', `the choice labels ${JSON.stringify(labels)} do not start with distinct tokens\nHINT: pick labels whose first tokens differ (e.g. A, B, C, D).`);
    jobs.push({ context: [...context, ...enc[0]!.answer.slice(0, shared)], first });
  }
  let cut = 0;
  for (const j of jobs) {
    const f = fitContext(j.context, model.config.maxPositionEmbeddings);
    (j.context = f.ids), (cut += Number(f.cut));
  }
  if (cut > 0) options.onTruncated?.(cut);
  const out: number[][] = [];
  const bs = options.batchSize ?? DEFAULT_EVAL_BATCH_SIZE;
  for (let i = 0; i < jobs.length; i += bs) {
    const batch = jobs.slice(i, i + bs);
    const res = await model.score(batch.map((j) => j.context), { lastLogprobs: true, signal: options.signal });
    res.forEach((r, k) => out.push(batch[k]!.first.map((t) => r.lastLogprobs![t]!)));
    options.onItems?.(out.length, jobs.length);
  }
  return out;
}

/** Mean token log-probability of each candidate as the answer to each prompt. */
export async function scoreContinuations(model: LepModel, tok: Tokenizer, items: { prompt: PromptParts; candidates: string[] }[], options: BatchOptions = {}): Promise<number[][]> {
  const seqs: { ids: number[]; n: number }[] = [];
  const ctx = model.config.maxPositionEmbeddings;
  let cut = 0;
  for (const it of items)
    for (const c of it.candidates) {
      const e = await encodeAnswer(tok, it.prompt, c);
      // The answer is what is scored: it stays whole (up to the context), the prompt is cut to make room.
      const answer = e.answer.slice(0, ctx - 1);
      const f = fitContext(e.context, ctx - answer.length);
      cut += Number(f.cut || answer.length < e.answer.length);
      seqs.push({ ids: [...f.ids, ...answer], n: answer.length });
    }
  if (cut > 0) options.onTruncated?.(cut);
  const means: number[] = [];
  const bs = options.batchSize ?? DEFAULT_EVAL_BATCH_SIZE;
  for (let i = 0; i < seqs.length; i += bs) {
    const batch = seqs.slice(i, i + bs);
    const res = await model.score(batch.map((s) => s.ids), { signal: options.signal });
    res.forEach((r, k) => {
      const lp = r.tokenLogprobs;
      const n = batch[k]!.n;
      let sum = 0;
      for (let j = lp.length - n; j < lp.length; j++) sum += lp[j]!;
      means.push(n === 0 ? -Infinity : sum / n);
    });
    options.onItems?.(means.length, seqs.length);
  }
  const out: number[][] = [];
  let at = 0;
  for (const it of items) {
    out.push(means.slice(at, at + it.candidates.length));
    at += it.candidates.length;
  }
  return out;
}

/** The number of leading tokens whose decoded text reaches `chars` characters (binary search). */
async function tokensCovering(tok: Tokenizer, tokens: number[], chars: number): Promise<number> {
  let lo = 0;
  let hi = tokens.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((await tok.decode(tokens.slice(0, mid), { skipSpecialTokens: true })).length >= chars) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

export interface GenerateBatchOptions extends BatchOptions {
  maxNewTokens: number;
  stop: string[];
  /** With stop strings, tokens generated between stop-string checks. Defaults to `32`. */
  stopCheckTokens?: number;
}

export const DEFAULT_STOP_CHECK_TOKENS = 32;

/**
 * Greedy generation for token prompts. Stop strings are applied to the decoded text afterwards (the
 * native generator stops on token ids only): checked every `stopCheckTokens` tokens and cut after; a
 * generation never runs past EOS or `maxNewTokens`.
 */
export async function generateAnswers(model: LepModel, tok: Tokenizer, prompts: number[][], options: GenerateBatchOptions): Promise<Generation[]> {
  const eos = tok.specialId('eos');
  const stopTokens = eos === undefined ? [] : [eos];
  const ctx = model.config.maxPositionEmbeddings;
  const bs = options.batchSize ?? DEFAULT_EVAL_BATCH_SIZE;
  // Sort by length so a batch pads little; results go back to their items.
  const order = prompts.map((p, i) => ({ p, i })).sort((a, b) => a.p.length - b.p.length || a.i - b.i);
  const out: Generation[] = new Array(prompts.length);
  for (let s = 0; s < order.length; s += bs) {
    const batch = order.slice(s, s + bs);
    const longest = Math.max(...batch.map((b) => b.p.length));
    const maxNewTokens = Math.min(options.maxNewTokens, ctx - longest);
    if (maxNewTokens < 1) throw new LepError('LEP_PROMPT_TOO_LONG', `a prompt of ${longest} tokens leaves no room to generate in the model's ${ctx}-token context\nHINT: shorten the task's items, or use fewer shots (--shots).`);
    // Generate in chunks and check the stop strings between them, so a model that writes past a stop
    // string (which the native generator cannot see) does not run on to max tokens.
    const state = batch.map(() => ({ tokens: [] as number[], done: false, eos: false }));
    const chunk = options.stop.length > 0 ? (options.stopCheckTokens ?? DEFAULT_STOP_CHECK_TOKENS) : maxNewTokens;
    for (let made = 0; made < maxNewTokens && state.some((x) => !x.done); made += chunk) {
      const active = state.map((x, k) => ({ x, k })).filter(({ x }) => !x.done);
      const n = Math.min(chunk, maxNewTokens - made);
      const res = await model.generateTokens(active.map(({ x, k }) => [...batch[k]!.p, ...x.tokens]), { maxNewTokens: n, stopTokens, temperature: 0, signal: options.signal });
      for (const [j, { x }] of active.entries()) {
        const r = res[j]!;
        let t = Array.from(r.tokens);
        if (r.finishReason === 'stop' && t.length > 0 && stopTokens.includes(t[t.length - 1]!)) {
          t = t.slice(0, -1);
          x.eos = true;
          x.done = true;
        }
        x.tokens.push(...t);
        if (!x.done && options.stop.length > 0) {
          const text = await tok.decode(x.tokens, { skipSpecialTokens: true });
          if (options.stop.some((st) => text.includes(st))) x.done = true;
        }
      }
    }
    for (let k = 0; k < batch.length; k++) {
      const { tokens, eos } = state[k]!;
      const full = await tok.decode(tokens, { skipSpecialTokens: true });
      let cut = full.length;
      for (const st of options.stop) {
        const at = full.indexOf(st);
        if (at >= 0 && at < cut) cut = at;
      }
      const n = cut < full.length ? await tokensCovering(tok, tokens, cut) : tokens.length;
      out[batch[k]!.i] = { text: full.slice(0, cut).trim(), tokens: n, stopped: eos || cut < full.length };
    }
    options.onItems?.(Math.min(s + bs, order.length), order.length);
  }
  return out;
}
