/** `lep/lora`: LoRA options and PEFT adapter files (save, read, merge). Re-exports only. */
export { LORA_PROJECTIONS, LORA_PRESETS, resolveLora, type LoraOptions, type LoraPreset, type LoraProjection } from './loraOptions.js';
export { saveAdapter, readAdapterConfig, mergeAdapter, peftConfig, ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, type MergeOptions, type MergeResult } from './peftAdapter.js';
