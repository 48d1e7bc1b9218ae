import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import test from 'ava';

import { LepError } from '../../ts/errors.js';
import { listCorpusFiles } from '../../ts/corpus/listCorpusFiles.js';
import { readTexts, type ReadTextsOptions } from '../../ts/corpus/readCorpus.js';
import { tempDir } from '../helpers.js';

async function all(spec: string | string[], options?: ReadTextsOptions): Promise<string[]> {
  const out: string[] = [];
  for await (const t of readTexts(spec, options)) out.push(t);
  return out;
}

const base = tempDir('lep-corpus-');
let trees = 0;

function tree(files: Record<string, string | Uint8Array>): string {
  const dir = join(base, String(trees++));
  mkdirSync(dir);
  for (const [name, data] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), data);
  }
  return dir;
}

test('plain file: lines, blank lines skipped, CRLF and BOM removed', async (t) => {
  const d = tree({ 'a.txt': '\ufeffпервая\r\nвторая\r\n\r\n   \nthird' });
  t.deepEqual(await all(join(d, 'a.txt')), ['первая', 'вторая', 'third']);
});

test('document mode: blank-line separated blocks, per file', async (t) => {
  const d = tree({ 'a.txt': 'p1\np2\n\n\np3\n', 'b.txt': 'q1\n\nq2' });
  t.deepEqual(await all(d, { mode: 'document' }), ['p1\np2', 'p3', 'q1', 'q2']);
});

test('gzip is decompressed by stream, in line and document mode', async (t) => {
  const text = Array.from({ length: 5000 }, (_, i) => `строка ${i}${i % 100 === 99 ? '\n' : ''}`).join('\n');
  const d = tree({ 'big.txt.gz': gzipSync(text) });
  const lines = await all(join(d, 'big.txt.gz'));
  t.is(lines.length, 5000);
  t.is(lines[4999], 'строка 4999');
  t.is((await all(join(d, 'big.txt.gz'), { mode: 'document' })).length, 50);
});

