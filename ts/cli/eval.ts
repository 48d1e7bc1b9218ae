import { Type } from '@sinclair/typebox';

import { existsSync, rmSync, statSync } from 'node:fs';

import { LepError } from '../errors.js';
import { compareResults, formatComparison, readEvalResult, type CompareOptions } from '../eval/compare.js';
import { COMPARE_SPEC, EVAL_SPEC } from '../eval/evalOptions.js';
import { checkOptions, cliFlags, defineOptions, fromFlags, helpLines, withDefaults } from '../options/optionSpec.js';
import { evalRecordFile, evaluate, writeEvalRecord, type EvaluateOptions, type EvalResult } from '../eval/evaluate.js';
import { beginStage } from '../stage/stageRecord.js';
import { formatResults } from '../eval/formatResults.js';
import { parse } from './args.js';
import { jsonProgress, PROGRESS_FLAG } from './progressFlag.js';
import { checkOutputPath } from '../util/checkOutputPath.js';
import { writeFileAtomic } from '../util/atomicWrite.js';
import { prepareFileOutput } from '../util/prepareFileOutput.js';

/** The flags of the command itself (not options of evaluate). */
const CLI_ONLY = defineOptions({
  tasks: {
    schema: Type.String({ minLength: 1 }),
    arg: 'LIST',
    doc: 'Comma-separated: task files (.jsonl), built-in suites (copy_sent_en, ..., man_ext_ru), text:ru, text:en, or all (every built-in suite + text metrics).',
  },
  out: { schema: Type.String({ minLength: 1 }), arg: 'FILE', doc: 'Write the results (or the comparison) as JSON to FILE; an evaluation also writes its stage record to FILE.lep-stage.' },
  json: { schema: Type.Boolean(), doc: 'Print the results as one JSON document on stdout.' },
  progress: PROGRESS_FLAG,
});

const COMPARE_FLAG = defineOptions({
  compare: { schema: Type.Boolean(), doc: 'Compare runs (results .json files or model directories, evaluated with --tasks) with the first one: a paired bootstrap per task.' },
});

export const usage = `lep eval MODEL_DIR --tasks T1,T2|all [options]      evaluate a model (Darumeru-style)
lep eval --compare A B [C ...] [--tasks ...]         compare runs (results .json files or model dirs) with A
lep eval convert-darumeru IN --out DIR               Darumeru datasets → task files (lep eval convert-darumeru -h)
${helpLines({ ...CLI_ONLY, ...EVAL_SPEC }).join('\n')}
${helpLines({ ...COMPARE_FLAG, ...COMPARE_SPEC }).join('\n')}
Example: lep eval model --tasks all --json`;

function options(values: Record<string, string | boolean | undefined>): EvaluateOptions {
  // --progress json: each task a phase, counted in items (the text metrics report no items).
  const json = jsonProgress('eval', values.progress);
  if (json)
    return {
      ...(fromFlags(EVAL_SPEC, values) as EvaluateOptions),
      onTask: (e) => json(e.task, e.done ? 1 : 0, 1, `task ${e.index + 1}/${e.total}${e.done && e.score !== undefined ? ` score ${e.score.toFixed(3)}` : ''}`),
      onItems: (e) => json(e.task, e.done, e.of, `task ${e.index + 1}/${e.total}`),
    };
  return {
    ...(fromFlags(EVAL_SPEC, values) as EvaluateOptions),
    onTask: process.stderr.isTTY ? (e) => process.stderr.write(e.done ? ` ${e.score?.toFixed(3) ?? 'done'}\n` : `[${e.index + 1}/${e.total}] ${e.task} ...`) : undefined,
  };
}

export async function run(argv: string[]): Promise<void> {
  // A subcommand of its own (own flags), dispatched here so dispatch.ts keeps one `eval` entry.
  if (argv[0] === 'convert-darumeru') return (await import('./evalConvert.js')).run(argv.slice(1));
  const { values, positionals } = parse(argv, { ...cliFlags(CLI_ONLY), ...cliFlags(EVAL_SPEC), ...cliFlags(COMPARE_FLAG), ...cliFlags(COMPARE_SPEC) }, usage);
  if (values.help) return void console.log(usage);
  const tasks = (values.tasks as string | undefined)?.split(',').map((t) => t.trim()).filter(Boolean);
  const opts = options(values);
  if (values.compare) {
    if (positionals.length < 2) throw new LepError('LEP_BAD_OPTION', `--compare needs at least two runs (results .json files or model directories)\n\n${usage}`);
    // Checked before any run is read or evaluated.
    const cmp = withDefaults(COMPARE_SPEC, fromFlags(COMPARE_SPEC, values) as CompareOptions);
    checkOptions(COMPARE_SPEC, cmp, { kind: 'options' });
    if (values.out) {
      checkOutputPath(values.out as string, '--out', { RUN: positionals, '--tasks': tasks }, 'file');
      prepareFileOutput(values.out as string, '--out');
    }
    const runs: EvalResult[] = [];
    for (const p of positionals) {
      if (existsSync(p) && statSync(p).isDirectory()) {
        if (!tasks) throw new LepError('LEP_BAD_OPTION', `comparing model directories needs --tasks\n\n${usage}`);
        runs.push(await evaluate(p, tasks, opts));
      } else runs.push(readEvalResult(p));
    }
    const comparisons = runs.slice(1).map((r) => compareResults(runs[0]!, r, cmp));
    // Printed before the file is written: a write that fails (a full disk) does not lose the evaluation.
    if (values.json) console.log(JSON.stringify(comparisons, null, 2));
    else console.log(comparisons.map((c) => formatComparison(c, cmp.alpha)).join('\n\n'));
    if (values.out) writeFileAtomic(values.out as string, JSON.stringify(comparisons, null, 2) + '\n');
    return;
  }
  const model = positionals[0];
  if (!model || !tasks) throw new LepError('LEP_BAD_OPTION', `lep eval needs MODEL_DIR and --tasks\n\n${usage}`);
  if (values.out) {
    checkOutputPath(values.out as string, '--out', { MODEL_DIR: model, '--tasks': tasks }, 'file');
    // Its temporary stays tracked until the command (the process) ends: no release() to call.
    prepareFileOutput(values.out as string, '--out');
  }
  const stage = beginStage('eval');
  const result = await evaluate(model, tasks, opts);
  // Printed before the files are written: a write that fails (a full disk) does not lose the evaluation.
  console.log(values.json ? JSON.stringify(result, null, 2) : formatResults(result));
  if (values.out) {
    // The old record goes first: a results file whose record failed to follow must not be described by
    // the previous run's record.
    rmSync(evalRecordFile(values.out as string), { force: true });
    writeFileAtomic(values.out as string, JSON.stringify(result) + '\n');
    writeEvalRecord(values.out as string, stage, tasks, opts, result);
  }
}
