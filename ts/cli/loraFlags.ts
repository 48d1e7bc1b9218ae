/** The --lora-* flags shared by `lep train --params lora` and `lep calibrate`. */
import type { LoraOptions } from '../lora/loraOptions.js';
import { parseLoraLayers } from '../lora/loraOptions.js';
import { intFlag, numFlag, type Options, type Parsed } from './args.js';

export const LORA_FLAGS: Options = Object.fromEntries(
  ['lora-rank', 'lora-alpha', 'lora-dropout', 'lora-targets', 'lora-layers', 'lora-train-modules', 'lora-seed'].map((k) => [k, { type: 'string' as const }]),
);

export const LORA_USAGE = `  --lora-rank N   --lora-alpha X   --lora-dropout X (0)   --lora-seed N (0)
  --lora-targets q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj
  --lora-layers all|first-last|0,5   --lora-train-modules embed_tokens,lm_head (or "none")`;

/** The LoRA settings given on the command line (unset ones are left to the preset). */
export function loraFromFlags(values: Parsed['values']): LoraOptions | undefined {
  const o: LoraOptions = {};
  const list = (v: unknown) => (v === 'none' ? [] : String(v).split(',').map((s) => s.trim()).filter(Boolean));
  if (values['lora-rank'] !== undefined) o.rank = intFlag(values['lora-rank'], '--lora-rank');
  if (values['lora-alpha'] !== undefined) o.alpha = numFlag(values['lora-alpha'], '--lora-alpha');
  if (values['lora-dropout'] !== undefined) o.dropout = numFlag(values['lora-dropout'], '--lora-dropout');
  if (values['lora-seed'] !== undefined) o.seed = intFlag(values['lora-seed'], '--lora-seed');
  if (values['lora-targets'] !== undefined) o.targets = list(values['lora-targets']) as LoraOptions['targets'];
  if (values['lora-layers'] !== undefined) o.layers = parseLoraLayers(String(values['lora-layers']));
  if (values['lora-train-modules'] !== undefined) o.modulesToSave = list(values['lora-train-modules']) as LoraOptions['modulesToSave'];
  return Object.keys(o).length > 0 ? o : undefined;
}