test('a corrupt gzip file is a read error naming the file', async (t) => {
  const d = tree({ 'bad.gz': Buffer.from('this is not gzip') });
  const e = await t.throwsAsync(all(join(d, 'bad.gz')), { instanceOf: LepError });
  t.is(e?.code, 'LEP_CORPUS_READ');
  t.regex(e!.message, /bad\.gz" is not a valid gzip stream/);
});

test('lines across read chunks (1 MiB) come out whole, multi-byte characters intact', async (t) => {
  const long = 'ж'.repeat(700_000); // 1.4 MB in UTF-8: crosses a chunk boundary mid-character
  const d = tree({ 'x.txt': `a\n${long}\nb\n` });
  const lines = await all(join(d, 'x.txt'));
  t.deepEqual(lines.map((l) => l.length), [1, 700_000, 1]);
  t.is(lines[1], long);
});

test('JSONL: text field, dotted field, line and document mode, .jsonl.gz', async (t) => {
  const recs = [{ text: 'один\nдва', meta: { ru: 'три' } }, { text: 'four', meta: { ru: 'пять' } }];
  const body = recs.map((r) => JSON.stringify(r)).join('\n') + '\n\n';
  const d = tree({ 'a.jsonl': body, 'b.jsonl.gz': gzipSync(body) });
  t.deepEqual(await all(join(d, 'a.jsonl')), ['один', 'два', 'four']);
  t.deepEqual(await all(join(d, 'a.jsonl'), { mode: 'document' }), ['один\nдва', 'four']);
  t.deepEqual(await all(join(d, 'b.jsonl.gz'), { textField: 'meta.ru' }), ['три', 'пять']);
  t.deepEqual(await all(join(d, 'a.jsonl'), { format: 'text' }), body.split('\n').filter(Boolean));
});

test('JSONL: a malformed line and a missing field are errors with the line number', async (t) => {
  const d = tree({ 'a.jsonl': '{"text":"ok"}\n\n{"text": "broken"\n', 'b.jsonl': '{"text":"ok"}\n{"body":"x","id":1}\n', 'c.jsonl': '{"text":5}\n' });
  const e1 = await t.throwsAsync(all(join(d, 'a.jsonl')), { instanceOf: LepError });
  t.is(e1?.code, 'LEP_CORPUS_BAD_JSONL');
  t.regex(e1!.message, /a\.jsonl:3: not valid JSON/);
  const e2 = await t.throwsAsync(all(join(d, 'b.jsonl')), { instanceOf: LepError });
  t.regex(e2!.message, /b\.jsonl:2: expected a string field "text" but the record has none \(it has "body", "id"\)\nHINT: name the field with --text-field/);
  const e3 = await t.throwsAsync(all(join(d, 'c.jsonl')), { instanceOf: LepError });
  t.regex(e3!.message, /c\.jsonl:1: expected a string field "text" but found 5/);
});

test('directories: recursive, sorted, hidden files skipped', async (t) => {
  const d = tree({ 'b/2.txt': 'b2', 'a.txt': 'a', 'b/1.txt': 'b1', 'b/c/0.txt': 'bc0', '.hidden.txt': 'no', 'b/.git/x': 'no' });
  t.deepEqual(await all(d), ['a', 'b1', 'b2', 'bc0']);
});

test('globs: *, ?, ** (zero or more levels), several specs, duplicates once', async (t) => {
  const d = tree({ 'x/a.txt': 'xa', 'x/b.md': 'xb', 'x/y/c.txt': 'xyc', 'x/y/z/d.txt': 'xyzd', 'top.txt': 'top' });
  const names = async (spec: string | string[]) => (await listCorpusFiles(spec)).map((f) => f.slice(d.length + 1));
  t.deepEqual(await names(join(d, 'x/*.txt')), ['x/a.txt']);
  t.deepEqual(await names(join(d, 'x/?.md')), ['x/b.md']);
  t.deepEqual(await names(join(d, '**/*.txt')), ['top.txt', 'x/a.txt', 'x/y/c.txt', 'x/y/z/d.txt']);
  t.deepEqual(await names(join(d, 'x/**/d.txt')), ['x/y/z/d.txt']);
  t.deepEqual(await names(join(d, 'x/**')), ['x/a.txt', 'x/b.md', 'x/y/c.txt', 'x/y/z/d.txt']);
  t.deepEqual(await names([join(d, 'top.txt'), join(d, '*.txt'), join(d, 'x/*/c.txt')]), ['top.txt', 'x/y/c.txt']);
  t.deepEqual(await all(join(d, 'x/**/*.txt')), ['xa', 'xyc', 'xyzd']);
});

test('a file link is read, a directory link is not walked (no cycles)', async (t) => {
  const d = tree({ 'real/a.txt': 'a' });
  symlinkSync(join(d, 'real/a.txt'), join(d, 'real/link.txt'));
  symlinkSync(join(d, 'real'), join(d, 'real/loop'));
  t.deepEqual(await all(join(d, 'real')), ['a', 'a']);
});

test('nothing matched: a missing file, an empty glob, an empty directory name the spec', async (t) => {
  const d = tree({ 'a.txt': 'a' });
  mkdirSync(join(d, 'empty'));
  for (const [spec, re] of [
    [join(d, 'missing.txt'), /corpus file ".*missing\.txt" does not exist/],
    [join(d, '*.jsonl'), /corpus glob ".*\*\.jsonl" matched no files/],
    [join(d, 'nodir/**/*.txt'), /matched no files/],
    [join(d, 'empty'), /corpus directory ".*empty" holds no files/],
  ] as const) {
    const e = await t.throwsAsync(all(spec), { instanceOf: LepError });
    t.is(e?.code, 'LEP_CORPUS_NOT_FOUND');
    t.regex(e!.message, re);
    t.regex(e!.message, /HINT: /);
  }
});

test('invalid UTF-8 names the file and the line', async (t) => {
  const bytes = Buffer.concat([Buffer.from('ok\nстрока\n'), Buffer.from([0x66, 0xc3, 0x28, 0x0a]), Buffer.from('after\n')]);
  const d = tree({ 'bad.txt': bytes, 'koi8.txt': Buffer.from([0xf0, 0xd2, 0xc9, 0xd7, 0xc5, 0xd4]) /* "Привет" in KOI8-R */ });
  const e = await t.throwsAsync(all(join(d, 'bad.txt')), { instanceOf: LepError });
  t.is(e?.code, 'LEP_CORPUS_BAD_UTF8');
  t.regex(e!.message, /bad\.txt:3: invalid UTF-8 \(the line starts at byte 16\)/);
  const e2 = await t.throwsAsync(all(join(d, 'koi8.txt')), { instanceOf: LepError });
  t.regex(e2!.message, /koi8\.txt:1: invalid UTF-8[^]*HINT: convert the file to UTF-8/);
});

test('invalid UTF-8 inside a gzip stream, past the first chunk', async (t) => {
  const good = 'x'.repeat(99) + '\n';
  const bytes = Buffer.concat([Buffer.from(good.repeat(20_000)), Buffer.from([0xff, 0x0a])]);
  const d = tree({ 'bad.txt.gz': gzipSync(bytes) });
  const e = await t.throwsAsync(all(join(d, 'bad.txt.gz')), { instanceOf: LepError });
  t.regex(e!.message, /bad\.txt\.gz:20001: invalid UTF-8 \(the line starts at byte 2000000 of the decompressed stream\)/);
});

test('NFKC normalisation', async (t) => {
  const d = tree({ 'a.txt': 'ﬁne ①\nＦＵＬＬ\n' });
  t.deepEqual(await all(join(d, 'a.txt'), { normalize: 'NFKC' }), ['fine 1', 'FULL']);
  t.deepEqual(await all(join(d, 'a.txt')), ['ﬁne ①', 'ＦＵＬＬ']);
});

test('script filter keeps lines mostly in the script; documents keep their kept lines', async (t) => {
  const d = tree({ 'a.txt': 'Привет, мир\nHello world\nФункция getentropy() заполняет буфер\nmalloc() and free() — ок\n12345\n\nEnglish only\n' });
  t.deepEqual(await all(join(d, 'a.txt'), { script: 'Cyrillic' }), ['Привет, мир', 'Функция getentropy() заполняет буфер']);
  t.deepEqual(await all(join(d, 'a.txt'), { script: 'Latin' }), ['Hello world', 'malloc() and free() — ок', 'English only']);
  t.deepEqual(await all(join(d, 'a.txt'), { script: 'Cyrillic', scriptShare: 0.1 }), ['Привет, мир', 'Функция getentropy() заполняет буфер', 'malloc() and free() — ок']);
  t.deepEqual(await all(join(d, 'a.txt'), { script: 'Cyrillic', mode: 'document' }), ['Привет, мир\nФункция getentropy() заполняет буфер']);
});

test('sample caps: max items and max characters stop reading', async (t) => {
  const d = tree({ 'a.txt': 'aaaa\nbbbb\ncccc\n', 'b.txt': 'dddd\n' });
  t.deepEqual(await all(d, { maxItems: 2 }), ['aaaa', 'bbbb']);
  t.deepEqual(await all(d, { maxChars: 5 }), ['aaaa', 'bbbb'], 'the item that reaches the cap is whole');
  t.deepEqual(await all(d, { maxChars: 8 }), ['aaaa', 'bbbb']);
  t.deepEqual(await all(d, { maxItems: 10 }), ['aaaa', 'bbbb', 'cccc', 'dddd']);
});

test('empty corpus: no text at all, or none after the filter', async (t) => {
  const d = tree({ 'empty.txt': '\n\n  \n', 'en.txt': 'only English\n' });
  const e = await t.throwsAsync(all(join(d, 'empty.txt')), { instanceOf: LepError });
  t.is(e?.code, 'LEP_CORPUS_EMPTY');
  t.regex(e!.message, /corpus ".*empty\.txt" \(1 file\) yielded no text/);
  const e2 = await t.throwsAsync(all(join(d, 'en.txt'), { script: 'Cyrillic' }), { instanceOf: LepError });
  t.regex(e2!.message, /yielded no text after the script filter \(--script Cyrillic\)/);
});

test('options are checked before reading, naming option and flag', async (t) => {
  const d = tree({ 'a.txt': 'a' });
  const cases: [ReadTextsOptions, RegExp][] = [
    [{ mode: 'para' as never }, /Expected "line" or "document" for mode \(--mode\) but received "para"/],
    [{ script: 'Klingon' }, /Expected a Unicode script name .* for script \(--script\) but received "Klingon"/],
    [{ script: 'Latin}|x' }, /for script \(--script\)/],
    // scriptShare has no flag (API only); maxItems is --max-lines on the command line (the message named --max-items, which no command has).
    [{ script: 'Latin', scriptShare: 2 }, /Expected a number in \(0, 1\] for scriptShare but received 2\nHINT: /],
    [{ maxItems: -1 }, /Expected a non-negative integer for maxItems \(--max-lines\) but received -1\nHINT: maxItems \(--max-lines\): Stop after this many texts/],
    [{ mode: 'line', maxChars: 1, bogus: 1 } as never, /unknown option bogus\nHINT: the known options are mode, format, textField/],
    [{ maxChars: 1.5 }, /for maxChars \(--max-chars\)/],
    [{ textField: '' }, /for textField \(--text-field\)/],
    [{ normalize: 'NFD' as never }, /for normalize \(--normalize\)/],
  ];
  for (const [o, re] of cases) {
    const e = await t.throwsAsync(all(join(d, 'a.txt'), o), { instanceOf: LepError });
    t.is(e?.code, 'LEP_BAD_OPTION');
    t.regex(e!.message, re);
  }
});

test('abort signal stops reading with its reason', async (t) => {
  const d = tree({ 'a.txt': 'a\n'.repeat(1000) });
  const ac = new AbortController();
  let n = 0;
  await t.throwsAsync(
    async () => {
      for await (const _ of readTexts(join(d, 'a.txt'), { signal: ac.signal })) {
        if (++n === 3) ac.abort(new Error('stop here'));
      }
    },
    { message: 'stop here' },
  );
});

test.serial('stopping early, a cap or an error closes the file', async (t) => {
  if (!existsSync('/proc/self/fd')) return t.pass('no /proc here');
  const d = tree({ 'a.txt': 'line\n'.repeat(400_000), 'b.jsonl': '{"text":"ok"}\n'.repeat(1000) + 'broken\n' });
  const fds = () => readdirSync('/proc/self/fd').length;
  const settle = () => new Promise((r) => setTimeout(r, 100));
  await settle();
  const before = fds();
  for await (const _ of readTexts(join(d, 'a.txt'))) break;
  await all(join(d, 'a.txt'), { maxItems: 3 });
  await t.throwsAsync(all(join(d, 'b.jsonl')));
  await settle();
  t.is(fds(), before);
});
