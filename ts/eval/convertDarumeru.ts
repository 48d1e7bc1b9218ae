/**
 * Converts the Darumeru benchmark's datasets (docs/method.md §6) into lep task files, so anyone holding the
 * data runs the paper's 17 datasets with `lep eval MODEL --tasks DIR/*.jsonl`:
 *
 *   1. find each set's test (and prompt/dev) JSONL file in the input directory: `IN/SET/test.jsonl` or
 *      `IN/data/SET/test.jsonl` (the layout of the RefalMachine/darumeru snapshot), or one file with `set`;
 *   2. read the records (MERA format: `instruction` or `messages`, `inputs`, `outputs`, `meta`),
 *      failing on a malformed one with its file and line;
 *   3. build the items: messages with `{name}` placeholders filled from `inputs` (Python str.format
 *      rules, `{{` is a brace), the gold answer, the subject (MMLU) or exam meta (USE); prompt-split
 *      records become the task's few-shot examples (their answer taken off the last message, since
 *      lep appends the gold answer itself);
 *   4. write one task file per dataset and a manifest of what was converted from what.
 *
 * | set (directory) | task file(s) | group | how it is scored |
 * |---|---|---|---|
 * | rummlu | rummlu | DaruMMLU | choice A–D; accuracy per subject (meta.domain) → category → mean |
 * | mmlu_nlpcoreteam | mmlu_ru, mmlu_en | DaruMMLU | the same; prompt built here (MMLU headline + lettered options + "Answer:"), 5 dev shots per subject |
 * | multiq | multiq | DaruMERA | generation; mean of EM and F1, max over outputs[].segment |
 * | parus | parus | DaruMERA | choice 1/2, right only if right with the options in both orders |
 * | rcb | rcb | DaruMERA | choice 1/2/3; mean of accuracy and macro-F1 |
 * | rwsd | rwsd | DaruMERA | choice Да/Нет; accuracy |
 * | use | use | DaruMERA | generation; exam grade (metrics/useGrade.ts) |
 * | ruopenbookqa, ruworldtree | same | DaruMERA | choice A–D; mean of accuracy and macro-F1 |
 * | rucola | rucola | DaruMERA | choice 0/1; mean of accuracy and MCC (RuCoLA records: sentence, label; prompt built here) |
 * | cp_sent_ru/en, cp_para_ru/en | same | DaruCopy (RU)/(EN) | copy of inputs.text: length ratio / overlap ≥ 0.99 |
 * | daru_treeway_eval | sum_abstractive, sum_extractive | DaruSum | ROUGE-1/2 of a TL;DR summary; R-precision of the source sentences ranked by log-prob |
 *
 * Record formats are those of MERA's dataset cards and of llmtf (the authors' harness) as it reads
 * Darumeru; where a set carries no messages (MMLU-nlpcoreteam, RuCoLA, treeway), the prompt is built
 * here after llmtf's, so scores compare with the paper's but need not match them to the last digit.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomicWrite.js';
import { join } from 'node:path';

import { LepError } from '../errors.js';
import { checkUseMeta } from './metrics/useGrade.js';
import { MMLU_SUBJECTS_RU, mmluCategory } from './mmluSubjects.js';
import type { TaskHeader, TaskItem, TaskMessage, TaskShot as Shot } from './taskFile.js';
import { checkOutputPath } from '../util/checkOutputPath.js';

/** Few-shot examples kept per task (per subject for MMLU): enough for the paper's 5-shot runs and a few more. */
export const CONVERT_MAX_SHOTS = 10;

type Rec = Record<string, unknown>;

export interface SourceRecord {
  file: string;
  /** 1-based line. */
  line: number;
  value: Rec;
}

/** An item as written (the reader adds line numbers and resolves categories). */
type Item = Omit<TaskItem, 'line' | 'category'>;
type Header = Partial<Omit<TaskHeader, 'shots' | 'shotsBySubject'>> & Pick<TaskHeader, 'name' | 'group' | 'metric'> & { shots?: Shot[]; shotsBySubject?: Record<string, Shot[]> };

