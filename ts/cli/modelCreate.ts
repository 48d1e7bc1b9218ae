import { Type } from '@sinclair/typebox';

import { createModel, type CreateModelOptions } from '../model/createModel.js';
import { CREATE_MODEL_SPEC } from '../model/createModelOptions.js';
import { checkOptions, cliFlags, defineOptions, fromFlags, helpLines, JSON_FLAG } from '../options/optionSpec.js';
import { parse, printJson, progressLine, required } from './args.js';

/** The flags of the command itself (not options of createModel). */
const CLI_ONLY = defineOptions({
  out: { schema: Type.String({ minLength: 1 }), required: true, arg: 'DIR', doc: 'Output model directory.' },
  json: JSON_FLAG,
});

export const usage = `lep model create --tokenizer DIR --out DIR [options]
  Writes a randomly initialised LLaMA-family model (Hugging Face layout) with the given tokenizer.
${helpLines({ ...CLI_ONLY, ...CREATE_MODEL_SPEC }).join('\n')}
Example: lep model create --tokenizer tokenizer --out tiny --layers 2 --hidden-size 64`;

export async function run(argv: string[]): Promise<void> {
  const { values } = parse(argv, { ...cliFlags(CLI_ONLY), ...cliFlags(CREATE_MODEL_SPEC) }, usage);
  if (values.help) return void console.log(usage);
  const out = required(values.out as string | undefined, '--out', usage);
  const tokenizerDir = required(values.tokenizer as string | undefined, '--tokenizer', usage);
  const options = fromFlags(CREATE_MODEL_SPEC, values) as unknown as CreateModelOptions;
  // Checked before the output path (createModel checks the same).
  checkOptions(CREATE_MODEL_SPEC, options, { kind: 'options' });
  const cfg = await createModel(out, { ...options, onProgress: progressLine('create') });
  if (values.json) return printJson({ out, config: cfg });
  console.log(`wrote ${out}: ${cfg.modelType}, ${cfg.numHiddenLayers} layers, hidden ${cfg.hiddenSize}, vocab ${cfg.vocabSize}`);
}
