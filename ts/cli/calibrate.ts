import { calibrate, DEFAULT_CALIBRATION_PROMPTS, type CalibrateOptions } from '../calibrate/calibrate.js';
import { LepError } from '../errors.js';
import type { LoraPreset } from '../lora/loraOptions.js';
import { intFlag, numFlag, parse, printJson, required } from './args.js';
import { LORA_FLAGS, LORA_USAGE, loraFromFlags } from './loraFlags.js';
import { checkOutputPath } from '../util/checkOutputPath.js';
import { interruptSignal } from './interrupt.js';

export const usage = `lep calibrate MODEL_DIR --out DIR (--self --original INSTRUCT_DIR | --data FILE.jsonl) [options]
  LoRA calibration of a propagated model (docs/method.md §5); writes the merged model to DIR and the adapter
  (PEFT layout) to DIR/adapter. Resumable: answers, data and training pick up where they stopped.
  --self --original DIR     self-calibration: DIR (the original instruct model) answers the prompts
  --prompts FILE|N          prompts (chat JSONL ending with a user turn) or N built-in ones (${DEFAULT_CALIBRATION_PROMPTS})
  --corpora DIR             built-in prompts come from these corpora (.cache/corpora)
  --max-new-tokens N (128)  --work DIR (answers and data; DIR/calibration-data)
  --data FILE.jsonl         instruction-tuning calibration on a chat dataset ({"messages": [...]} per line)
  --copy-text FILE --copy-examples N [--copy-lang ru|en]   mix in "copy this text" examples
  --max-generated N   --seq-len N (512)   --seed N (1)
  --preset self|sft (self: rank 8, alpha 1, first+last layers, embed_tokens+lm_head, lr 2.5e-5, wd 0.1;
                     sft: rank 32, alpha 16, all layers, lm_head, lr 5e-5, wd 0.05, 10 warm-up steps)
  --steps N (one epoch)   --batch-size N (8)   --lr X   --weight-decay X   --warmup-steps N
${LORA_USAGE}
  --json (print the result as one JSON document on stdout; progress stays on stderr)
Example: lep calibrate runs/toy-ru/propagate-swap --self --original instruct --out calibrated`;

export const stopsOnSignal = true;

export async function run(argv: string[]): Promise<void> {
  const str = (k: string) => [k, { type: 'string' as const }];
  const flags = Object.fromEntries(['out', 'original', 'prompts', 'corpora', 'max-new-tokens', 'work', 'data', 'copy-text', 'copy-examples', 'copy-lang', 'max-generated', 'seq-len', 'seed', 'preset', 'steps', 'batch-size', 'lr', 'weight-decay', 'warmup-steps'].map(str));
  const { values, positionals } = parse(argv, { json: { type: 'boolean' }, ...flags, ...LORA_FLAGS, self: { type: 'boolean' } }, usage);
  if (values.help) return void console.log(usage);
  const model = required(positionals[0], 'MODEL_DIR', usage);
  const out = required(values.out as string | undefined, '--out', usage);
  if (Boolean(values.self) === (values.data !== undefined)) throw new LepError('LEP_BAD_OPTION', `give exactly one of --self and --data\n\n${usage}`);
  const prompts = values.prompts as string | undefined;
  const train: NonNullable<CalibrateOptions['train']> = {};
  if (values.steps !== undefined) train.steps = intFlag(values.steps, '--steps');
  if (values['batch-size'] !== undefined) train.batchSize = intFlag(values['batch-size'], '--batch-size');
  if (values['warmup-steps'] !== undefined) train.warmupSteps = intFlag(values['warmup-steps'], '--warmup-steps');
  if (values.lr !== undefined) train.lr = numFlag(values.lr, '--lr');
  if (values['weight-decay'] !== undefined) train.weightDecay = numFlag(values['weight-decay'], '--weight-decay');
  checkOutputPath(out, '--out', { MODEL_DIR: model, '--original': values.original as string | undefined, '--data': values.data as string | undefined, '--prompts': prompts !== undefined && !/^\d+$/.test(prompts) ? prompts : undefined, '--corpora': values.corpora as string | undefined, '--copy-text': values['copy-text'] as string | undefined });
  const r = await calibrate(model, out, {
    signal: interruptSignal,
    mode: values.self ? 'self' : 'data',
    original: values.original as string | undefined,
    prompts: prompts === undefined ? undefined : /^\d+$/.test(prompts) ? Number(prompts) : prompts,
    corpora: values.corpora as string | undefined,
    data: values.data as string | undefined,
    copyText: values['copy-text'] as string | undefined,
    copyExamples: intFlag(values['copy-examples'], '--copy-examples'),
    copyLang: values['copy-lang'] as 'en' | 'ru' | undefined,
    maxGenerated: intFlag(values['max-generated'], '--max-generated'),
    maxNewTokens: intFlag(values['max-new-tokens'], '--max-new-tokens'),
    seqLen: intFlag(values['seq-len'], '--seq-len'),
    seed: intFlag(values.seed, '--seed'),
    preset: values.preset as LoraPreset | undefined,
    lora: loraFromFlags(values),
    train,
    workDir: values.work as string | undefined,
    onProgress: (e) => {
      if (e.phase === 'train') process.stderr.write(`step ${e.done}/${e.total} loss ${e.loss.toFixed(4)}\n`);
    },
  });
  const rej = Object.entries(r.examples.rejected).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ');
  if (values.json) return printJson(r);
  console.log(`${r.out}: ${r.examples.kept} of ${r.examples.generated} examples kept${rej ? ` (rejected: ${rej})` : ''}, ${r.examples.copy} copy examples, ${r.blocks} blocks, ${r.train.stepsDone} steps, loss ${r.train.lastLoss.toFixed(4)}; adapter in ${r.adapter}`);
}