export interface ConvertedTask {
  header: Header;
  items: Item[];
}

const isObj = (v: unknown): v is Rec => !!v && typeof v === 'object' && !Array.isArray(v);

const recordError = (r: SourceRecord, message: string) =>
  new LepError('LEP_CONVERT', `${r.file}:${r.line}: ${message}\nHINT: the Darumeru files are JSON lines in MERA's format (instruction or messages, inputs, outputs, meta); see ts/eval/convertDarumeru.ts.`);

/** Reads a JSONL file of objects; a line that is not a JSON object is an error naming the file and line. */
export function readJsonlRecords(file: string): SourceRecord[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new LepError('LEP_CONVERT', `cannot read ${file}: ${(e as Error).message}`);
  }
  const out: SourceRecord[] = [];
  text.split('\n').forEach((raw, i) => {
    if (raw.trim() === '') return;
    const r: SourceRecord = { file, line: i + 1, value: {} };
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch (e) {
      throw recordError(r, `not valid JSON (${(e as Error).message})`);
    }
    if (!isObj(v)) throw recordError(r, 'a record must be a JSON object');
    out.push({ ...r, value: v });
  });
  return out;
}

/** `{name}` → inputs[name] (names in `keep` stay for the harness to fill), `{{` / `}}` → braces, as Python's str.format. */
function fillTemplate(text: string, inputs: Record<string, string>, keep: readonly string[]): string {
  return text.replace(/\{\{|\}\}|\{(\w+)\}/g, (m, name: string | undefined) => {
    if (name === undefined) return m[0]!;
    if (keep.includes(name)) return m;
    const v = inputs[name];
    if (v === undefined) throw new Error(`the prompt's placeholder {${name}} has no value in inputs`);
    return v;
  });
}

function scalarInputs(v: unknown): Record<string, string> {
  if (v === undefined) return {};
  if (!isObj(v)) throw new Error('inputs must be an object');
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) if (typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean') out[k] = String(x);
  return out;
}

/** llmtf names the assistant `bot`; chat templates know `assistant`. */
const role = (r: string) => (r === 'bot' ? 'assistant' : r);

/** The prompt of a MERA/Darumeru record: its `messages`, else its `instruction` as one user message. */
function recordMessages(v: Rec, keep: readonly string[] = []): { messages: TaskMessage[]; inputs: Record<string, string> } {
  const inputs = scalarInputs(v.inputs);
  let raw: TaskMessage[];
  if (Array.isArray(v.messages)) {
    raw = v.messages.map((m, i) => {
      if (!isObj(m) || typeof m.role !== 'string' || typeof m.content !== 'string') throw new Error(`messages[${i}] must be {role, content}`);
      return { role: role(m.role), content: m.content };
    });
    if (raw.length === 0) throw new Error('messages is empty');
  } else if (typeof v.instruction === 'string') raw = [{ role: 'user', content: v.instruction }];
  else throw new Error('a record needs messages or an instruction');
  return { messages: raw.map((m) => ({ role: m.role, content: fillTemplate(m.content, inputs, keep) })), inputs };
}

function recordId(r: SourceRecord, seen: Set<string>): string {
  const meta = isObj(r.value.meta) ? r.value.meta : {};
  let id = String(meta.id ?? r.value.id ?? r.line);
  if (seen.has(id)) id = `${id}@${r.line}`; // some sets repeat ids across rows; keep the line unique
  seen.add(id);
  return id;
}

/** A prompt-split record as a shot: lep appends the gold answer, so take it off a final assistant message. */
function toShot(item: Omit<Item, 'id'>, answer: string): Shot {
  const messages = item.messages.map((m) => ({ ...m }));
  const last = messages[messages.length - 1]!;
  if (last.role === 'assistant' && answer !== '' && last.content.trimEnd().endsWith(answer)) {
    last.content = last.content.trimEnd().slice(0, -answer.length).trimEnd();
    if (last.content === '') messages.pop();
  }
  return { messages, gold: item.gold, ...(item.inputs ? { inputs: item.inputs } : {}), ...(item.candidates ? { candidates: item.candidates } : {}) };
}

