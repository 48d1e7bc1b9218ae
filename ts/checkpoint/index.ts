/** `lep/checkpoint`: Hugging Face model directories, config.json, safetensors, GGUF export and
 * its tokenizer-parity check. Re-exports only. */
export { parseConfig, toHfConfig, SUPPORTED_MODEL_TYPES, type ModelConfig } from './config.js';
export { readModelDir, checkVocab, weightFilesOf, copyTokenizerFiles, type ModelDir } from './modelDir.js';
export { inspectSafetensors, readSafetensors, writeSafetensors, type TensorData, type TensorInfo } from './safetensors.js';
export { exportGguf, type ExportGgufOptions, type ExportGgufResult, type GgufOutType } from './gguf.js';
export { llamaSpmTokenize, type GgufTokenizerParity } from './ggufTokenizerParity.js';
export { saveModelDir } from './saveModelDir.js';
