/**
 * The built-in evaluation suites, made from the held-out Debian material only (.cache/corpora/heldout,
 * never used in training anywhere in lep), by a fixed seed: the same corpora give byte-identical files.
 * `scripts/make-eval-suites.ts` writes them; `evaluate` builds them on first use.
 *
 * | task | group | from | metric |
 * |---|---|---|---|
 * | copy_sent_en / _ru | Copy (EN) / (RU) | sentences (30–160 chars) of held-out paragraphs | length ratio in tokens |
 * | copy_para_en / _ru | Copy (EN) / (RU) | held-out paragraphs of 150–400 chars | LCS overlap ≥ 0.99 |
 * | translate_en_ru | Translation | LibreOffice help pairs (body paragraphs, 40–250 chars) | chrF |
 * | faq_en / _ru | QA | help page heading → its paragraphs (max over them), like the toy's training FAQ | EM/F1 |
 * | dict_choice | Choice | short help pairs: which of 4 Russian phrases translates the English one (distractors: other pairs) | acc + macro-F1 |
 * | dict_pair | Choice | the same with 2 options, scored in both orders (PARus rule) | acc |
 * | man_sum_en / _ru | Sum | man pages: DESCRIPTION (first paragraphs, ≤ 500 chars) → the NAME line's description | ROUGE-1/2 |
 * | man_ext_en / _ru | Sum | the same pages: rank DESCRIPTION's sentences; relevant = the one with the highest ROUGE-1 recall of the NAME line | R-precision |
 *
 * Prompts for copy, translation and FAQ are the ones the toy instruct model was tuned with
 * (ts/train/instructData.ts), so the toy family is tested on the skills it was given, on unseen text.
 * Each task file also carries 5 shots (items not in the test set) for the plain few-shot format.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomicWrite.js';
import { join } from 'node:path';

import { LepError } from '../errors.js';
import { COPY_PROMPT, FAQ_PROMPT, TRANSLATE_PROMPT, type HelpPair } from '../train/instructData.js';
import { seededRandom, shuffle } from '../util/random.js';
import { rougeN } from './metrics/rouge.js';
import type { TaskHeader } from './taskFile.js';

export const DEFAULT_SUITES_DIR = '.cache/eval-suites';
/** Items per task (fewer where the held-out material has fewer). */
export const DEFAULT_SUITE_ITEMS = 50;
export const SUITE_SEED = 2412;
export const SUITE_SHOTS = 5;
/** Bumped when the builder changes, so stale suites are rebuilt. */
export const SUITE_FORMAT = 1;
const MANIFEST = 'manifest.json';

type Header = Partial<TaskHeader> & Pick<TaskHeader, 'name' | 'group' | 'metric'>;
interface Item {
  id: string;
  messages: { role: string; content: string }[];
  gold: string | string[] | number[];
  inputs?: Record<string, string>;
  candidates?: string[];
}

export const BUILTIN_TASKS: readonly { name: string; group: string }[] = [
  { name: 'copy_sent_en', group: 'Copy (EN)' },
  { name: 'copy_para_en', group: 'Copy (EN)' },
  { name: 'copy_sent_ru', group: 'Copy (RU)' },
  { name: 'copy_para_ru', group: 'Copy (RU)' },
  { name: 'translate_en_ru', group: 'Translation' },
  { name: 'faq_en', group: 'QA' },
  { name: 'faq_ru', group: 'QA' },
  { name: 'dict_choice', group: 'Choice' },
  { name: 'dict_pair', group: 'Choice' },
  { name: 'man_sum_en', group: 'Sum' },
  { name: 'man_sum_ru', group: 'Sum' },
  { name: 'man_ext_en', group: 'Sum' },
  { name: 'man_ext_ru', group: 'Sum' },
];

export function builtinTaskFile(dir: string, name: string): string {
  return join(dir, `${name}.jsonl`);
}

export function heldoutTextFiles(corporaDir: string, lang: string): string {
  const f = join(corporaDir, 'heldout', `${lang}.txt`);
  if (!existsSync(f)) throw new LepError('LEP_NO_CORPORA', `no held-out text ${f}\nHINT: fetch them first: lep corpora fetch (into ./.cache/corpora; with --out DIR elsewhere, then pass --corpora DIR).`);
  return f;
}

/** Held-out documents: blank-line separated, one paragraph a line. */
function documents(text: string): string[][] {
  return text
    .split(/\n\s*\n/)
    .map((d) => d.split('\n').map((l) => l.trim()).filter(Boolean))
    .filter((d) => d.length > 0);
}