/** Runs `f` on a record; its error becomes one naming the record's file and line. */
function atRecord<T>(r: SourceRecord, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof LepError) throw e;
    throw recordError(r, (e as Error).message);
  }
}

/** Builds items from test records and shots from prompt records with one record → item function. */
function build(header: Header, test: SourceRecord[], prompt: SourceRecord[], toItem: (r: SourceRecord) => Omit<Item, 'id'>, answer: (i: Omit<Item, 'id'>) => string): ConvertedTask {
  const seen = new Set<string>();
  const items = test.map((r) => atRecord(r, () => ({ id: recordId(r, seen), ...toItem(r) })));
  const shots = prompt.slice(0, CONVERT_MAX_SHOTS).map((r) => atRecord(r, () => { const it = toItem(r); return toShot(it, answer(it)); }));
  return { header: { ...header, ...(shots.length ? { shots } : {}) }, items };
}

const goldText = (i: Omit<Item, 'id'>) => (typeof i.gold === 'string' ? i.gold : '');

/** A MERA choice set: the record's prompt, `outputs` one of the labels (or starting with one, RWSD). */
function choiceTask(header: Header, test: SourceRecord[], prompt: SourceRecord[], opts: { keep?: string[]; prefixGold?: boolean; subject?: (v: Rec) => string } = {}): ConvertedTask {
  const labels = header.choices!;
  return build(header, test, prompt, (r) => {
    const { messages, inputs } = recordMessages(r.value, opts.keep);
    const out = typeof r.value.outputs === 'number' ? String(r.value.outputs) : r.value.outputs;
    if (typeof out !== 'string') throw new Error(`outputs must be one of ${JSON.stringify(labels)}`);
    // RWSD's outputs may carry more than the label (llmtf counts a label right if outputs starts with it).
    const gold = opts.prefixGold ? labels.find((l) => out.trim().startsWith(l)) : labels.find((l) => l === out.trim());
    if (gold === undefined) throw new Error(`outputs must be one of ${JSON.stringify(labels)}, got ${JSON.stringify(out)}`);
    const kept = opts.keep?.length ? Object.fromEntries(opts.keep.map((k) => [k, inputs[k] ?? ''])) : undefined;
    if (kept && Object.values(kept).some((x) => x === '')) throw new Error(`inputs needs ${opts.keep!.join(' and ')}`);
    return { messages, gold, ...(kept ? { inputs: kept } : {}), ...(opts.subject ? { subject: opts.subject(r.value) } : {}) };
  }, goldText);
}

const LETTERS = ['A', 'B', 'C', 'D'];
const GROUP = { mmlu: 'DaruMMLU', mera: 'DaruMERA', sum: 'DaruSum', copyEn: 'DaruCopy (EN)', copyRu: 'DaruCopy (RU)' } as const;

/** The header's subject → category map for the subjects present; unknown subjects are their own category. */
function categoriesOf(items: Item[]): { categories: Record<string, string>; unknown: string[] } {
  const categories: Record<string, string> = {};
  const unknown = new Set<string>();
  for (const i of items) {
    const c = mmluCategory(i.subject!);
    if (c) categories[i.subject!] = c;
    else unknown.add(i.subject!);
  }
  return { categories, unknown: [...unknown].sort() };
}

function rummlu(test: SourceRecord[], prompt: SourceRecord[]): ConvertedTask[] {
  const domain = (v: Rec) => {
    const d = isObj(v.meta) ? v.meta.domain : undefined;
    if (typeof d !== 'string' || d === '') throw new Error('meta.domain (the MMLU subject) is missing');
    return d;
  };
  const t = choiceTask({ name: 'rummlu', group: GROUP.mmlu, kind: 'choice', metric: 'choice', choices: LETTERS, score: 'acc', aggregate: 'subjects' }, test, prompt, { subject: domain });
  // Shots are not per subject here: the Darumeru prompt split is one small pool, as llmtf uses it.
  t.header.categories = categoriesOf(t.items).categories;
  return [t];
}

