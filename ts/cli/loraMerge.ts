import { describeMerge, mergeAdapter } from '../lora/peftAdapter.js';
import { numFlag, parse, printJson, required } from './args.js';

export const usage = `lep lora merge MODEL_DIR ADAPTER_DIR --out DIR [--dtype f32|bf16] [--alpha-scale S] [--skip-modules-to-save]
  Merges a LoRA adapter in PEFT layout (adapter_config.json + adapter_model.safetensors, e.g. OUT/adapter
  of lep train --params lora, or one trained with PEFT) into MODEL_DIR: W += (alpha / S / r)·B·A (S = 1
  unless --alpha-scale), modules to save replaced as trained (never scaled) unless --skip-modules-to-save.
  Writes a plain model directory (atomically).
  --json (print the result as one JSON document on stdout; progress stays on stderr)
Example: lep lora merge base run/adapter --out merged`;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' }, out: { type: 'string' }, dtype: { type: 'string' }, 'alpha-scale': { type: 'string' }, 'skip-modules-to-save': { type: 'boolean' } }, usage);
  if (values.help) return void console.log(usage);
  const out = required(values.out as string | undefined, '--out', usage);
  const model = required(positionals[0], 'MODEL_DIR', usage);
  const adapter = required(positionals[1], 'ADAPTER_DIR', usage);
  const r = await mergeAdapter(model, adapter, out, {
    dtype: values.dtype as 'f32' | 'bf16' | undefined,
    alphaScale: numFlag(values['alpha-scale'], '--alpha-scale'),
    skipModulesToSave: Boolean(values['skip-modules-to-save']),
  });
  if (values.json) return printJson({ model, adapter, ...r, out });
  console.log(`${out}: ${positionals[0]} with ${positionals[1]} merged ${describeMerge(r)}`);
}
