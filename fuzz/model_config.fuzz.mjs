// Fuzz target: config.json (parseConfig) and model.safetensors.index.json (weightFilesOf), the TS readers
// of a model directory. Run: fuzz/run.sh 30 model_config
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import fc from 'fast-check';

import { dist, fuzz, jsonText, mutated } from './fuzzTarget.mjs';

const { parseConfig } = await import(dist('ts/checkpoint/config.js'));
const { weightFilesOf } = await import(dist('ts/checkpoint/modelDir.js'));

const llama = {
  model_type: 'llama', vocab_size: 32000, hidden_size: 64, intermediate_size: 172, num_hidden_layers: 2,
  num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 512, rms_norm_eps: 1e-5, rope_theta: 10000,
  rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
  tie_word_embeddings: false,
};
const index = { metadata: { total_size: 8 }, weight_map: { 'model.embed_tokens.weight': 'model-00001-of-00002.safetensors', 'lm_head.weight': 'model-00002-of-00002.safetensors' } };
const dir = mkdtempSync(join(tmpdir(), 'lep-fuzz-config-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'model-00001-of-00002.safetensors'), '');
writeFileSync(join(dir, 'model-00002-of-00002.safetensors'), '');

await fuzz(
  'model_config',
  fc.oneof(jsonText(mutated(llama)), mutated(index).map((i) => 'index:' + JSON.stringify(i)), jsonText(fc.jsonValue()).map((t) => 'index:' + t)),
  (text) => {
    if (text.startsWith('index:')) {
      writeFileSync(join(dir, 'model.safetensors.index.json'), text.slice(6));
      for (const f of weightFilesOf(dir)) if (!f.startsWith(dir + '/') || f.slice(dir.length + 1).includes('/')) throw new Error(`escaped the model directory: ${f}`);
      return;
    }
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      return;  // readModelDir names a non-JSON config.json before parseConfig sees it
    }
    const c = parseConfig(json, 'config.json');
    for (const k of ['vocabSize', 'hiddenSize', 'intermediateSize', 'numHiddenLayers', 'numAttentionHeads', 'numKeyValueHeads', 'headDim'])
      if (!Number.isInteger(c[k]) || c[k] <= 0) throw new Error(`parseConfig accepted ${k} = ${c[k]}`);
  },
);
