import { LepError, optionError } from '../errors.js';
import { checkpointStep, latestCheckpoint, TRAIN_DEFAULTS, trainModel, type TrainOptions } from '../train/trainModel.js';
import { checkOutputPath } from '../util/checkOutputPath.js';
import { deviceFlag, intFlag, numFlag, parse, readJsonFlag, required } from './args.js';
import { interruptSignal } from './interrupt.js';
import { LORA_FLAGS, LORA_USAGE, loraFromFlags } from './loraFlags.js';

export const usage = `lep train MODEL_DIR --data FILE --out DIR [options]
  Trains a model on packed blocks (lep data pack); resumes from the newest checkpoint in --out (refused
  when that run had other options). Writes DIR/train.log, DIR/train-config.json, DIR/checkpoints/step-N
  and the final model (HF layout). Ctrl-C or SIGTERM stops at the next step and checkpoints there.
  --config FILE (JSON with any of the options below in camelCase; flags override it)
  --eval-data FILE   --params all|embeddings|lora   --embeddings-only (= --params embeddings)
  --rows FILE (JSON array of token ids: in embeddings mode only these rows train)
  --steps N (100)   --batch-size N (8)   --grad-accum N (1)   --lr X (1e-4)   --min-lr-ratio X (0)
  --warmup-steps N   --beta1 X (0.9)   --beta2 X (0.95)   --eps X (1e-5)   --weight-decay X (0.1)
  --clip X (1.0)   --seed N (0)   --eval-every N   --eval-batches N
  --checkpoint-every N (a tenth of --steps; 0 = only when stopped and at the end)
  --keep-checkpoints N (2)   --report-every N (1)   --no-resume (start afresh: removes the old checkpoints)
  --device cpu|cuda[:N]   --dtype f32|bf16
  --activation-checkpointing (recompute layers in backward: less memory, ~1/3 more compute)
  --patch DIR (embeddings mode: also write an embedding patch — the trained embeddings + tokenizer)
  Data-parallel: run one process per rank with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set (torchrun,
  or lep launch --nproc N -- lep train ...); --batch-size is per rank, the global batch is
  batch-size x grad-accum x WORLD_SIZE.   --dist-timeout S (300: a rank waiting longer for the others fails)
  --grad-sync dense|touched-rows (touched-rows: all-reduce only the embedding rows the batches used)
  --grad-bucket-mb X (25: dense gradients are all-reduced in buckets of this size, overlapping backward)
  LoRA (--params lora; unset values from the method's instruction-tuning preset: rank 32, alpha 16, every
  projection of every layer, lm_head trained); writes DIR/adapter (PEFT layout) and the merged model:
${LORA_USAGE}`;

const NUM = ['lr', 'min-lr-ratio', 'beta1', 'beta2', 'eps', 'weight-decay', 'clip', 'dist-timeout', 'grad-bucket-mb'] as const;
const INT = ['steps', 'batch-size', 'grad-accum', 'warmup-steps', 'seed', 'eval-every', 'eval-batches', 'checkpoint-every', 'keep-checkpoints', 'report-every'] as const;
const camel = (s: string) => s.replace(/-(\w)/g, (_, c: string) => c.toUpperCase());

export const stopsOnSignal = true;

/** Where an interrupted run stands: the trainer checkpointed at the step boundary where it stopped. */
function stoppedAt(out: string, steps: number, cause: unknown): LepError {
  const last = latestCheckpoint(out);
  return new LepError(
    'LEP_ABORTED',
    last
      ? `training stopped at step ${checkpointStep(last)} of ${steps}; checkpoint ${last}\nHINT: run the same command again to resume from it.`
      : 'training stopped before its first step; nothing to resume\nHINT: run the same command again to start it.',
    { cause },
  );
}

export async function run(argv: string[]): Promise<void> {
  const flags = Object.fromEntries([...NUM, ...INT, 'config', 'data', 'eval-data', 'out', 'params', 'rows', 'device', 'dtype', 'patch', 'grad-sync'].map((k) => [k, { type: 'string' as const }]));
  const { values, positionals } = parse(argv, { ...flags, ...LORA_FLAGS, 'no-resume': { type: 'boolean' }, 'activation-checkpointing': { type: 'boolean' }, 'embeddings-only': { type: 'boolean' } }, usage);
  if (values.help) return void console.log(usage);
  const dir = required(positionals[0], 'MODEL_DIR', usage);
  let fromFile: Partial<TrainOptions> = {};
  if (values.config !== undefined) fromFile = readJsonFlag(values.config as string, '--config', 'a JSON object of training options') as Partial<TrainOptions>;
  const fromFlags: Record<string, unknown> = {};
  for (const k of NUM) if (values[k] !== undefined) fromFlags[camel(k)] = numFlag(values[k], `--${k}`);
  for (const k of INT) if (values[k] !== undefined) fromFlags[camel(k)] = intFlag(values[k], `--${k}`);
  for (const k of ['data', 'eval-data', 'params', 'device', 'dtype', 'grad-sync'] as const) if (values[k] !== undefined) fromFlags[camel(k)] = values[k];
  if (values.rows !== undefined) {
    const rows = readJsonFlag(values.rows as string, '--rows', 'a JSON array of token ids');
    if (!Array.isArray(rows) || !rows.every((r) => Number.isSafeInteger(r) && (r as number) >= 0))
      throw optionError('rows', 'a JSON array of non-negative integer token ids', Array.isArray(rows) ? rows.find((r) => !Number.isSafeInteger(r) || (r as number) < 0) : rows, '--rows');
    fromFlags.rows = rows;
  }
  if (values['no-resume']) fromFlags.resume = false;
  if (values['embeddings-only']) fromFlags.params = 'embeddings';
  if (values.patch !== undefined) fromFlags.patchDir = values.patch;
  if (values['activation-checkpointing']) fromFlags.activationCheckpointing = true;
  const lora = loraFromFlags(values);
  if (lora) fromFlags.lora = { ...(fromFile.lora ?? {}), ...lora };
  const options = { ...fromFile, ...fromFlags } as TrainOptions;
  if (options.data === undefined) required(undefined, '--data', usage);
  const out = required(values.out as string | undefined, '--out', usage);
  deviceFlag(options.device);
  checkOutputPath(out, '--out', { MODEL_DIR: dir, '--data': options.data, '--eval-data': options.evalData, '--rows': values.rows as string | undefined, '--config': values.config as string | undefined });
  const r = await trainModel(dir, out, {
    ...options,
    signal: interruptSignal,
    onResume: (checkpoint, step) => console.error(`lep train: resuming from ${checkpoint} (step ${step} of ${options.steps ?? TRAIN_DEFAULTS.steps})`),
    onProgress: (e) => {
      if (e.phase === 'train') process.stderr.write(`step ${e.done}/${e.total} loss ${e.loss.toFixed(4)} lr ${e.lr.toExponential(2)} ${Math.round(e.tokensPerS)} tok/s\n`);
      else if (e.phase === 'eval') process.stderr.write(`step ${e.done} eval_loss ${e.evalLoss.toFixed(4)}\n`);
    },
  }).catch((e: unknown) => {
    throw interruptSignal.aborted ? stoppedAt(out, options.steps ?? TRAIN_DEFAULTS.steps, e) : e;
  });
  console.log(`${r.outDir}: ${r.stepsDone} steps, loss ${r.lastLoss.toFixed(4)}${r.lastEvalLoss !== undefined ? `, eval loss ${r.lastEvalLoss.toFixed(4)}` : ''}${r.resumedFrom ? ` (resumed from ${r.resumedFrom})` : ''}`);
}
