import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import { readChatDataset } from '../../ts/calibrate/readChatDataset.js';
import { tempDir } from '../helpers.js';

const ok = { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Привет' }, { role: 'assistant', content: 'Здравствуйте!' }] };

const DIR = tempDir();
let files = 0;

function file(lines: string[], name = 'chat.jsonl'): string {
  const f = join(DIR, `${files++}-${name}`);
  writeFileSync(f, name.endsWith('.gz') ? gzipSync(lines.join('\n')) : lines.join('\n'));
  return f;
}

test('reads messages and keeps the other fields; blank lines are skipped; gzip works', async (t) => {
  const lines = [JSON.stringify({ ...ok, id: 'a', source: 'copy' }), '', '   ', JSON.stringify(ok)];
  for (const name of ['chat.jsonl', 'chat.jsonl.gz']) {
    const rs = await readChatDataset(file(lines, name));
    t.is(rs.length, 2);
    t.deepEqual(rs[0], { ...ok, id: 'a', source: 'copy' });
    t.deepEqual(rs[1]!.messages, ok.messages);
  }
});

// Each bad line: the message names the file and the line number, and says what is wrong.
const bad: [string, string, RegExp][] = [
  ['malformed JSON', '{"messages": [', /malformed JSON/],
  ['not an object', '[1, 2]', /expected a JSON object but found an array/],
  ['no messages field', '{"conversation": []}', /no "messages" field/],
  ['messages not an array', '{"messages": "hi"}', /"messages" is not a non-empty array/],
  ['empty messages', '{"messages": []}', /"messages" is not a non-empty array/],
  ['message without content', '{"messages": [{"role": "user"}, {"role": "assistant", "content": "x"}]}', /message 0 is not \{"role": string, "content": string\}/],
  ['unknown role', '{"messages": [{"role": "human", "content": "hi"}, {"role": "gpt", "content": "x"}]}', /message 0 has the unknown role "human"[^]*HINT: use one of system, user, assistant/],
  ['no assistant turn', '{"messages": [{"role": "user", "content": "hi"}]}', /no assistant turn/],
];
for (const [name, line, message] of bad) {
  test(`a line with ${name} is an error naming file and line`, async (t) => {
    const f = file([JSON.stringify(ok), '', line, JSON.stringify(ok)]);
    const e = await t.throwsAsync(readChatDataset(f), { code: 'LEP_BAD_CHAT_DATA' });
    t.true(e!.message.startsWith(`${f}:3: `), e!.message);
    t.regex(e!.message, message);
  });
}

test('an empty file and a missing file are errors naming the file', async (t) => {
  const f = file(['', '']);
  const e = await t.throwsAsync(readChatDataset(f), { code: 'LEP_BAD_CHAT_DATA' });
  t.regex(e!.message, /holds no chat examples/);
  t.true(e!.message.includes(f));
  const missing = join(DIR, 'nope.jsonl');
  const e2 = await t.throwsAsync(readChatDataset(missing));
  t.true(e2!.message.includes(missing));
});
