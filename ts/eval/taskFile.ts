/**
 * Task files: one JSONL file per task (dataset), so any benchmark — the built-in Debian suites or the
 * real Darumeru sets converted once — runs through the same harness.
 *
 * ## Schema
 *
 * Line 1 is the header, an object with a `task` key; every further non-empty line is one item.
 *
 * ```jsonc
 * {"task": {
 *   "name": "copy_sent_en",          // unique task name (defaults to the file name without .jsonl)
 *   "group": "Copy (EN)",            // group for group scores / Micro-Avg (defaults to the name)
 *   "kind": "generate",              // generate | choice | loglik
 *   "metric": "copy_sentence",       // see TASK_METRICS; which metrics the kind allows is checked
 *   "maxNewTokens": 128,             // generate: new tokens at most (and the copy reference cap)
 *   "stop": ["\n\n"],                // generate: stop strings (the text is cut at the first one)
 *   "choices": ["A", "B", "C", "D"], // choice: the labels scored by next-token probability
 *   "bothOrders": false,             // choice with 2 labels: also score each item with choice1/choice2
 *                                    //   swapped; an item counts only if right both ways (PARus rule)
 *   "score": "acc",                  // choice: acc | acc_f1 (mean of accuracy and macro-F1) | acc_mcc
 *   "aggregate": "items",            // choice: items (accuracy over items) | subjects (MMLU: accuracy per
 *                                    //   subject, then mean per category, then mean over categories)
 *   "categories": {"anatomy": "other"},  // aggregate subjects: subject → category (items may say instead)
 *   "shots": [ {"messages": [...], "gold": ...} ],  // few-shot examples for the plain (base) format
 *   "shotsBySubject": {"anatomy": [...]}            // plain format: shots for items of that subject
 * }}                                                 //   (MMLU: the dev questions of the same subject)
 * {"id": "…", "messages": [{"role": "user", "content": "…"}], "gold": …, "inputs": {…}, "candidates": […],
 *  "subject": "anatomy", "category": "other", "meta": {…}}
 * ```
 *
 * Item fields:
 * - `messages`: the conversation up to the answer, roles `system` / `user` / `assistant`. A final
 *   `assistant` message is a prefix of the answer (e.g. "TL;DR:"), continued by the model.
 *   Contents may hold `{name}` placeholders filled from `inputs` (Darumeru's own layout).
 * - `gold`: generate → the reference string, or a list of acceptable answers (QA: max over them);
 *   choice → the right label; loglik → the indices of the relevant `candidates`.
 * - `candidates` (loglik): texts each scored as the answer by mean token log-probability.
 * - `id`: optional, defaults to the line number.
 * - `subject` (required with `aggregate: "subjects"`) and `category` (optional; else the header's
 *   `categories[subject]`, else the subject is its own category). With unequal subject sizes the
 *   aggregated accuracy differs from the plain mean: every category weighs the same, and within it
 *   every subject, however many questions it has (Darumeru's MMLU rule, docs/method.md §6).
 * - `meta` (metric `use_grade`): `{"type": "text" | "matching" | "multiple_choice…", "id_task": "16",
 *   "variant": 3}` as in MERA's USE records; see metrics/useGrade.ts.
 *
 * A malformed line is an error naming the file and line number; with `skipBadLines` it is reported and
 * left out, and the other items are evaluated.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

import { LepError } from '../errors.js';
import { checkUseMeta } from './metrics/useGrade.js';

export const TASK_KINDS = ['generate', 'choice', 'loglik'] as const;
export type TaskKind = (typeof TASK_KINDS)[number];

/** Metric → the kind of task it scores. */
export const TASK_METRICS = {
  copy_sentence: 'generate',
  copy_paragraph: 'generate',
  qa: 'generate',
  chrf: 'generate',
  rouge: 'generate',
  use_grade: 'generate',
  choice: 'choice',
  r_precision: 'loglik',
} as const satisfies Record<string, TaskKind>;
export type TaskMetric = keyof typeof TASK_METRICS;