/** MMLU-ru / MMLU-en from NLP-Core-Team's mmlu_ru records (question_ru/en, choices_ru/en, answer, subject). */
function mmluNlpCoreTeam(test: SourceRecord[], dev: SourceRecord[]): ConvertedTask[] {
  const headline = { en: 'The following are multiple choice questions (with answers) about', ru: 'Ниже приведены вопросы с множественным выбором (с ответами) по' };
  const answerPrefix = { en: 'Answer:', ru: 'Ответ:' };
  return (['ru', 'en'] as const).map((lang) => {
    const item = (r: SourceRecord, withHeadline: boolean): Omit<Item, 'id'> & { subject: string } => {
      const v = r.value;
      const subject = v.subject;
      if (typeof subject !== 'string' || subject === '') throw new Error('subject is missing');
      const q = v[`question_${lang}`];
      const choices = v[`choices_${lang}`];
      if (typeof q !== 'string') throw new Error(`question_${lang} must be a string`);
      if (!Array.isArray(choices) || choices.length !== 4 || !choices.every((c) => typeof c === 'string')) throw new Error(`choices_${lang} must be 4 strings`);
      const gold = typeof v.answer === 'number' ? LETTERS[v.answer] : typeof v.answer === 'string' ? LETTERS.find((l) => l === v.answer) : undefined;
      if (gold === undefined) throw new Error(`answer must be 0–3 or A–D, got ${JSON.stringify(v.answer)}`);
      const name = lang === 'ru' ? (MMLU_SUBJECTS_RU[subject] ?? subject.replaceAll('_', ' ')) : subject.replaceAll('_', ' ');
      const body = [q, ...choices.map((c, k) => `${LETTERS[k]}. ${c}`)].join('\n');
      const content = withHeadline ? `${headline[lang]} ${name}.\n\n${body}` : body;
      return { messages: [{ role: 'user', content }, { role: 'assistant', content: answerPrefix[lang] }], gold, subject };
    };
    const seen = new Set<string>();
    // Zero-shot prompts carry the headline; in the plain few-shot format the item follows its subject's dev shots.
    const items: Item[] = test.map((r) => atRecord(r, () => ({ id: recordId(r, seen), ...item(r, true) })));
    const shotsBySubject: Record<string, Shot[]> = {};
    for (const r of dev) {
      const it = atRecord(r, () => item(r, false));
      const list = (shotsBySubject[it.subject] ??= []);
      if (list.length < CONVERT_MAX_SHOTS) list.push({ messages: it.messages, gold: it.gold });
    }
    const header: Header = {
      name: `mmlu_${lang}`, group: GROUP.mmlu, kind: 'choice', metric: 'choice', choices: LETTERS, score: 'acc', aggregate: 'subjects',
      categories: categoriesOf(items).categories, ...(dev.length ? { shotsBySubject } : {}),
    };
    return { header, items };
  });
}

function multiq(test: SourceRecord[], prompt: SourceRecord[]): ConvertedTask[] {
  return [build({ name: 'multiq', group: GROUP.mera, kind: 'generate', metric: 'qa', maxNewTokens: 64 }, test, prompt, (r) => {
    const out = r.value.outputs;
    const answers = typeof out === 'string' ? [out] : Array.isArray(out) ? out.map((o) => (isObj(o) ? o.segment : o)) : [];
    if (answers.length === 0 || !answers.every((a) => typeof a === 'string' && a !== '')) throw new Error('outputs must be a list of {segment} answers');
    return { messages: recordMessages(r.value).messages, gold: answers as string[] };
  }, (i) => (i.gold as string[])[0]!)];
}

