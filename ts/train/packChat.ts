/**
 * Chat-formatted training examples (docs/method.md §3, the instruct stage): each conversation is rendered
 * through the tokenizer's chat template and tokenised; the loss mask is 1 on assistant tokens only
 * (each assistant turn's text and the end-of-turn tokens the template puts after it), 0 on the system and
 * user turns and on the template's own markup before an answer. Examples are packed whole, one after
 * another, into blocks of `seqLen`; the unused tail of a block is filled with the pad (or eos) token and
 * masked out. An example longer than a block is skipped and counted, never cut.
 */
import { LepError, optionError } from '../errors.js';
import type { ChatMessage, Tokenizer } from '../tokenizer/Tokenizer.js';

export interface ChatExample {
  messages: ChatMessage[];
}

export interface PackChatResult {
  blocks: number[][];
  lossMask: number[][];
  examples: number;
  skippedTooLong: number;
  /** Tokens that carry loss (assistant tokens). */
  targetTokens: number;
}

/**
 * Tokens and loss mask of one conversation. Each assistant turn's span is found by rendering the
 * conversation up to that turn with the generation prompt, and checking that its tokens are a prefix of
 * the full rendering's tokens (true for templates that close a user turn with markup such as [/INST]).
 */
export async function renderChat(example: ChatExample, tokenizer: Tokenizer): Promise<{ ids: number[]; mask: number[] }> {
  const { messages } = example;
  if (!Array.isArray(messages) || messages.length === 0) throw new LepError('LEP_BAD_DATA', 'a chat example has no messages');
  const ids = await tokenizer.encode(tokenizer.applyChatTemplate(messages, { addGenerationPrompt: false }), { addSpecialTokens: false });
  const mask = new Array<number>(ids.length).fill(0);
  for (let i = 0; i < messages.length; i++) {
    if (messages[i]!.role !== 'assistant') continue;
    const before = await tokenizer.encode(tokenizer.applyChatTemplate(messages.slice(0, i), { addGenerationPrompt: true }), { addSpecialTokens: false });
    const through = await tokenizer.encode(tokenizer.applyChatTemplate(messages.slice(0, i + 1), { addGenerationPrompt: false }), { addSpecialTokens: false });
    const isPrefix = (p: number[], of: number[]) => p.length <= of.length && p.every((t, k) => of[k] === t);
    if (!isPrefix(before, ids) || !isPrefix(through, ids))
      throw new LepError(
        'LEP_CHAT_TEMPLATE',
        `the chat template's rendering of the turns before assistant turn ${i} does not tokenise to a prefix of the whole conversation, so the assistant tokens cannot be located\nHINT: use a chat template that ends the user turn with explicit markup (e.g. [/INST] or <|im_end|>).`,
      );
    for (let k = before.length; k < through.length; k++) mask[k] = 1;
  }
  return { ids, mask };
}

export async function packChat(examples: AsyncIterable<ChatExample> | Iterable<ChatExample>, tokenizer: Tokenizer, options: { seqLen: number }): Promise<PackChatResult> {
  const { seqLen } = options;
  if (!Number.isInteger(seqLen) || seqLen < 2) throw optionError('seqLen', 'an integer >= 2', seqLen, '--seq-len');
  const fill = tokenizer.specialId('pad') ?? tokenizer.specialId('eos');
  if (fill === undefined) throw new LepError('LEP_BAD_TOKENIZER', 'the tokenizer has neither a pad nor an eos token to fill blocks with');
  const out: PackChatResult = { blocks: [], lossMask: [], examples: 0, skippedTooLong: 0, targetTokens: 0 };
  let ids: number[] = [];
  let mask: number[] = [];
  const flush = () => {
    if (ids.length === 0) return;
    out.blocks.push([...ids, ...new Array<number>(seqLen - ids.length).fill(fill)]);
    out.lossMask.push([...mask, ...new Array<number>(seqLen - mask.length).fill(0)]);
    ids = [];
    mask = [];
  };
  let shortest = Infinity;
  for await (const ex of examples) {
    const r = await renderChat(ex, tokenizer);
    if (r.ids.length > seqLen) {
      out.skippedTooLong++;
      shortest = Math.min(shortest, r.ids.length);
      continue;
    }
    if (ids.length + r.ids.length > seqLen) flush();
    ids.push(...r.ids);
    mask.push(...r.mask);
    out.examples++;
    out.targetTokens += r.mask.reduce((a, b) => a + b, 0);
  }
  flush();
  // Every example left out: "add text or lower --seq-len" (the empty-corpus hint) would be the wrong way.
  if (out.blocks.length === 0 && out.skippedTooLong > 0)
    throw new LepError(
      'LEP_CORPUS_EMPTY',
      `every example (${out.skippedTooLong}) is longer than one block of ${seqLen} tokens, and examples are never cut\nHINT: raise --seq-len to at least ${shortest} (the shortest example's length), or give shorter examples.`,
    );
  return out;
}
