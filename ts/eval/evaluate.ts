/**
 * The evaluation harness: runs task files through a model and scores them (docs/method.md §6).
 *
 *   1. resolve tasks: JSONL files, built-in suite names, or `all` (built-in suites + text metrics);
 *   2. render each item (chat template zero-shot, or the plain few-shot format), see prompts.ts;
 *   3. score with the task's method (choice tokens, continuation log-prob, generation), scoreAnswers.ts;
 *   4. one record per item (itemScores.ts), task scores from records (taskScores.ts), then group
 *      scores and Micro-Avg (metrics/microAvg.ts); bits per character and symbols per token on held-out
 *      text for `all`.
 * Greedy decoding and a fixed order make the numbers deterministic: the same run twice gives the same
 * results.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

import { LepError, optionError } from '../errors.js';
import { LepModel } from '../model/LepModel.js';
import { checkOptions, withDefaults, type OptionsOf } from '../options/optionSpec.js';
import type { JobOptions } from '../binding/runJob.js';
import { stageInput, writeStageRecordFile, type StageRecord, type StageStart } from '../stage/stageRecord.js';
import type { Tokenizer } from '../tokenizer/Tokenizer.js';
import { BUILTIN_TASKS, builtinTaskFile, ensureBuiltinSuites, heldoutTextFiles } from './builtinSuites.js';
import { EVAL_SPEC } from './evalOptions.js';
import { generationRecord, type ParagraphOverlap } from './itemScores.js';
import { summarize, type Summary } from './metrics/microAvg.js';
import { rPrecision } from './metrics/rPrecision.js';
import { chatPrompt, fillInputs, plainPrompt, shotsFor, type PromptFormat, type PromptParts } from './prompts.js';
import { generateEvalAnswers, scoreChoices, scoreContinuations } from './scoreAnswers.js';
import { readTaskFile, type TaskFile, type TaskItem } from './taskFile.js';
import { aggregate, type ItemRecord, type RougeVariant, type ScoreSpec } from './taskScores.js';
import { textMetrics, type TextMetrics } from './textMetrics.js';
import { fitContext } from './fitContext.js';

/** The evaluation options: EVAL_SPEC (evalOptions.ts) gives each one's type, bounds, default and doc. */
export type EvaluateOptions = OptionsOf<typeof EVAL_SPEC> &
  JobOptions & {
    // JobOptions' onProgress: the model load's events, when evaluate loads it (a directory is given).
    /** Called when a task starts and ends. */
    onTask?: (event: { task: string; index: number; total: number; done: boolean; score?: number }) => void;
    /** Called after each native batch inside a task: items (or scored sequences) done of the task's total. */
    onItems?: (event: { task: string; index: number; total: number; done: number; of: number }) => void;
  };

/** The keys of EvaluateOptions that are not options of the spec. */
const EVAL_NON_SPEC_KEYS = ['onTask', 'onItems', 'signal', 'onProgress'];

export const DEFAULT_TEXT_MAX_CHARS: number = EVAL_SPEC.textMaxChars.default;

export interface TaskResult {
  name: string;
  group: string;
  file: string;
  kind: string;
  spec: ScoreSpec;
  score: number;
  metrics: Record<string, number>;
  items: number;
  /** Generations that hit max tokens without a stop token or stop string. */
  unstopped: number;
  /** Sequences cut in the middle to fit the model's context (fitContext.ts): prompts, both orders of a choice item, or each candidate's. */
  truncated: number;
  badLines: { line: number; message: string }[];
  records: ItemRecord[];
}

export interface EvalResult {
  model: string;
  format: PromptFormat;
  /** Resolved options (what ran). */
  options: { shots: number; limit?: number; batchSize: number; rouge: RougeVariant; rougeStem?: boolean; paragraphOverlap: ParagraphOverlap; textMaxChars: number };
  tasks: TaskResult[];
  summary: Summary;
  /** Bits per character and symbols per token on held-out text, per language (for `all` or `text:LANG`). */
  text: Record<string, TextMetrics>;
}

interface Resolved {
  files: string[];
  textLangs: string[];
}

/** Task names: `all`, a built-in name, `text:ru` / `text:en`, or a path to a JSONL task file. */
function resolveTasks(tasks: readonly string[], suitesDir: string, corporaDir: string): Resolved {
  const files: string[] = [];
  const textLangs: string[] = [];
  const names = tasks.flatMap((t) => (t === 'all' ? [...BUILTIN_TASKS.map((b) => b.name), 'text:ru', 'text:en'] : [t]));
  if (names.some((n) => BUILTIN_TASKS.some((b) => b.name === n))) ensureBuiltinSuites(suitesDir, corporaDir);
  for (const n of names) {
    if (n.startsWith('text:')) textLangs.push(n.slice(5));
    else if (BUILTIN_TASKS.some((b) => b.name === n)) files.push(builtinTaskFile(suitesDir, n));
    else if (existsSync(n)) files.push(n);
    else
      throw optionError('tasks', `a task file, "all", text:ru, text:en or one of ${BUILTIN_TASKS.map((b) => b.name).join(', ')}`, n, '--tasks');
  }
  return { files, textLangs };
}

