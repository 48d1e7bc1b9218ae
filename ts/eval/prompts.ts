/**
 * How a task item becomes model input (docs/method.md §6):
 *   - `chat`: zero-shot through the model's chat template (instruct models); the template's text already
 *     carries BOS, so it is encoded without special tokens;
 *   - `plain`: Darumeru's few-shot format for base models: each shot as "user text\n" + "answer\n\n",
 *     then the item's "user text\n"; BOS added as the tokenizer says.
 * An answer (a choice label, a candidate) is scored by encoding prompt + answer as one text and taking
 * the tokens after the longest common prefix with the encoded prompt, as lm-evaluation-harness does, so
 * the boundary is tokenised the way the model would see it.
 */
import { LepError } from '../errors.js';
import type { Tokenizer } from '../tokenizer/Tokenizer.js';
import type { TaskHeader, TaskMessage, TaskShot } from './taskFile.js';

export const PROMPT_FORMATS = ['chat', 'plain'] as const;
export type PromptFormat = (typeof PROMPT_FORMATS)[number];

/** Few-shot examples used in the plain format (the paper: 5-shot for base models). */
export const DEFAULT_SHOTS = 5;

/** Fills `{name}` placeholders from `inputs` (Darumeru's layout); unknown names stay as they are. */
export function fillInputs(messages: readonly TaskMessage[], inputs?: Record<string, string>): TaskMessage[] {
  if (!inputs) return messages.map((m) => ({ ...m }));
  return messages.map((m) => ({ role: m.role, content: m.content.replace(/\{(\w+)\}/g, (all, k: string) => inputs[k] ?? all) }));
}

/** The text a shot's answer contributes: the gold string, the first of a list, or the first relevant candidate. */
export function shotAnswer(gold: string | string[] | number[], candidates?: string[]): string {
  if (typeof gold === 'string') return gold;
  const first = gold[0];
  return typeof first === 'number' ? (candidates?.[first] ?? '') : (first ?? '');
}

export interface PromptParts {
  /** Text before the answer. */
  prompt: string;
  /** Encode with special tokens (plain format) or not (chat template already has BOS). */
  addSpecialTokens: boolean;
  /** Renders prompt + answer (for scoring an answer). */
  withAnswer(answer: string): string;
}

function splitPrefix(messages: TaskMessage[]): { turns: TaskMessage[]; prefix: string } {
  const last = messages[messages.length - 1];
  if (last?.role === 'assistant') return { turns: messages.slice(0, -1), prefix: last.content };
  return { turns: messages, prefix: '' };
}

const joinAnswer = (prefix: string, answer: string) => (prefix === '' || /\s$/.test(prefix) || answer === '' ? prefix + answer : `${prefix} ${answer}`);

/** Renders an item in the chat format; throws LEP_NO_CHAT_TEMPLATE with a hint when there is no template. */
export function chatPrompt(tok: Tokenizer, messages: TaskMessage[]): PromptParts {
  if (!tok.chatTemplate)
    throw new LepError(
      'LEP_NO_CHAT_TEMPLATE',
      'the model has no chat_template in tokenizer_config.json, so the chat (zero-shot) format cannot be used\nHINT: evaluate a base model with the few-shot plain format: --format plain (API: format: "plain").',
    );
  const { turns, prefix } = splitPrefix(messages);
  const render = (answer: string): string => {
    const content = joinAnswer(prefix, answer);
    if (content === '') return tok.applyChatTemplate(turns, { addGenerationPrompt: true });
    const full = tok.applyChatTemplate([...turns, { role: 'assistant', content }], { addGenerationPrompt: false });
    // Cut what the template writes after the answer (EOS, end-of-turn markers).
    const at = full.lastIndexOf(content);
    if (at < 0) throw new LepError('LEP_CHAT_TEMPLATE', 'the chat template does not render the assistant message verbatim\nHINT: use --format plain.');
    return full.slice(0, at + content.length);
  };
  return { prompt: render(''), addSpecialTokens: false, withAnswer: render };
}

/** The shots an item is shown in the plain format: those of its subject where the task has them (MMLU's dev questions), else the task's. */
export function shotsFor(header: TaskHeader, item: { subject?: string }): readonly TaskShot[] {
  return (item.subject !== undefined && header.shotsBySubject[item.subject]) || header.shots;
}

/** Renders an item in the plain few-shot format with the first `shots` of `pool` (the header's shots, or those of the item's subject). */
export function plainPrompt(header: TaskHeader, messages: TaskMessage[], shots: number, pool: readonly TaskShot[] = header.shots): PromptParts {
  const userText = (ms: TaskMessage[]) => ms.map((m) => `${m.content}\n`).join('');
  let head = '';
  for (const s of pool.slice(0, shots)) {
    const { turns, prefix } = splitPrefix(fillInputs(s.messages, s.inputs));
    head += `${userText(turns)}${joinAnswer(prefix, shotAnswer(s.gold, s.candidates))}\n\n`;
  }
  const { turns, prefix } = splitPrefix(messages);
  const prompt = head + userText(turns) + prefix;
  return { prompt, addSpecialTokens: true, withAnswer: (answer) => head + userText(turns) + joinAnswer(prefix, answer) };
}

/** Token ids of prompt and answer: the shared prefix and the answer's own tokens. */
export async function encodeAnswer(tok: Tokenizer, parts: PromptParts, answer: string): Promise<{ context: number[]; answer: number[] }> {
  const [p, full] = await tok.encodeBatch([parts.prompt, parts.withAnswer(answer)], { addSpecialTokens: parts.addSpecialTokens });
  let k = 0;
  while (k < p!.length && k < full!.length && p![k] === full![k]) k++;
  // Keep at least one context token, so the first answer token has something to be predicted from.
  if (k === 0) k = Math.min(1, full!.length - 1);
  return { context: full!.slice(0, k), answer: full!.slice(k) };
}
