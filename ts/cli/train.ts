import { Type } from '@sinclair/typebox';

import { LepError, optionError } from '../errors.js';
import { TRAIN_DEFAULTS, TRAIN_OUTPUT, trainModel, type TrainOptions } from '../train/trainModel.js';
import { checkOutputPath } from '../util/checkOutputPath.js';
import { cliFlags, checkOptions, defineOptions, fromFlags, helpLines, JSON_FLAG } from '../options/optionSpec.js';
import { TRAIN_SPEC } from '../train/trainOptions.js';
import { trainEventDetail } from '../train/trainEventDetail.js';
import { parse, printJson, readJsonFlag, required, type Parsed } from './args.js';
import { interruptSignal } from './interrupt.js';
import { jsonProgress, PROGRESS_FLAG } from './progressFlag.js';
import { LORA_FLAGS, LORA_USAGE, loraFromFlags } from './loraFlags.js';

/** The flags of the command itself (not options of trainModel). */
const CLI_ONLY = defineOptions({
  out: { schema: Type.String({ minLength: 1 }), required: true, arg: 'DIR', doc: 'Output directory.' },
  config: { schema: Type.String({ minLength: 1 }), arg: 'FILE', doc: 'JSON with any of the options below in camelCase; flags override it.' },
  embeddingsOnly: { schema: Type.Boolean(), doc: 'Same as --params embeddings.' },
  json: JSON_FLAG,
  progress: PROGRESS_FLAG,
});

export const usage = `lep train MODEL_DIR --data FILE --out DIR [options]
  Trains a model on packed blocks (lep data pack); resumes from the newest checkpoint in --out (refused
  when that run had other options). Writes DIR/train.log, DIR/train-config.json, DIR/checkpoints/step-NNNNNNNN
  and the final model (HF layout). Ctrl-C or SIGTERM stops at the next step and checkpoints there.
${helpLines({ ...CLI_ONLY, ...TRAIN_SPEC }).join('\n')}
  Data-parallel: run one process per rank with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set (torchrun,
  or lep launch --nproc N -- lep train ...); --batch-size is per rank, the global batch is
  batch-size x grad-accum x WORLD_SIZE.
  LoRA (--params lora; unset values from the method's instruction-tuning preset: rank 32, alpha 16, every
  projection of every layer, lm_head trained); writes DIR/adapter (PEFT layout) and the merged model:
${LORA_USAGE}
Example: lep train base --data train.safetensors --eval-data eval.safetensors --embeddings-only --steps 300 --lr 2e-3 --out trained`;

export const stopsOnSignal = true;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parse(
    argv,
    { ...cliFlags(TRAIN_SPEC), ...cliFlags(CLI_ONLY), ...LORA_FLAGS },
    usage,
  );
  if (values.help) return void console.log(usage);
  const dir = required(positionals[0], 'MODEL_DIR', usage);
  let fromFile: Record<string, unknown> = {};
  if (values.config !== undefined) {
    const file = readJsonFlag(values.config as string, '--config', 'a JSON object of training options');
    if (typeof file !== 'object' || file === null || Array.isArray(file)) throw optionError('config', 'a JSON object of training options', file, '--config');
    fromFile = file as Record<string, unknown>;
  }
  const fromFlags = optionsFromFlags(values);
  const lora = loraFromFlags(values);
  if (lora) fromFlags.lora = { ...((fromFile.lora as object | undefined) ?? {}), ...lora };
  const options = { ...fromFile, ...fromFlags } as unknown as TrainOptions;
  if (options.data === undefined) required(undefined, '--data', usage);
  const out = required(values.out as string | undefined, '--out', usage);
  checkOptions(TRAIN_SPEC, options, { kind: 'options' });
  // The inputs only the command line has; trainModel checks the model and the data.
  checkOutputPath(out, '--out', { '--rows': values.rows as string | undefined, '--config': values.config as string | undefined }, TRAIN_OUTPUT);
  const steps = options.steps ?? TRAIN_DEFAULTS.steps;
  const json = jsonProgress('train', values.progress);
  // Interrupted, trainModel rejects with a LEP_ABORTED that names the checkpoint to resume from, and
  // cli/dispatch.ts prints it as it is.
  const r = await trainModel(dir, out, {
    ...options,
    signal: interruptSignal,
    onResume: (checkpoint, step) => {
      const note = `resuming from ${checkpoint} (step ${step} of ${steps})`;
      if (json) json.warning(note);
      else console.error(`lep train: ${note}`);
    },
    onProgress: (e) => {
      if (json) {
        if (e.phase === 'train' || e.phase === 'eval') json(e.phase, e.done, e.total, trainEventDetail(e));
        return;
      }
      if (e.phase === 'train') process.stderr.write(`step ${e.done}/${e.total} loss ${e.loss.toFixed(4)} lr ${e.lr.toExponential(2)} ${Math.round(e.tokensPerS)} tok/s\n`);
      else if (e.phase === 'eval') process.stderr.write(`step ${e.done} eval_loss ${e.evalLoss.toFixed(4)}${e.bpc === undefined ? '' : ` bpc ${e.bpc.toFixed(4)}`}\n`);
    },
  });
  if (values.json) return printJson(r);
  console.log(`${r.outDir}: ${r.stepsDone} steps, loss ${r.lastLoss.toFixed(4)}${r.lastEvalLoss !== undefined ? `, eval loss ${r.lastEvalLoss.toFixed(4)}` : ''}${r.resumedFrom ? ` (resumed from ${r.resumedFrom})` : ''}`);
}

/** The spec's flags, and the aliases that set a spec option. */
function optionsFromFlags(values: Parsed['values']): Record<string, unknown> {
  const o = fromFlags(TRAIN_SPEC, values);
  if (values['embeddings-only']) o.params = 'embeddings';
  return o;
}
