/** Built-in suites: deterministic, valid task files, made only from the held-out split. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { LepError } from '../../ts/errors.js';
import { BUILTIN_TASKS, buildSuites, readHeldout, writeBuiltinSuites } from '../../ts/eval/builtinSuites.js';
import { readTaskFile } from '../../ts/eval/taskFile.js';
import { corpora, CORPORA } from '../corpora.js';
import { tempDir } from '../helpers.js';

test('the suites are byte-identical across builds, valid, and drawn from held-out text', async (t) => {
  await corpora();
  const dir = tempDir();
  const { files } = writeBuiltinSuites(dir, CORPORA);
  const heldout = readHeldout(CORPORA);
  const again = buildSuites(heldout);
  t.deepEqual([...again.keys()].sort(), BUILTIN_TASKS.map((b) => b.name).sort());
  for (const f of files) {
    const tf = readTaskFile(f);
    t.true(readFileSync(f, 'utf8') === again.get(tf.header.name), `${tf.header.name} differs between builds`);
    t.true(tf.items.length >= 25 && tf.items.length <= 100, `${tf.header.name}: ${tf.items.length} items`);
    t.is(tf.header.shots.length, 5);
    // Shots are never test items.
    const shotText = new Set(tf.header.shots.map((s) => s.messages[0]!.content));
    t.false(tf.items.some((i) => shotText.has(i.messages[0]!.content)), tf.header.name);
  }
  // Copy references are held-out paragraphs (or sentences of them).
  for (const name of ['copy_para_en', 'copy_sent_ru']) {
    const tf = readTaskFile(join(dir, `${name}.jsonl`));
    const text = name.endsWith('en') ? heldout.en : heldout.ru;
    for (const i of tf.items) t.true(text.includes(i.gold as string), `${name} ${i.id}`);
  }
});

test("Debian 13's Russian man pages (NAME section headed НАИМЕНОВАНИЕ) make the same man-page tasks", async (t) => {
  // manpages-ru 4.27 (Debian 13) heads the NAME section НАИМЕНОВАНИЕ where Debian 12's has ИМЯ or
  // НАЗВАНИЕ; a fresh Debian 13 machine built man_sum_ru with no items and lep demo stopped on it.
  await corpora();
  const heldout = readHeldout(CORPORA);
  const trixie = { ...heldout, ru: heldout.ru.replace(/^(ИМЯ|НАЗВАНИЕ)$/gmu, 'НАИМЕНОВАНИЕ') };
  t.not(trixie.ru, heldout.ru);
  const [a, b] = [buildSuites(heldout), buildSuites(trixie)];
  for (const name of ['man_sum_ru', 'man_ext_ru']) {
    const items = (m: Map<string, string>) => m.get(name)!.trim().split('\n').length - 1;
    t.true(items(b) >= 25, `${name}: ${items(b)} items`);
    t.is(items(b), items(a), name);
  }
});

test('a held-out text without what a task is built from is refused when the suites are built, naming the task', async (t) => {
  await corpora();
  const read = readHeldout(CORPORA);
  const heldout = { ...read, ru: read.ru.replace(/^(ИМЯ|НАЗВАНИЕ)$/gmu, 'NOMEN') };
  const e = t.throws(() => buildSuites(heldout), { instanceOf: LepError });
  t.is(e!.code, 'LEP_CORPUS_EMPTY');
  t.regex(e!.message, /the built-in task man_sum_ru found no items .*\nHINT: .*NAME line/);
});