/** Sentences: split after . ! ? followed by a space and an upper-case letter (abbreviations aside, good enough). */
export function sentences(paragraph: string): string[] {
  return paragraph.split(/(?<=[.!?])\s+(?=[\p{Lu}"«(])/u).map((s) => s.trim()).filter(Boolean);
}

const proseLike = (s: string) => /[.!?]$/.test(s) && s.split(/\s+/).length >= 4 && !/[{};<>]|\(\w*\s*\*/.test(s);
const uniq = (xs: string[]) => [...new Set(xs)];

const isHeading = (l: string) => l.length < 40 && /^[\p{Lu}\d\s.,()-]+$/u.test(l) && /\p{Lu}{2}/u.test(l);

interface ManPage {
  key: string;
  summary: string;
  description: string;
  sentences: string[];
}

function manPages(docs: string[][], lang: 'en' | 'ru'): ManPage[] {
  const out: ManPage[] = [];
  // Russian man pages name the NAME section differently across manpages-l10n releases: ИМЯ / НАЗВАНИЕ
  // (Debian 12), НАИМЕНОВАНИЕ (Debian 13's 4.27).
  const nameHead = lang === 'en' ? ['NAME'] : ['ИМЯ', 'НАЗВАНИЕ', 'НАИМЕНОВАНИЕ'];
  const descHead = lang === 'en' ? 'DESCRIPTION' : 'ОПИСАНИЕ';
  for (const d of docs) {
    if (!nameHead.includes(d[0]!) || !d[1]) continue;
    const m = d[1].match(/^(.+?)\s+[-—–]\s+(.+)$/u);
    if (!m) continue;
    const at = d.indexOf(descHead);
    if (at < 0) continue;
    const paras: string[] = [];
    for (const l of d.slice(at + 1)) {
      if (isHeading(l)) break;
      if (!proseLike(l)) continue;
      if (paras.join(' ').length + l.length > 500) break;
      paras.push(l);
    }
    const description = paras.join('\n');
    const sents = paras.flatMap(sentences).slice(0, 8);
    if (description.length < 80 || m[2]!.length < 10) continue;
    out.push({ key: m[1]!, summary: m[2]!.trim(), description, sentences: sents });
  }
  return out;
}

const user = (content: string) => [{ role: 'user', content }];

/** Splits a shuffled pool into test items and shots. */
function take<T>(pool: T[], n: number): { test: T[]; shots: T[] } {
  return { shots: pool.slice(0, SUITE_SHOTS), test: pool.slice(SUITE_SHOTS, SUITE_SHOTS + n) };
}

function task(header: Header, pool: Item[], n: number): { header: Header; items: Item[] } {
  const { test, shots } = take(pool, n);
  return { header: { ...header, shots: shots.map(({ messages, gold, inputs, candidates }) => ({ messages, gold, inputs, candidates })) }, items: test };
}

/** Builds every built-in task from held-out text: task name → JSONL text. Pure and deterministic. */
export function buildSuites(heldout: { en: string; ru: string; pairs: HelpPair[] }, n = DEFAULT_SUITE_ITEMS): Map<string, string> {
  const rand = seededRandom(SUITE_SEED);
  const tasks: { header: Header; items: Item[] }[] = [];
  const docs = { en: documents(heldout.en), ru: documents(heldout.ru) };
  for (const lang of ['en', 'ru'] as const) {
    const paras = uniq(docs[lang].flat());
    const sents = shuffle(uniq(paras.flatMap(sentences).filter((s) => s.length >= 30 && s.length <= 160 && proseLike(s))), rand);
    const copy = (kind: string) => (t: string, i: number): Item => ({ id: `${kind}-${lang}-${i}`, messages: user(COPY_PROMPT[lang] + t), gold: t });
    const grp = lang === 'en' ? 'Copy (EN)' : 'Copy (RU)';
    tasks.push(task({ name: `copy_sent_${lang}`, group: grp, kind: 'generate', metric: 'copy_sentence', maxNewTokens: 128 }, sents.map(copy('sent')), n));
    const long = shuffle(paras.filter((p) => p.length >= 150 && p.length <= 400 && proseLike(p)), rand);
    tasks.push(task({ name: `copy_para_${lang}`, group: grp, kind: 'generate', metric: 'copy_paragraph', maxNewTokens: 1024 }, long.map(copy('para')), n));
  }
  // Translation EN→RU from body paragraphs of the help pairs.
  const seen = new Set<string>();
  const body = heldout.pairs.filter((p) => p.id.startsWith('par_id') && p.en.length >= 40 && p.en.length <= 250 && !seen.has(p.en) && seen.add(p.en));
  tasks.push(
    task(
      { name: 'translate_en_ru', group: 'Translation', kind: 'generate', metric: 'chrf', maxNewTokens: 256 },
      shuffle(body, rand).map((p, i) => ({ id: `tr-${i}`, messages: user(TRANSLATE_PROMPT.en + p.en), gold: p.ru })),
      n,
    ),
  );
  // FAQ: a help page's heading asks, its paragraphs answer (max over them; the shortest first).
  const pages = new Map<string, { heading?: HelpPair; paras: HelpPair[] }>();
  for (const p of heldout.pairs) {
    const page = pages.get(p.path) ?? { paras: [] };
    if (p.id.startsWith('hd_id')) page.heading ??= p;
    else if (p.id.startsWith('par_id')) page.paras.push(p);
    pages.set(p.path, page);
  }
  const faqPages = shuffle([...pages.values()].filter((p) => p.heading && p.paras.length > 0), rand);
  for (const lang of ['en', 'ru'] as const) {
    const items = faqPages.map((p, i) => ({
      id: `faq-${lang}-${i}`,
      messages: user(FAQ_PROMPT[lang](p.heading![lang])),
      gold: uniq([...p.paras].sort((a, b) => a[lang].length - b[lang].length).map((x) => x[lang])),
    }));
    tasks.push(task({ name: `faq_${lang}`, group: 'QA', kind: 'generate', metric: 'qa', maxNewTokens: 128 }, items, n));
  }
  // Dictionary choice: short pairs, distractors from other pairs.
  const seenEn = new Set<string>();
  const seenRu = new Set<string>();
  const short = shuffle(
    heldout.pairs.filter((p) => p.en.length >= 3 && p.en.length <= 40 && p.ru.length <= 60 && p.en !== p.ru && !seenEn.has(p.en.toLowerCase()) && !seenRu.has(p.ru.toLowerCase()) && seenEn.add(p.en.toLowerCase()) && seenRu.add(p.ru.toLowerCase())),
    rand,
  );
  const labels = ['A', 'B', 'C', 'D'];
  const choiceItems = short.map((p, i): Item => {
    const others = shuffle(short.filter((q) => q !== p), rand).slice(0, 3).map((q) => q.ru);
    const at = Math.floor(rand() * 4);
    const options = [...others];
    options.splice(at, 0, p.ru);
    const lines = options.map((o, k) => `${labels[k]}. ${o}`).join('\n');
    return { id: `dict-${i}`, messages: user(`Which Russian phrase translates "${p.en}"?\n${lines}\nAnswer with the letter.`), gold: labels[at]! };
  });
  tasks.push(task({ name: 'dict_choice', group: 'Choice', kind: 'choice', metric: 'choice', choices: labels, score: 'acc_f1' }, choiceItems, n));
  const pairItems = shuffle(short, rand).map((p, i): Item => {
    const other = short[(short.indexOf(p) + 1 + Math.floor(rand() * (short.length - 1))) % short.length]!.ru;
    const first = rand() < 0.5;
    return {
      id: `pair-${i}`,
      messages: user(`Which is the Russian translation of "${p.en}"?\nA. {choice1}\nB. {choice2}\nAnswer with the letter.`),
      inputs: { choice1: first ? p.ru : other, choice2: first ? other : p.ru },
      gold: first ? 'A' : 'B',
    };
  });
  tasks.push(task({ name: 'dict_pair', group: 'Choice', kind: 'choice', metric: 'choice', choices: ['A', 'B'], bothOrders: true, score: 'acc' }, pairItems, n));
  // Man-page summaries.
  const sumPrompt = { en: 'Summarise this manual page in one line:\n\n', ru: 'Кратко, одной строкой, перескажи эту страницу руководства:\n\n' };
  const extPrompt = { en: 'Which sentence of this manual page says best what it is about?\n\n', ru: 'Какое предложение этой страницы руководства лучше всего говорит, о чём она?\n\n' };
  for (const lang of ['en', 'ru'] as const) {
    const man = shuffle(manPages(docs[lang], lang), rand);
    tasks.push(
      task(
        { name: `man_sum_${lang}`, group: 'Sum', kind: 'generate', metric: 'rouge', maxNewTokens: 48, stop: ['\n'] },
        man.map((m, i) => ({ id: `sum-${lang}-${i}-${m.key}`, messages: user(sumPrompt[lang] + m.description), gold: m.summary })),
        n,
      ),
    );
    const ext = man.filter((m) => m.sentences.length >= 2);
    tasks.push(
      task(
        { name: `man_ext_${lang}`, group: 'Sum', kind: 'loglik', metric: 'r_precision' },
        ext.map((m, i) => {
          const recall = m.sentences.map((s) => rougeN(m.summary, s, 1).precision); // share of the summary's words found in s
          const best = recall.reduce((b, r, k) => (r > recall[b]! ? k : b), 0);
          return { id: `ext-${lang}-${i}-${m.key}`, messages: user(extPrompt[lang] + m.description), candidates: m.sentences, gold: [best] };
        }),
        n,
      ),
    );
  }
  const out = new Map<string, string>();
  for (const t of tasks) {
    // A task with no items is a corpus this builder cannot read (Debian 13 renamed a man-page heading once):
    // say so here, not later as a task file evaluation refuses.
    if (t.items.length === 0)
      throw new LepError(
        'LEP_CORPUS_EMPTY',
        `the built-in task ${t.header.name} found no items in the held-out corpora (heldout/en.txt, heldout/ru.txt, heldout/pairs.jsonl)\nHINT: the text lacks what the task is built from (man_* tasks: man pages with a NAME line "name - summary" and a DESCRIPTION section); remove the corpora folder to fetch it again, and if it persists on this Debian release, report it.`,
      );
    out.set(t.header.name, [JSON.stringify({ task: t.header }), ...t.items.map((i) => JSON.stringify(i))].join('\n') + '\n');
  }
  return out;
}

/** The held-out corpora the suites are built from, with one hash over all three files. */
export function readHeldout(corporaDir: string): { en: string; ru: string; pairs: HelpPair[]; hash: string } {
  const files = ['en.txt', 'ru.txt', 'pairs.jsonl'].map((f) => join(corporaDir, 'heldout', f));
  const missing = files.filter((f) => !existsSync(f));
  if (missing.length > 0)
    throw new LepError('LEP_NO_CORPORA', `the built-in suites need the held-out corpora; missing ${missing.join(', ')}\nHINT: fetch them first: lep corpora fetch (into ./.cache/corpora; with --out DIR elsewhere, then pass --corpora DIR).`);
  const [en, ru, pairsText] = files.map((f) => readFileSync(f, 'utf8')) as [string, string, string];
  const pairs = pairsText.split('\n').filter(Boolean).map((l) => JSON.parse(l) as HelpPair);
  const hash = createHash('sha256').update(en).update('\0').update(ru).update('\0').update(pairsText).digest('hex');
  return { en, ru, pairs, hash };
}

/** Writes the suites into `dir` (atomically, file by file) with a manifest; returns the task files. */
export function writeBuiltinSuites(dir: string, corporaDir: string, n = DEFAULT_SUITE_ITEMS): { files: string[]; manifest: Record<string, unknown> } {
  const held = readHeldout(corporaDir);
  const suites = buildSuites(held, n);
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  const counts: Record<string, { items: number; sha256: string }> = {};
  for (const [name, text] of suites) {
    const f = builtinTaskFile(dir, name);
    writeFileAtomic(f, text);
    files.push(f);
    counts[name] = { items: text.split('\n').filter(Boolean).length - 1, sha256: createHash('sha256').update(text).digest('hex') };
  }
  const manifest = { format: SUITE_FORMAT, seed: SUITE_SEED, itemsPerTask: n, heldoutSha256: held.hash, tasks: counts, madeBy: 'scripts/make-eval-suites.ts' };
  writeFileAtomic(join(dir, MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
  return { files, manifest };
}

/** Builds the suites unless `dir` already holds them for these held-out corpora and this builder. */
export function ensureBuiltinSuites(dir: string, corporaDir: string): void {
  const m = join(dir, MANIFEST);
  if (existsSync(m)) {
    const manifest = JSON.parse(readFileSync(m, 'utf8')) as { format?: number; tasks?: Record<string, unknown> };
    if (manifest.format === SUITE_FORMAT && BUILTIN_TASKS.every((t) => manifest.tasks?.[t.name] && existsSync(builtinTaskFile(dir, t.name)))) return;
  }
  writeBuiltinSuites(dir, corporaDir);
}