export const CHOICE_SCORES = ['acc', 'acc_f1', 'acc_mcc'] as const;
export type ChoiceScore = (typeof CHOICE_SCORES)[number];

/** How a choice task's accuracy is averaged: over items, or per subject then category (MMLU). */
export const CHOICE_AGGREGATES = ['items', 'subjects'] as const;
export type ChoiceAggregate = (typeof CHOICE_AGGREGATES)[number];

export interface TaskMessage {
  role: string;
  content: string;
}

export interface TaskItem {
  id: string;
  /** 1-based line in the task file. */
  line: number;
  messages: TaskMessage[];
  gold: string | string[] | number[];
  inputs?: Record<string, string>;
  candidates?: string[];
  /** MMLU subject (`aggregate: "subjects"`). */
  subject?: string;
  /** Category of the subject, resolved from the item or the header's `categories`. */
  category?: string;
  /** Metric-specific fields (USE: type, id_task, variant). */
  meta?: Record<string, string | number>;
}

export interface TaskShot {
  messages: TaskMessage[];
  gold: string | string[] | number[];
  inputs?: Record<string, string>;
  candidates?: string[];
}

export interface TaskHeader {
  name: string;
  group: string;
  kind: TaskKind;
  metric: TaskMetric;
  maxNewTokens: number;
  stop: string[];
  choices: string[];
  bothOrders: boolean;
  score: ChoiceScore;
  aggregate: ChoiceAggregate;
  categories: Record<string, string>;
  shots: TaskShot[];
  shotsBySubject: Record<string, TaskShot[]>;
}

export interface TaskFile {
  file: string;
  header: TaskHeader;
  items: TaskItem[];
  /** Lines left out with `skipBadLines`: line number and why. */
  badLines: { line: number; message: string }[];
}

/** Max new tokens of a generate task without `maxNewTokens`. */
export const DEFAULT_MAX_NEW_TOKENS = 64;

export interface ReadTaskOptions {
  /** Report malformed item lines and evaluate the rest instead of failing. Defaults to `false`. */
  skipBadLines?: boolean;
  /** Keep the first N items. Defaults to all. */
  limit?: number;
}

const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

function checkMessages(v: unknown, what: string): TaskMessage[] {
  if (!Array.isArray(v) || v.length === 0) throw new Error(`${what} must be a non-empty array of {role, content}`);
  return v.map((m, i) => {
    if (!isObj(m) || typeof m.role !== 'string' || typeof m.content !== 'string') throw new Error(`${what}[${i}] must be {role: string, content: string}`);
    return { role: m.role, content: m.content };
  });
}

function checkInputs(v: unknown): Record<string, string> | undefined {
  if (v === undefined) return undefined;
  if (!isObj(v)) throw new Error('inputs must be an object of strings');
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string' && typeof x !== 'number') throw new Error(`inputs.${k} must be a string`);
    out[k] = String(x);
  }
  return out;
}

function checkGold(v: unknown, h: Pick<TaskHeader, 'kind' | 'choices'>, candidates?: string[]): string | string[] | number[] {
  if (h.kind === 'choice') {
    if (typeof v !== 'string' || !h.choices.includes(v)) throw new Error(`gold must be one of the choices ${JSON.stringify(h.choices)}, got ${JSON.stringify(v)}`);
    return v;
  }
  if (h.kind === 'loglik') {
    if (!Array.isArray(v) || v.length === 0 || !v.every((x) => Number.isInteger(x) && x >= 0 && x < (candidates?.length ?? 0)))
      throw new Error('gold must be a non-empty array of indices into candidates');
    return v as number[];
  }
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string')) return v as string[];
  throw new Error('gold must be a string or a non-empty array of strings');
}