function renderer(tok: Tokenizer, format: PromptFormat, task: TaskFile, shots: number, ctx: number, reserve: number) {
  return async (item: TaskItem, inputs = item.inputs): Promise<PromptParts> => {
    const messages = fillInputs(item.messages, inputs);
    if (format === 'chat') return chatPrompt(tok, messages);
    // Plain format: drop shots from the end until the prompt leaves `reserve` tokens of room. MMLU items
    // take the shots of their own subject (shotsBySubject) where the task file has them.
    const pool = shotsFor(task.header, item);
    for (let k = Math.min(shots, pool.length); ; k--) {
      const p = plainPrompt(task.header, messages, k, pool);
      if (k === 0 || (await tok.encode(p.prompt, { addSpecialTokens: true })).length + reserve <= ctx) return p;
    }
  };
}

async function runTask(
  model: LepModel,
  tok: Tokenizer,
  task: TaskFile,
  o: Required<Pick<EvaluateOptions, 'format' | 'shots' | 'batchSize' | 'rouge' | 'rougeStem' | 'paragraphOverlap'>> & JobOptions & { onItems?: (done: number, of: number) => void },
): Promise<TaskResult> {
  const h = task.header;
  const ctx = model.config.maxPositionEmbeddings;
  const reserve = h.kind === 'generate' ? Math.min(h.maxNewTokens, ctx >> 2) : Math.min(64, ctx >> 3);
  const render = renderer(tok, o.format, task, o.shots, ctx, reserve);
  let truncated = 0;
  const batch = { batchSize: o.batchSize, signal: o.signal, onItems: o.onItems, onTruncated: (n: number) => void (truncated += n) };
  const records: ItemRecord[] = [];
  if (h.kind === 'generate') {
    const prompts: number[][] = [];
    for (const item of task.items) {
      const p = await render(item);
      // A prompt longer than the context leaves `reserve` tokens to answer in (fitContext.ts).
      const f = fitContext(await tok.encode(p.prompt, { addSpecialTokens: p.addSpecialTokens }), ctx - reserve);
      prompts.push(f.ids);
      truncated += Number(f.cut);
    }
    // Plain format: an answer is one line ("answer\n\n" ends it), and base models run on past it: stop at the newline.
    const stop = o.format === 'plain' ? [...new Set([...h.stop, '\n'])] : h.stop;
    const gens = await generateEvalAnswers(model, tok, prompts, { ...batch, maxNewTokens: h.maxNewTokens, stop });
    for (let i = 0; i < task.items.length; i++) records.push(await generationRecord(tok, h, task.items[i]!, gens[i]!, o.paragraphOverlap, o.rougeStem));
  } else if (h.kind === 'choice') {
    const prompts: PromptParts[] = [];
    for (const item of task.items) {
      prompts.push(await render(item));
      if (h.bothOrders) prompts.push(await render(item, { ...item.inputs!, choice1: item.inputs!.choice2!, choice2: item.inputs!.choice1! }));
    }
    const lps = await scoreChoices(model, tok, prompts, h.choices, batch);
    const argmax = (xs: number[]) => h.choices[xs.reduce((b, x, i) => (x > xs[b]! ? i : b), 0)]!;
    const flip = (g: string) => (g === h.choices[0] ? h.choices[1]! : h.choices[0]!);
    task.items.forEach((item, i) => {
      const per = h.bothOrders ? 2 : 1;
      const r: ItemRecord = { id: item.id, gold: item.gold as string, pred: argmax(lps[i * per]!), values: {} };
      if (h.aggregate === 'subjects') Object.assign(r, { subject: item.subject, category: item.category });
      if (h.bothOrders) {
        r.goldReversed = flip(item.gold as string);
        r.predReversed = argmax(lps[i * per + 1]!);
      }
      r.values.correct = h.bothOrders ? Number(r.gold === r.pred && r.goldReversed === r.predReversed) : Number(r.gold === r.pred);
      records.push(r);
    });
  } else {
    const items: { prompt: PromptParts; candidates: string[] }[] = [];
    for (const item of task.items) items.push({ prompt: await render(item), candidates: item.candidates! });
    const scores = await scoreContinuations(model, tok, items, batch);
    task.items.forEach((item, i) => records.push({ id: item.id, values: { r_precision: rPrecision(scores[i]!, item.gold as number[]) } }));
  }
  const spec: ScoreSpec = { metric: h.metric, choiceScore: h.score, bothOrders: h.bothOrders, aggregate: h.aggregate, rouge: o.rouge };
  const { score, metrics } = aggregate(spec, records);
  return {
    name: h.name, group: h.group, file: task.file, kind: h.kind, spec, score, metrics, items: records.length,
    unstopped: records.filter((r) => r.stopped === false).length, truncated, badLines: task.badLines, records,
  };
}

