import { createModel } from '../model/createModel.js';
import { intFlag, numFlag, parse, printJson, progressLine, required } from './args.js';
import { checkOutputPath } from '../util/checkOutputPath.js';

export const usage = `lep model create --tokenizer DIR --out DIR [options]
  Writes a randomly initialised LLaMA-family model (Hugging Face layout) with the given tokenizer.
  --arch llama|mistral|qwen2   --hidden-size N   --intermediate-size N   --layers N
  --heads N   --kv-heads N   --max-positions N   --vocab-size N   --tie   --seed N
  --init-std X   --embed-std X   --dtype f32|bf16|f16   --shard-bytes N
  --json (print the result as one JSON document on stdout; progress stays on stderr)
Example: lep model create --tokenizer tokenizer --out tiny --layers 2 --hidden-size 64`;

export async function run(argv: string[]): Promise<void> {
  const { values } = parse(
    argv,
    { json: { type: 'boolean' },
      tokenizer: { type: 'string' }, out: { type: 'string' }, arch: { type: 'string' },
      'hidden-size': { type: 'string' }, 'intermediate-size': { type: 'string' }, layers: { type: 'string' },
      heads: { type: 'string' }, 'kv-heads': { type: 'string' }, 'max-positions': { type: 'string' },
      'vocab-size': { type: 'string' }, tie: { type: 'boolean' }, seed: { type: 'string' },
      'init-std': { type: 'string' }, 'embed-std': { type: 'string' }, dtype: { type: 'string' },
      'shard-bytes': { type: 'string' },
    },
    usage,
  );
  if (values.help) return void console.log(usage);
  const out = required(values.out as string | undefined, '--out', usage);
  const tokenizerDir = required(values.tokenizer as string | undefined, '--tokenizer', usage);
  checkOutputPath(out, '--out', { '--tokenizer': tokenizerDir });
  const cfg = await createModel(out, {
    tokenizerDir,
    modelType: values.arch as 'llama' | 'mistral' | 'qwen2' | undefined,
    hiddenSize: intFlag(values['hidden-size'], '--hidden-size'),
    intermediateSize: intFlag(values['intermediate-size'], '--intermediate-size'),
    numHiddenLayers: intFlag(values.layers, '--layers'),
    numAttentionHeads: intFlag(values.heads, '--heads'),
    numKeyValueHeads: intFlag(values['kv-heads'], '--kv-heads'),
    maxPositionEmbeddings: intFlag(values['max-positions'], '--max-positions'),
    vocabSize: intFlag(values['vocab-size'], '--vocab-size'),
    tieWordEmbeddings: values.tie as boolean | undefined,
    seed: intFlag(values.seed, '--seed'),
    initStd: numFlag(values['init-std'], '--init-std'),
    embedStd: numFlag(values['embed-std'], '--embed-std'),
    dtype: values.dtype as 'f32' | 'bf16' | 'f16' | undefined,
    maxShardBytes: intFlag(values['shard-bytes'], '--shard-bytes'),
    onProgress: progressLine('create'),
  });
  if (values.json) return printJson({ out, config: cfg });
  console.log(`wrote ${out}: ${cfg.modelType}, ${cfg.numHiddenLayers} layers, hidden ${cfg.hiddenSize}, vocab ${cfg.vocabSize}`);
}
