/**
 * Reads a chat dataset for calibration (`lep calibrate --data FILE.jsonl`, docs/method.md §5): one JSON object
 * a line, `{"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}, ...]}`.
 * Other fields of a line (an id, a source, `stopped` from self-calibration) are kept as they are. Blank
 * lines are skipped; plain or gzip (`.gz`), streamed through the corpus reader's line batches, so a large
 * instruction set is never held in memory twice.
 *
 * Each bad line is an error naming the file and the 1-based line number (code `LEP_BAD_CHAT_DATA`):
 * malformed JSON, no `messages` array, a message that is not `{role, content}` with string fields, an
 * unknown role, or no assistant turn (such a line would carry no loss, so it is a mistake in the file, not
 * an example to skip quietly).
 */
import { LepError } from '../errors.js';
import { readLineBatches } from '../corpus/readLineBatches.js';
import type { ChatMessage } from '../tokenizer/Tokenizer.js';
import type { ChatExample } from '../train/packChat.js';

/** The roles a chat template renders; anything else is a typo or a format this reader does not know. */
export const CHAT_ROLES = ['system', 'user', 'assistant'] as const;

/** One line of a chat dataset: its messages plus any other fields the line had. */
export type ChatRecord = ChatExample & { [field: string]: unknown };

function bad(file: string, line: number, what: string, hint: string): LepError {
  return new LepError('LEP_BAD_CHAT_DATA', `${file}:${line}: ${what}\nHINT: ${hint}`);
}

const FORMAT_HINT = 'each line must be {"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]}';

/** Validates one parsed line; returns it typed, or throws naming file and line. */
export function checkChatRecord(value: unknown, file: string, line: number): ChatRecord {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(file, line, `expected a JSON object but found ${Array.isArray(value) ? 'an array' : JSON.stringify(value)}`, FORMAT_HINT);
  const messages = (value as { messages?: unknown }).messages;
  if (!Array.isArray(messages) || messages.length === 0)
    throw bad(file, line, messages === undefined ? 'no "messages" field' : '"messages" is not a non-empty array', FORMAT_HINT);
  let assistant = false;
  messages.forEach((m: unknown, i) => {
    const { role, content } = (typeof m === 'object' && m !== null ? m : {}) as Partial<ChatMessage>;
    if (typeof role !== 'string' || typeof content !== 'string')
      throw bad(file, line, `message ${i} is not {"role": string, "content": string}: ${JSON.stringify(m)}`, FORMAT_HINT);
    if (!(CHAT_ROLES as readonly string[]).includes(role))
      throw bad(file, line, `message ${i} has the unknown role ${JSON.stringify(role)}`, `use one of ${CHAT_ROLES.join(', ')} (ShareGPT's "human"/"gpt" must be renamed to "user"/"assistant")`);
    if (role === 'assistant') assistant = true;
  });
  if (!assistant) throw bad(file, line, 'no assistant turn, so the example would carry no loss', 'every line needs at least one {"role": "assistant", ...} message');
  return value as ChatRecord;
}

/** Streams the records of a chat dataset, validating each line (see the module comment). */
export async function* readChatLines(file: string, options: { signal?: AbortSignal } = {}): AsyncGenerator<ChatRecord> {
  for await (const { lines, first } of readLineBatches(file, options.signal)) {
    for (let i = 0; i < lines.length; i++) {
      const text = lines[i]!;
      if (text.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (e) {
        throw bad(file, first + i, `malformed JSON (${(e as Error).message})`, FORMAT_HINT);
      }
      yield checkChatRecord(value, file, first + i);
    }
  }
}

/** Reads a whole chat dataset; an empty file is an error (`LEP_BAD_CHAT_DATA`). */
export async function readChatDataset(file: string, options: { signal?: AbortSignal } = {}): Promise<ChatRecord[]> {
  const out: ChatRecord[] = [];
  for await (const r of readChatLines(file, options)) out.push(r);
  if (out.length === 0) throw new LepError('LEP_BAD_CHAT_DATA', `${file} holds no chat examples\nHINT: ${FORMAT_HINT}`);
  return out;
}