function parseHeader(v: unknown, file: string): TaskHeader {
  if (!isObj(v) || !isObj(v.task)) throw new Error('line 1 must be the header {"task": {...}}');
  const t = v.task;
  const metric = t.metric;
  if (typeof metric !== 'string' || !(metric in TASK_METRICS)) throw new Error(`task.metric must be one of ${Object.keys(TASK_METRICS).join(', ')}, got ${JSON.stringify(metric)}`);
  const kind = (t.kind ?? TASK_METRICS[metric as TaskMetric]) as TaskKind;
  if (kind !== TASK_METRICS[metric as TaskMetric]) throw new Error(`task.metric ${metric} needs kind ${TASK_METRICS[metric as TaskMetric]}, got ${JSON.stringify(kind)}`);
  const choices = t.choices ?? [];
  if (!Array.isArray(choices) || !choices.every((c) => typeof c === 'string' && c.length > 0)) throw new Error('task.choices must be an array of non-empty strings');
  if (kind === 'choice' && choices.length < 2) throw new Error('a choice task needs task.choices with at least 2 labels');
  const maxNewTokens = t.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS;
  if (!Number.isInteger(maxNewTokens) || (maxNewTokens as number) < 1) throw new Error('task.maxNewTokens must be a positive integer');
  const stop = t.stop ?? [];
  if (!Array.isArray(stop) || !stop.every((s) => typeof s === 'string' && s.length > 0)) throw new Error('task.stop must be an array of non-empty strings');
  const score = t.score ?? 'acc';
  if (!CHOICE_SCORES.includes(score as ChoiceScore)) throw new Error(`task.score must be one of ${CHOICE_SCORES.join(', ')}`);
  const bothOrders = t.bothOrders ?? false;
  if (typeof bothOrders !== 'boolean') throw new Error('task.bothOrders must be a boolean');
  if (bothOrders && choices.length !== 2) throw new Error('task.bothOrders needs exactly 2 choices');
  const aggregate = t.aggregate ?? 'items';
  if (!CHOICE_AGGREGATES.includes(aggregate as ChoiceAggregate)) throw new Error(`task.aggregate must be one of ${CHOICE_AGGREGATES.join(', ')}, got ${JSON.stringify(aggregate)}`);
  if (aggregate !== 'items' && kind !== 'choice') throw new Error('task.aggregate "subjects" needs a choice task');
  const categories = t.categories ?? {};
  if (!isObj(categories) || !Object.values(categories).every((c) => typeof c === 'string' && c.length > 0)) throw new Error('task.categories must map subjects to non-empty category names');
  const name = t.name ?? basename(file).replace(/\.jsonl$/, '');
  if (typeof name !== 'string' || name.length === 0) throw new Error('task.name must be a non-empty string');
  const group = t.group ?? name;
  if (typeof group !== 'string') throw new Error('task.group must be a string');
  const header: TaskHeader = {
    name, group, kind, metric: metric as TaskMetric, maxNewTokens: maxNewTokens as number, stop: stop as string[],
    choices: choices as string[], bothOrders, score: score as ChoiceScore, aggregate: aggregate as ChoiceAggregate,
    categories: categories as Record<string, string>, shots: [], shotsBySubject: {},
  };
  const checkShots = (shots: unknown, what: string): TaskShot[] => {
    if (!Array.isArray(shots)) throw new Error(`${what} must be an array`);
    return shots.map((s, i) => {
      if (!isObj(s)) throw new Error(`${what}[${i}] must be an object`);
      const candidates = s.candidates as string[] | undefined;
      return { messages: checkMessages(s.messages, `${what}[${i}].messages`), gold: checkGold(s.gold, header, candidates), inputs: checkInputs(s.inputs), candidates };
    });
  };
  header.shots = checkShots(t.shots ?? [], 'task.shots');
  const bySubject = t.shotsBySubject ?? {};
  if (!isObj(bySubject)) throw new Error('task.shotsBySubject must map subjects to arrays of shots');
  for (const [subject, shots] of Object.entries(bySubject)) header.shotsBySubject[subject] = checkShots(shots, `task.shotsBySubject.${subject}`);
  return header;
}

