// Fuzz target: chat JSONL (calibration / instruction data): readChatDataset on arbitrary file text and
// checkChatRecord on arbitrary values. Run: fuzz/run.sh 30 chat_jsonl
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import fc from 'fast-check';

import { dist, fuzz, jsonText } from './fuzzTarget.mjs';

const { readChatDataset, checkChatRecord } = await import(dist('ts/calibrate/readChatDataset.js'));

const dir = mkdtempSync(join(tmpdir(), 'lep-fuzz-chat-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const message = fc.record({ role: fc.oneof(fc.constantFrom('system', 'user', 'assistant'), fc.jsonValue()), content: fc.oneof(fc.string(), fc.jsonValue()) }, { requiredKeys: [] });
const record = fc.oneof(fc.record({ messages: fc.array(message, { maxLength: 4 }) }), fc.jsonValue({ maxDepth: 3 }));
const fileText = fc.array(fc.oneof(jsonText(record), fc.constant('')), { maxLength: 6 }).map((lines) => lines.join('\n'));

await fuzz('chat_jsonl', fc.oneof(fileText, record.map((r) => ({ value: r }))), async (input) => {
  if (typeof input === 'object') return checkChatRecord(input.value, 'chat.jsonl', 1);
  const file = join(dir, 'chat.jsonl');
  writeFileSync(file, input);
  return readChatDataset(file);
});