function use(test: SourceRecord[], prompt: SourceRecord[]): ConvertedTask[] {
  return [build({ name: 'use', group: GROUP.mera, kind: 'generate', metric: 'use_grade', maxNewTokens: 64 }, test, prompt, (r) => {
    const m = isObj(r.value.meta) ? r.value.meta : {};
    const meta = { type: m.type, id_task: typeof m.id_task === 'number' ? String(m.id_task) : m.id_task, variant: m.variant } as Record<string, string | number>;
    checkUseMeta(meta);
    if (typeof r.value.outputs !== 'string' || r.value.outputs === '') throw new Error('outputs must be the answer string');
    return { messages: recordMessages(r.value).messages, gold: r.value.outputs, meta };
  }, goldText)];
}

function copy(name: string, group: string, metric: 'copy_sentence' | 'copy_paragraph') {
  return (test: SourceRecord[], prompt: SourceRecord[]): ConvertedTask[] => [
    build({ name, group, kind: 'generate', metric, maxNewTokens: metric === 'copy_sentence' ? 128 : 1024 }, test, prompt, (r) => {
      const text = isObj(r.value.inputs) ? r.value.inputs.text : undefined;
      if (typeof text !== 'string' || text === '') throw new Error('inputs.text (the text to copy) is missing');
      return { messages: recordMessages(r.value).messages, gold: text };
    }, goldText),
  ];
}

/** RuCoLA (RussianNLP/rucola): {sentence, label}; the prompt is built here. */
function rucola(test: SourceRecord[], prompt: SourceRecord[]): ConvertedTask[] {
  const instruction =
    'Определи, приемлемо ли предложение для русского языка с точки зрения синтаксиса, морфологии и семантики. Ответь одним числом: 1, если приемлемо, или 0, если нет.\nТекст: ';
  // A train split given as the prompt file: llmtf takes its shots from row 29 on, where labels are balanced.
  const shots = prompt.length > 2 * CONVERT_MAX_SHOTS ? prompt.slice(29) : prompt;
  return [build({ name: 'rucola', group: GROUP.mera, kind: 'choice', metric: 'choice', choices: ['0', '1'], score: 'acc_mcc' }, test, shots, (r) => {
    const { sentence, label } = r.value;
    if (typeof sentence !== 'string' || sentence === '') throw new Error('sentence is missing');
    const gold = String(label);
    if (gold !== '0' && gold !== '1') throw new Error(`label must be 0 or 1, got ${JSON.stringify(label)}`);
    return { messages: [{ role: 'user', content: instruction + sentence }, { role: 'assistant', content: 'Ответ:' }], gold };
  }, goldText)];
}

/** DaruSum from the treeway records: {src_sents, summary_sents, extractive_summary}. */
function treeway(test: SourceRecord[], prompt: SourceRecord[]): ConvertedTask[] {
  const strings = (v: unknown, what: string): string[] => {
    if (!Array.isArray(v) || v.length === 0 || !v.every((s) => typeof s === 'string')) throw new Error(`${what} must be a non-empty list of sentences`);
    return v as string[];
  };
  const abstractive = build({ name: 'sum_abstractive', group: GROUP.sum, kind: 'generate', metric: 'rouge', maxNewTokens: 512 }, test, prompt, (r) => {
    const text = strings(r.value.src_sents, 'src_sents').join(' ');
    const summary = strings(r.value.summary_sents, 'summary_sents').join(' ');
    const user = `Напиши краткую аннотацию к тексту на русском языке. Начни ответ с TL;DR, без рассуждений и пояснений, только аннотация.\n**Текст:**\n${text}`;
    return { messages: [{ role: 'user', content: user }, { role: 'assistant', content: 'TL;DR:' }], gold: summary };
  }, goldText);
  const extractive = build({ name: 'sum_extractive', group: GROUP.sum, kind: 'loglik', metric: 'r_precision' }, test, [], (r) => {
    const sents = strings(r.value.src_sents, 'src_sents');
    const rel = r.value.extractive_summary;
    if (!Array.isArray(rel) || rel.length === 0 || !rel.every((k) => Number.isInteger(k) && k >= 0 && k < sents.length))
      throw new Error('extractive_summary must be a non-empty list of indices into src_sents');
    const user = `Определи наиболее важные предложения текста.\nТекст: ${sents.join(' ')}`;
    return { messages: [{ role: 'user', content: user }, { role: 'assistant', content: 'Наиболее важные предложения статьи:' }], candidates: sents, gold: rel as number[] };
  }, () => '');
  return [abstractive, extractive];
}

