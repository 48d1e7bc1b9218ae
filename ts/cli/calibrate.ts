import { Type } from '@sinclair/typebox';

import { calibrate, type CalibrateOptions } from '../calibrate/calibrate.js';
import { CALIBRATE_SPEC, CALIBRATE_TRAIN_FLAGS } from '../calibrate/calibrateOptions.js';
import { LepError } from '../errors.js';
import { checkOptions, cliFlags, defineOptions, fromFlags, helpLines, JSON_FLAG } from '../options/optionSpec.js';
import { parse, printJson, required } from './args.js';
import { LORA_FLAGS, LORA_USAGE, loraFromFlags } from './loraFlags.js';
import { interruptSignal } from './interrupt.js';
import { jsonProgress, PROGRESS_FLAG } from './progressFlag.js';

/** The flags of the command itself (not options of calibrate). */
const CLI_ONLY = defineOptions({
  out: { schema: Type.String({ minLength: 1 }), required: true, arg: 'DIR', doc: 'Output directory: the merged model, and the adapter (PEFT layout) in DIR/adapter.' },
  self: { schema: Type.Boolean(), doc: 'Self-calibration (mode self): --original answers the prompts.' },
  json: JSON_FLAG,
  progress: PROGRESS_FLAG,
});

export const usage = `lep calibrate MODEL_DIR --out DIR (--self --original INSTRUCT_DIR | --data FILE.jsonl) [options]
  LoRA calibration of a propagated model (docs/method.md §5); writes the merged model to DIR and the adapter
  (PEFT layout) to DIR/adapter. Resumable: answers, data and training pick up where they stopped.
${helpLines({ ...CLI_ONLY, ...CALIBRATE_SPEC, ...CALIBRATE_TRAIN_FLAGS }).join('\n')}
${LORA_USAGE}
Example: lep calibrate runs/toy-ru/propagate-swap --self --original instruct --out calibrated`;

export const stopsOnSignal = true;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { ...cliFlags(CLI_ONLY), ...cliFlags(CALIBRATE_SPEC), ...cliFlags(CALIBRATE_TRAIN_FLAGS), ...LORA_FLAGS }, usage);
  if (values.help) return void console.log(usage);
  const model = required(positionals[0], 'MODEL_DIR', usage);
  const out = required(values.out as string | undefined, '--out', usage);
  if (Boolean(values.self) === (values.data !== undefined)) throw new LepError('LEP_BAD_OPTION', `give exactly one of --self and --data\n\n${usage}`);
  const options = fromFlags(CALIBRATE_SPEC, values) as Omit<CalibrateOptions, 'mode'>;
  // Checked here so that a wrong value names its flag (calibrate() names the train option, train.steps).
  const train = fromFlags(CALIBRATE_TRAIN_FLAGS, values);
  checkOptions(CALIBRATE_TRAIN_FLAGS, train, { kind: 'options' });
  // Progress of the original model's answers (calibration's longest step, mode self) and of training.
  const json = jsonProgress('calibrate', values.progress);
  const r = await calibrate(model, out, {
    ...options,
    signal: interruptSignal,
    mode: values.self ? 'self' : 'data',
    lora: loraFromFlags(values),
    train,
    onAnswers: (e) => (json ? json('answers', e.done, e.total, `answers ${e.done}/${e.total}`) : process.stderr.write(`answers ${e.done}/${e.total}\n`)),
    onProgress: (e) => {
      if (json) return void (e.phase === 'train' && json('train', e.done, e.total, `step ${e.done}/${e.total} loss ${e.loss.toFixed(4)}`));
      if (e.phase === 'train') process.stderr.write(`step ${e.done}/${e.total} loss ${e.loss.toFixed(4)}\n`);
    },
  });
  const rej = Object.entries(r.examples.rejected).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ');
  if (values.json) return printJson(r);
  console.log(`${r.outDir}: ${r.examples.kept} of ${r.examples.generated} examples kept${rej ? ` (rejected: ${rej})` : ''}, ${r.examples.copy} copy examples, ${r.blocks} blocks, ${r.train.stepsDone} steps, loss ${r.train.lastLoss.toFixed(4)}; adapter in ${r.adapter}`);
}