/** Evaluates a model (a directory or a loaded LepModel) on tasks; see the module comment. */
export async function evaluate(model: string | LepModel, tasks: readonly string[], options: EvaluateOptions = {}): Promise<EvalResult> {
  checkOptions(EVAL_SPEC, options, { kind: 'options' }, EVAL_NON_SPEC_KEYS);
  if (!Array.isArray(tasks) || tasks.some((x) => typeof x !== 'string')) throw optionError('tasks', 'an array of task names or files', tasks, '--tasks');
  const { format, shots, batchSize, rouge, rougeStem, paragraphOverlap, textMaxChars, suitesDir, corporaDir, skipBadLines, device, dtype } = withDefaults(EVAL_SPEC, options);
  if (tasks.length === 0) throw optionError('tasks', 'at least one task', [], '--tasks');
  const { files, textLangs } = resolveTasks(tasks, suitesDir, corporaDir);
  // Read every task file before loading the model, so a bad file fails fast.
  const taskFiles = files.map((f) => readTaskFile(f, { skipBadLines, limit: options.limit }));
  const names = new Set<string>();
  for (const t of taskFiles) {
    if (names.has(t.header.name)) throw new LepError('LEP_TASK_FILE', `two task files are both named ${t.header.name}\nHINT: give each task file a distinct task.name.`);
    names.add(t.header.name);
  }
  const owned = typeof model === 'string';
  // A loaded model has its device and dtype: the options would be silently ignored.
  if (!owned)
    for (const key of ['device', 'dtype'] as const)
      if (options[key] !== undefined) throw optionError(key, `no ${key} with a loaded LepModel (it has its own; pass the model directory for evaluate to load)`, options[key]);
  const m = owned ? await LepModel.load(model, { device, dtype, signal: options.signal, onProgress: options.onProgress }) : model;
  try {
    const tok = m.tokenizer;
    if (!tok) throw new LepError('LEP_NO_TOKENIZER', `${m.dir.dir} has no tokenizer.json\nHINT: evaluation needs the model's tokenizer next to its weights.`);
    if (format === 'chat' && taskFiles.length > 0) chatPrompt(tok, [{ role: 'user', content: '' }]); // fail early without a template
    const results: TaskResult[] = [];
    const total = taskFiles.length + textLangs.length;
    for (const [i, t] of taskFiles.entries()) {
      options.onTask?.({ task: t.header.name, index: i, total, done: false });
      const onItems = options.onItems && ((done: number, of: number) => options.onItems!({ task: t.header.name, index: i, total, done, of }));
      const r = await runTask(m, tok, t, { format, shots, batchSize, rouge, rougeStem, paragraphOverlap, signal: options.signal, onItems });
      results.push(r);
      options.onTask?.({ task: t.header.name, index: i, total, done: true, score: r.score });
    }
    const text: Record<string, TextMetrics> = {};
    for (const [i, lang] of textLangs.entries()) {
      const name = `text:${lang}`;
      options.onTask?.({ task: name, index: taskFiles.length + i, total, done: false });
      text[lang] = await textMetrics(m, heldoutTextFiles(corporaDir, lang), { mode: 'line', maxChars: textMaxChars, batchSize, signal: options.signal });
      options.onTask?.({ task: name, index: taskFiles.length + i, total, done: true });
    }
    return {
      model: m.dir.dir, format, options: { shots, limit: options.limit, batchSize, rouge, rougeStem, paragraphOverlap, textMaxChars },
      tasks: results, summary: summarize(results), text,
    };
  } finally {
    if (owned) m.dispose();
  }
}

/**
 * Where `lep eval --out FILE` puts the stage record: `FILE.lep-stage`, beside the results (evaluation
 * writes a file, not a directory; the name does not end in .json, so a glob over a folder of results for
 * `--compare` does not pick records up).
 */
export function evalRecordFile(resultsFile: string): string {
  return `${resolve(resultsFile)}.lep-stage`;
}

/**
 * Writes the stage record of an evaluation whose results went to `resultsFile` (see evalRecordFile): the
 * model and every task file as inputs, the resolved options, and the scores (the per-item records stay
 * in the results file).
 */
export function writeEvalRecord(resultsFile: string, start: StageStart, tasks: readonly string[], options: EvaluateOptions, result: EvalResult): StageRecord {
  const o = withDefaults(EVAL_SPEC, options);
  const { onTask: _t, onItems: _i, onProgress: _p, signal: _s, ...resolved } = o;
  const langs = Object.keys(result.text);
  return writeStageRecordFile(evalRecordFile(resultsFile), start, {
    inputs: [
      stageInput('model', result.model),
      ...result.tasks.map((t) => stageInput(`task:${t.name}`, t.file)),
      ...langs.map((lang) => stageInput(`text:${lang}`, heldoutTextFiles(o.corporaDir, lang))),
    ],
    resolved: { tasks: [...tasks], ...resolved },
    result: {
      resultsFile: resolve(resultsFile),
      summary: result.summary,
      tasks: result.tasks.map((t) => ({ name: t.name, group: t.group, score: t.score, items: t.items, unstopped: t.unstopped, truncated: t.truncated })),
      text: result.text,
    },
  });
}