function parseItem(v: unknown, header: TaskHeader, line: number): TaskItem {
  if (!isObj(v)) throw new Error('an item must be a JSON object');
  const messages = checkMessages(v.messages, 'messages');
  const inputs = checkInputs(v.inputs);
  let candidates: string[] | undefined;
  if (header.kind === 'loglik') {
    if (!Array.isArray(v.candidates) || v.candidates.length < 2 || !v.candidates.every((c) => typeof c === 'string' && c.length > 0))
      throw new Error('a loglik item needs candidates: at least 2 non-empty strings');
    candidates = v.candidates as string[];
  }
  if (header.bothOrders && (inputs?.choice1 === undefined || inputs.choice2 === undefined)) throw new Error('bothOrders needs inputs.choice1 and inputs.choice2');
  const gold = checkGold(v.gold, header, candidates);
  const id = v.id === undefined ? String(line) : String(v.id);
  const item: TaskItem = { id, line, messages, gold, inputs, candidates };
  for (const k of ['subject', 'category'] as const) {
    if (v[k] === undefined) continue;
    if (typeof v[k] !== 'string' || v[k].length === 0) throw new Error(`${k} must be a non-empty string`);
    item[k] = v[k];
  }
  if (header.aggregate === 'subjects') {
    if (item.subject === undefined) throw new Error('task.aggregate "subjects" needs a subject on every item');
    item.category ??= header.categories[item.subject] ?? item.subject;
  }
  if (v.meta !== undefined) {
    if (!isObj(v.meta) || !Object.values(v.meta).every((x) => typeof x === 'string' || typeof x === 'number')) throw new Error('meta must be an object of strings and numbers');
    item.meta = v.meta as Record<string, string | number>;
  }
  if (header.metric === 'use_grade') checkUseMeta(item.meta);
  return item;
}

/** Reads and validates a task file; errors name the file and the line. */
export function readTaskFile(file: string, options: ReadTaskOptions = {}): TaskFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new LepError('LEP_TASK_FILE', `cannot read task file ${file}: ${(e as Error).message}\nHINT: pass a JSONL task file, a built-in task name, or "all" (lep eval --help).`);
  }
  const lines = text.split('\n');
  const bad = (line: number, message: string) =>
    new LepError('LEP_TASK_FILE', `${file}:${line}: ${message}\nHINT: fix the line, or pass --skip-bad-lines to leave it out and evaluate the rest.`);
  let header: TaskHeader;
  try {
    header = parseHeader(JSON.parse(lines[0] ?? ''), file);
  } catch (e) {
    throw new LepError('LEP_TASK_FILE', `${file}:1: ${(e as Error).message}\nHINT: the first line of a task file is its header, {"task": {"metric": ..., ...}} (see ts/eval/taskFile.ts).`);
  }
  const items: TaskItem[] = [];
  const badLines: TaskFile['badLines'] = [];
  const ids = new Set<string>();
  for (let i = 1; i < lines.length; i++) {
    const raw = lines[i]!.trim();
    if (raw === '') continue;
    if (options.limit !== undefined && items.length >= options.limit) break;
    try {
      let v: unknown;
      try {
        v = JSON.parse(raw);
      } catch (e) {
        throw new Error(`not valid JSON (${(e as Error).message})`);
      }
      const item = parseItem(v, header, i + 1);
      if (ids.has(item.id)) throw new Error(`duplicate id ${JSON.stringify(item.id)}`);
      ids.add(item.id);
      items.push(item);
    } catch (e) {
      if (!options.skipBadLines) throw bad(i + 1, (e as Error).message);
      badLines.push({ line: i + 1, message: (e as Error).message });
    }
  }
  if (items.length === 0) throw new LepError('LEP_TASK_FILE', `${file} has no items\nHINT: items follow the header line, one JSON object per line.`);
  return { file, header, items, badLines };
}
