import { adapt, type AdaptProgress } from '../adapt/adapt.js';
import { PhaseClock, type StageProgress } from '../stage/stageProgress.js';
import { progressMode, writeProgressJson } from './progressFlag.js';
import { readRecipe } from '../adapt/recipe.js';
import { parse, printJson, required } from './args.js';
import { checkOutputPath } from '../util/checkOutputPath.js';
import { interruptSignal } from './interrupt.js';

export const usage = `lep adapt RECIPE.(json|yaml) --out DIR
  The whole method from a recipe: tokenizer -> init -> data -> embedding training -> propagation into
  the instruct model (one output per method). Each stage folder holds that stage's record
  (DIR/<stage>/lep-stage.json), tagged with the recipe section it ran with; running the same command
  again resumes at the first stage whose record is missing, or whose options or inputs (by content)
  changed (training from its last checkpoint). The run's own record, DIR/lep-stage.json, is written last.
  The recipe keys: docs/cli.md ("Recipe keys") and recipes/recipe.schema.json (editors validate YAML
  recipes with it); recipes/ has shipped examples: the toy-*.yaml ones run in a clone of the repository
  (they name its toy family and .cache/corpora), llama3-8b-ru-extended.yaml is the paper's setting to point
  at your own downloads.
  --json (print the result as one JSON document on stdout; progress stays on stderr)
  --progress text|json (progress on stderr: lines for people (default), or one JSON object a line:
    {"stage","phase","done","total","etaSeconds","detail"})
Example: lep adapt recipes/toy-ru-extended.yaml --out runs/toy-ru`;

export const stopsOnSignal = true;

/**
 * An adapt progress report as the one stage progress event. Reports without counts (a stage starting,
 * ending, kept from before, or waiting) have phase `stage`, done of 1 where the fraction is known.
 */
export function stageProgressOf(clock: PhaseClock, p: AdaptProgress): StageProgress {
  if (p.phase !== undefined && p.done !== undefined && p.total !== undefined) return clock.event(p.stage, p.phase, p.done, p.total, p.detail);
  return clock.event(p.stage, 'stage', p.fraction ?? 0, p.fraction === undefined ? 0 : 1, p.detail);
}

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' }, out: { type: 'string' }, progress: { type: 'string' } }, usage);
  if (values.help) return void console.log(usage);
  const progress = progressMode(values.progress);
  const clock = new PhaseClock();
  const recipe = readRecipe(required(positionals[0], 'RECIPE', usage));
  const out = required(values.out as string | undefined, '--out', usage);
  const tty = process.stderr.isTTY;
  let last = '';
  checkOutputPath(out, '--out', { RECIPE: positionals[0] });
  const r = await adapt(recipe, out, {
    signal: interruptSignal,
    onProgress: (p) => {
      if (progress === 'json') return writeProgressJson(stageProgressOf(clock, p));
      const line = `[${p.index}/${p.stages} ${p.stage}] ${p.detail}`;
      // On a terminal a progress line is rewritten in place; a stage's end and a note without a fraction
      // (training resumes, an evaluation, a rank waiting) end theirs, so they stay on screen.
      if (tty) process.stderr.write(`\r${line.padEnd(last.length)}${p.fraction === 1 || p.fraction === undefined ? '\n' : ''}`);
      else if (p.fraction === undefined || p.fraction === 0 || p.fraction === 1 || p.stage !== 'train') process.stderr.write(`${line}\n`);
      last = line;
    },
  });
  if (values.json) return printJson(r);
  console.log(`${r.outDir}: ran ${r.ran.length ? r.ran.join(', ') : 'nothing (all stages done before)'}`);
  for (const [m, dir] of Object.entries(r.models)) console.log(`  ${m}: ${dir}`);
  for (const [m, dir] of Object.entries(r.calibrated)) console.log(`  ${m} + calibration: ${dir}`);
}
