import test from 'ava';

import { mistralTokenizerDir, Tokenizer } from '../../ts/index.js';
import { packChat, renderChat } from '../../ts/train/index.js';
import { TOY_CHAT_TEMPLATE } from '../../ts/train/instructData.js';

function tokenizer(template = TOY_CHAT_TEMPLATE): Tokenizer {
  const t = Tokenizer.fromDir(mistralTokenizerDir());
  return Tokenizer.fromJson(JSON.stringify(t.json), { ...t.config, chat_template: template });
}

test('the loss mask covers exactly the assistant answers and their end-of-turn tokens', async (t) => {
  const tok = tokenizer();
  const messages = [
    { role: 'user', content: 'Copy this text exactly:\n\nHello, world.' },
    { role: 'assistant', content: 'Hello, world.' },
    { role: 'user', content: 'Переведи: cat' },
    { role: 'assistant', content: 'кошка' },
  ];
  const { ids, mask } = await renderChat({ messages }, tok);
  t.is(ids.length, mask.length);
  t.is(ids[0], tok.specialId('bos'));
  // The masked tokens, in runs, decode to the answers followed by EOS.
  const runs: number[][] = [];
  mask.forEach((m, i) => {
    if (m && (i === 0 || !mask[i - 1])) runs.push([]);
    if (m) runs[runs.length - 1]!.push(ids[i]!);
  });
  t.is(runs.length, 2);
  // (the decoder drops the leading space the template puts before each answer)
  t.deepEqual(await Promise.all(runs.map((r) => tok.decode(r))), ['Hello, world.</s>', 'кошка</s>']);
  t.is(runs[0]![runs[0]!.length - 1], tok.specialId('eos'));
});

test('packing: whole examples per block, tail filled and masked out, too-long examples skipped and counted', async (t) => {
  const tok = tokenizer();
  const ex = (n: number) => ({ messages: [{ role: 'user', content: 'Say it.' }, { role: 'assistant', content: 'word '.repeat(n).trim() }] });
  const r = await packChat([ex(3), ex(3), ex(200), ex(10)], tok, { seqLen: 40 });
  t.is(r.skippedTooLong, 1);
  t.is(r.examples, 3);
  t.true(r.blocks.every((b) => b.length === 40));
  t.true(r.lossMask.every((m) => m.length === 40));
  const eos = tok.specialId('eos')!;
  for (const [i, b] of r.blocks.entries()) {
    const last = b.lastIndexOf(tok.specialId('bos')!);
    t.true(last >= 0);
    // after the last example's final EOS, only fill tokens with mask 0
    const end = b.indexOf(eos, last);
    for (let k = end + 1; k < 40; k++) t.is(r.lossMask[i]![k], 0);
  }
  t.is(r.targetTokens, r.lossMask.flat().reduce((a, b) => a + b, 0));
  // Every example too long: the hint says to raise --seq-len to the shortest one's length (it said to lower it).
  const shortest = (await renderChat(ex(50), tok)).ids.length;
  const e = await t.throwsAsync(packChat([ex(200), ex(50)], tok, { seqLen: 40 }));
  t.is((e as { code?: string }).code, 'LEP_CORPUS_EMPTY');
  t.is(e!.message, `every example (2) is longer than one block of 40 tokens, and examples are never cut\nHINT: raise --seq-len to at least ${shortest} (the shortest example's length), or give shorter examples.`);
  t.is((await packChat([ex(200), ex(50)], tok, { seqLen: shortest })).examples, 1);
});

test('a template whose user turn does not end in markup is rejected with a clear message', async (t) => {
  // Renders "user text" immediately followed by the answer: the answer's first token can merge with
  // the prompt's last one, so the prompt's tokens are not a prefix of the conversation's.
  const tok = tokenizer("{% for m in messages %}{{ m['content'] }}{% endfor %}");
  const e = await t.throwsAsync(renderChat({ messages: [{ role: 'user', content: 'Hel' }, { role: 'assistant', content: 'lo' }] }, tok));
  t.regex(e!.message, /does not tokenise to a prefix .*HINT: use a chat template/s);
});