const choice = (name: string, choices: string[], score: TaskHeader['score'], opts: Parameters<typeof choiceTask>[3] = {}, extra: Partial<Header> = {}) =>
  (test: SourceRecord[], prompt: SourceRecord[]) => [choiceTask({ name, group: GROUP.mera, kind: 'choice', metric: 'choice', choices, score, ...extra }, test, prompt, opts)];

interface SetSpec {
  /** File names tried for the test split, then for the few-shot split. */
  test: string[];
  prompt: string[];
  convert: (test: SourceRecord[], prompt: SourceRecord[]) => ConvertedTask[];
}

const SPLITS = { test: ['test.jsonl'], prompt: ['prompt.jsonl'] };

/** The Darumeru sets lep converts, by their directory name in the snapshot. */
export const DARUMERU_SETS: Readonly<Record<string, SetSpec>> = {
  rummlu: { ...SPLITS, convert: rummlu },
  mmlu_nlpcoreteam: { test: ['test.jsonl'], prompt: ['dev.jsonl', 'prompt.jsonl'], convert: mmluNlpCoreTeam },
  multiq: { ...SPLITS, convert: multiq },
  parus: { ...SPLITS, convert: choice('parus', ['1', '2'], 'acc', { keep: ['choice1', 'choice2'] }, { bothOrders: true }) },
  rcb: { ...SPLITS, convert: choice('rcb', ['1', '2', '3'], 'acc_f1') },
  rwsd: { ...SPLITS, convert: choice('rwsd', ['Да', 'Нет'], 'acc', { prefixGold: true }) },
  use: { ...SPLITS, convert: use },
  ruopenbookqa: { ...SPLITS, convert: choice('ruopenbookqa', LETTERS, 'acc_f1') },
  ruworldtree: { ...SPLITS, convert: choice('ruworldtree', LETTERS, 'acc_f1') },
  rucola: { test: ['test.jsonl', 'validation.jsonl'], prompt: ['prompt.jsonl', 'train.jsonl'], convert: rucola },
  cp_sent_ru: { ...SPLITS, convert: copy('cp_sent_ru', GROUP.copyRu, 'copy_sentence') },
  cp_para_ru: { ...SPLITS, convert: copy('cp_para_ru', GROUP.copyRu, 'copy_paragraph') },
  cp_sent_en: { ...SPLITS, convert: copy('cp_sent_en', GROUP.copyEn, 'copy_sentence') },
  cp_para_en: { ...SPLITS, convert: copy('cp_para_en', GROUP.copyEn, 'copy_paragraph') },
  daru_treeway_eval: { ...SPLITS, convert: treeway },
};

export interface ConvertOptions {
  /** Sets to convert (directory names, see DARUMERU_SETS). Defaults to every set found in the input. */
  sets?: string[];
  /** Convert one JSONL file as this set (the input is then a file, not a directory). Defaults to none. */
  set?: string;
  /** With `set`: the prompt (few-shot) JSONL file. Defaults to none (no shots). */
  promptFile?: string;
}

export interface ConvertReport {
  tasks: { name: string; group: string; file: string; items: number; shots: number; from: string[] }[];
  /** MMLU subjects outside the 57 known ones (each is then its own category). */
  unknownSubjects: string[];
  manifest: string;
}

const findFile = (dir: string, names: string[]) => names.map((n) => join(dir, n)).find((f) => existsSync(f));

function setDir(input: string, set: string): string | undefined {
  return [join(input, set), join(input, 'data', set)].find((d) => existsSync(d) && statSync(d).isDirectory() && findFile(d, DARUMERU_SETS[set]!.test));
}

