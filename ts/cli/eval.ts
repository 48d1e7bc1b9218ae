import { existsSync, statSync } from 'node:fs';

import { LepError } from '../errors.js';
import { compareResults, formatComparison, readEvalResult } from '../eval/compare.js';
import { evaluate, type EvaluateOptions, type EvalResult } from '../eval/evaluate.js';
import { formatResults } from '../eval/formatResults.js';
import { deviceFlag, intFlag, numFlag, parse } from './args.js';
import { checkOutputPath } from '../util/checkOutputPath.js';
import { writeFileAtomic } from '../util/atomicWrite.js';

export const usage = `lep eval MODEL_DIR --tasks T1,T2|all [options]      evaluate a model (Darumeru-style)
lep eval --compare A B [C ...] [--tasks ...]         compare runs (results .json files or model dirs) with A
lep eval convert-darumeru IN --out DIR               Darumeru datasets → task files (lep eval convert-darumeru -h)
  --tasks LIST           task files (.jsonl), built-in suites (copy_sent_en, ..., man_ext_ru), text:ru,
                         text:en, or all (every built-in suite + text metrics)
  --limit N              first N items per task             --format chat|plain (chat: zero-shot, needs a
  --shots N (5)          few-shot examples (plain format)     chat template; plain: few-shot for base models)
  --skip-bad-lines       leave malformed task lines out (reported) instead of failing
  --batch-size N (16)    --rouge recall|f (recall)   --paragraph-overlap paper|llmtf (paper)
  --rouge-stem           ROUGE on stemmed words (Snowball Russian, Porter English; the reference lemmatises)
  --suites DIR (.cache/eval-suites)   --corpora DIR (.cache/corpora)   --text-max-chars N (50000)
  --json                 print the results as JSON          --out FILE   write the results JSON
  --samples N (1000)  --seed N (0)  --alpha X (0.05)       bootstrap settings for --compare
  --device cpu|cuda   --dtype f32|bf16
Example: lep eval model --tasks all --json`;

function options(values: Record<string, string | boolean | undefined>): EvaluateOptions {
  return {
    format: values.format as EvaluateOptions['format'],
    shots: intFlag(values.shots, '--shots'),
    limit: intFlag(values.limit, '--limit'),
    skipBadLines: values['skip-bad-lines'] === true,
    batchSize: intFlag(values['batch-size'], '--batch-size'),
    rouge: values.rouge as EvaluateOptions['rouge'],
    rougeStem: values['rouge-stem'] === true,
    paragraphOverlap: values['paragraph-overlap'] as EvaluateOptions['paragraphOverlap'],
    suitesDir: values.suites as string | undefined,
    corporaDir: values.corpora as string | undefined,
    textMaxChars: intFlag(values['text-max-chars'], '--text-max-chars'),
    device: deviceFlag(values.device),
    dtype: values.dtype as EvaluateOptions['dtype'],
    onTask: process.stderr.isTTY ? (e) => process.stderr.write(e.done ? ` ${e.score?.toFixed(3) ?? 'done'}\n` : `[${e.index + 1}/${e.total}] ${e.task} ...`) : undefined,
  };
}

export async function run(argv: string[]): Promise<void> {
  // A subcommand of its own (own flags), dispatched here so main.ts keeps one `eval` entry.
  if (argv[0] === 'convert-darumeru') return (await import('./evalConvert.js')).run(argv.slice(1));
  const { values, positionals } = parse(
    argv,
    {
      tasks: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' }, out: { type: 'string' },
      format: { type: 'string' }, shots: { type: 'string' }, 'skip-bad-lines': { type: 'boolean' }, 'batch-size': { type: 'string' },
      rouge: { type: 'string' }, 'rouge-stem': { type: 'boolean' }, 'paragraph-overlap': { type: 'string' }, suites: { type: 'string' }, corpora: { type: 'string' },
      'text-max-chars': { type: 'string' }, compare: { type: 'boolean' }, samples: { type: 'string' }, seed: { type: 'string' },
      alpha: { type: 'string' }, device: { type: 'string' }, dtype: { type: 'string' },
    },
    usage,
  );
  if (values.help) return void console.log(usage);
  const tasks = (values.tasks as string | undefined)?.split(',').map((t) => t.trim()).filter(Boolean);
  const opts = options(values);
  if (values.compare) {
    if (positionals.length < 2) throw new LepError('LEP_BAD_OPTION', `--compare needs at least two runs (results .json files or model directories)\n\n${usage}`);
    const runs: EvalResult[] = [];
    for (const p of positionals) {
      if (existsSync(p) && statSync(p).isDirectory()) {
        if (!tasks) throw new LepError('LEP_BAD_OPTION', `comparing model directories needs --tasks\n\n${usage}`);
        runs.push(await evaluate(p, tasks, opts));
      } else runs.push(readEvalResult(p));
    }
    const cmp = { samples: intFlag(values.samples, '--samples'), seed: intFlag(values.seed, '--seed'), alpha: numFlag(values.alpha, '--alpha') };
    const comparisons = runs.slice(1).map((r) => compareResults(runs[0]!, r, cmp));
    if (values.out) checkOutputPath(values.out as string, '--out', { RUN: positionals, '--tasks': tasks });
    if (values.out) writeFileAtomic(values.out as string, JSON.stringify(comparisons, null, 2) + '\n');
    if (values.json) console.log(JSON.stringify(comparisons, null, 2));
    else console.log(comparisons.map((c) => formatComparison(c, cmp.alpha)).join('\n\n'));
    return;
  }
  const model = positionals[0];
  if (!model || !tasks) throw new LepError('LEP_BAD_OPTION', `lep eval needs MODEL_DIR and --tasks\n\n${usage}`);
  if (values.out) checkOutputPath(values.out as string, '--out', { MODEL_DIR: model, '--tasks': tasks });
  const result = await evaluate(model, tasks, opts);
  if (values.out) writeFileAtomic(values.out as string, JSON.stringify(result) + '\n');
  console.log(values.json ? JSON.stringify(result, null, 2) : formatResults(result));
}
