import { randomInt } from 'node:crypto';

import { Type } from '@sinclair/typebox';

import { GENERATE_SPEC } from '../model/generateOptions.js';
import { LOAD_FLAGS_SPEC } from '../model/loadOptions.js';
import { checkSampling, LepModel, type GenerateOptions } from '../model/LepModel.js';
import { checkOptions, cliFlags, defineOptions, fromFlags, helpLines, JSON_FLAG, type OptionsOf } from '../options/optionSpec.js';
import { parse, printJson, required } from './args.js';

/** The flags of the command itself (the prompt, how the model loads: LepModel.load's LOAD_SPEC) before the sampling options. */
const CLI_ONLY = defineOptions({
  prompt: { schema: Type.String(), required: true, arg: 'TEXT', doc: 'The prompt.' },
  chat: { schema: Type.Boolean(), doc: "Wrap the prompt in the model's chat template (as a user message)." },
  ...LOAD_FLAGS_SPEC,
  json: { ...JSON_FLAG, doc: 'No streaming: print {text, tokens, finishReason} (and seed, when sampling) as one JSON document on stdout.' },
});

/** The sampling flags: the library's spec, except that the command draws a seed when sampling without one. */
const SAMPLING_FLAGS = {
  ...GENERATE_SPEC,
  seed: { schema: GENERATE_SPEC.seed.schema, defaultDoc: 'greedy: 0; sampling: a random seed, printed', doc: 'Sampling seed: the same seed, prompt and options give the same tokens.' },
};

export const usage = `lep generate MODEL_DIR --prompt TEXT [options]
  Generates from a prompt and prints the new text as it comes.
${helpLines({ ...CLI_ONLY, ...SAMPLING_FLAGS }).join('\n')}
Example: lep generate model --prompt "Привет" --max-new-tokens 32 --temperature 0.8 --seed 1`;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { ...cliFlags(CLI_ONLY), ...cliFlags(SAMPLING_FLAGS) }, usage);
  if (values.help) return void console.log(usage);
  const dir = required(positionals[0], 'MODEL_DIR', usage);
  let prompt = required(values.prompt as string | undefined, '--prompt', usage);
  const sampling = fromFlags(SAMPLING_FLAGS, values) as GenerateOptions;
  const load = fromFlags(CLI_ONLY, values) as OptionsOf<typeof CLI_ONLY>;
  // Every option is checked before the model is read.
  checkOptions(CLI_ONLY, load, { kind: 'options' });
  checkSampling(sampling);
  // The library's seed defaults to 0 (reproducible calls); a person asking to sample expects a fresh draw,
  // so the CLI draws one and prints it, so that the run can be repeated.
  if (sampling.seed === undefined && sampling.temperature !== undefined && sampling.temperature > 0) {
    sampling.seed = randomInt(2 ** 31);
    console.error(`lep generate: sampling with seed ${sampling.seed} (pass --seed ${sampling.seed} to repeat)`);
  }
  const model = await LepModel.load(dir, { device: load.device, dtype: load.dtype });
  try {
    if (values.chat) prompt = model.tokenizer!.applyChatTemplate([{ role: 'user', content: prompt }]);
    const r = await model.generate(prompt, {
      ...sampling,
      addSpecialTokens: !values.chat,
      // The text is printed as it comes (with --json, once, in the result).
      onText: values.json ? undefined : (piece) => process.stdout.write(piece),
    });
    if (values.json) return printJson({ text: r.text, tokens: r.tokens, finishReason: r.finishReason, ...(sampling.seed !== undefined ? { seed: sampling.seed } : {}) });
    process.stdout.write('\n');
    console.error(`(${r.tokens.length} tokens, finish: ${r.finishReason})`);
  } finally {
    model.dispose();
  }
}