const unknownSet = (s: string) =>
  new LepError('LEP_CONVERT', `unknown Darumeru set ${JSON.stringify(s)}\nHINT: sets are ${Object.keys(DARUMERU_SETS).join(', ')}.`);

/** Task file text: the header line, then one item a line. */
export function taskFileText(t: ConvertedTask): string {
  return [JSON.stringify({ task: t.header }), ...t.items.map((i) => JSON.stringify(i))].join('\n') + '\n';
}

/** Converts the Darumeru sets under `input` (or one file with `set`) into task files in `outDir`. */
export function convertDarumeru(input: string, outDir: string, options: ConvertOptions = {}): ConvertReport {
  checkOutputPath(outDir, '--out', { IN: input, '--prompt': options.promptFile });
  const jobs: { set: string; test: string; prompt?: string }[] = [];
  if (options.set !== undefined) {
    if (!DARUMERU_SETS[options.set]) throw unknownSet(options.set);
    if (!existsSync(input) || statSync(input).isDirectory()) throw new LepError('LEP_CONVERT', `with --set, the input must be the set's test JSONL file; got ${input}`);
    jobs.push({ set: options.set, test: input, prompt: options.promptFile });
  } else {
    if (!existsSync(input) || !statSync(input).isDirectory())
      throw new LepError('LEP_CONVERT', `${input} is not a directory\nHINT: pass the Darumeru snapshot directory (with SET/test.jsonl or data/SET/test.jsonl), or one file with --set SET.`);
    for (const s of options.sets ?? []) if (!DARUMERU_SETS[s]) throw unknownSet(s);
    for (const set of options.sets ?? Object.keys(DARUMERU_SETS)) {
      const dir = setDir(input, set);
      if (!dir) {
        if (options.sets) throw new LepError('LEP_CONVERT', `no ${set}/test.jsonl (nor data/${set}/test.jsonl) under ${input}`);
        continue;
      }
      const spec = DARUMERU_SETS[set]!;
      jobs.push({ set, test: findFile(dir, spec.test)!, prompt: findFile(dir, spec.prompt) });
    }
    if (jobs.length === 0)
      throw new LepError('LEP_CONVERT', `no Darumeru set found under ${input}\nHINT: expected SET/test.jsonl or data/SET/test.jsonl for SET in ${Object.keys(DARUMERU_SETS).join(', ')}.`);
  }
  // Convert everything before writing anything, so a malformed record leaves no half-written output.
  const converted = jobs.map((j) => ({ ...j, tasks: DARUMERU_SETS[j.set]!.convert(readJsonlRecords(j.test), j.prompt ? readJsonlRecords(j.prompt) : []) }));
  mkdirSync(outDir, { recursive: true });
  const report: ConvertReport = { tasks: [], unknownSubjects: [], manifest: join(outDir, 'darumeru-manifest.json') };
  const sources: Record<string, string> = {};
  for (const c of converted) {
    const from = [c.test, ...(c.prompt ? [c.prompt] : [])];
    for (const f of from) sources[f] = createHash('sha256').update(readFileSync(f)).digest('hex');
    for (const t of c.tasks) {
      const file = join(outDir, `${t.header.name}.jsonl`);
      writeFileAtomic(file, taskFileText(t));
      const shots = (t.header.shots?.length ?? 0) + Object.values(t.header.shotsBySubject ?? {}).reduce((n, s) => n + s.length, 0);
      report.tasks.push({ name: t.header.name, group: t.header.group, file, items: t.items.length, shots, from });
      if (t.header.aggregate === 'subjects') report.unknownSubjects.push(...categoriesOf(t.items).unknown);
    }
  }
  report.unknownSubjects = [...new Set(report.unknownSubjects)].sort();
  const manifest = { madeBy: 'lep eval convert-darumeru', input, tasks: report.tasks, sourcesSha256: sources, unknownSubjects: report.unknownSubjects };
  writeFileAtomic(report.manifest, JSON.stringify(manifest, null, 2) + '\n');
  return report;
}
