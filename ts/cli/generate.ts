import { randomInt } from 'node:crypto';

import { LepModel } from '../model/LepModel.js';
import { deviceFlag, intFlag, numFlag, parse, printJson, required } from './args.js';

export const usage = `lep generate MODEL_DIR --prompt TEXT [options]
  --max-new-tokens N (64)   --temperature X (0 = greedy)   --top-k N   --top-p X
  --repetition-penalty X   --seed N (sampling: random, printed)   --chat (wrap the prompt in the chat template)
  --device cpu|cuda   --dtype f32|bf16
  --json (no streaming: print {text, tokens, finishReason, seed} as one JSON document on stdout)
Example: lep generate model --prompt "Привет" --max-new-tokens 32 --seed 1`;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parse(
    argv,
    {
      prompt: { type: 'string' }, 'max-new-tokens': { type: 'string' }, temperature: { type: 'string' },
      'top-k': { type: 'string' }, 'top-p': { type: 'string' }, 'repetition-penalty': { type: 'string' },
      seed: { type: 'string' }, chat: { type: 'boolean' }, json: { type: 'boolean' }, device: { type: 'string' }, dtype: { type: 'string' },
    },
    usage,
  );
  if (values.help) return void console.log(usage);
  const dir = required(positionals[0], 'MODEL_DIR', usage);
  let prompt = required(values.prompt as string | undefined, '--prompt', usage);
  const temperature = numFlag(values.temperature, '--temperature');
  let seed = intFlag(values.seed, '--seed');
  // The library's seed defaults to 0 (reproducible calls); a person asking to sample expects a fresh draw,
  // so the CLI draws one and prints it, so that the run can be repeated.
  if (seed === undefined && temperature !== undefined && temperature > 0) {
    seed = randomInt(2 ** 31);
    console.error(`lep generate: sampling with seed ${seed} (pass --seed ${seed} to repeat)`);
  }
  const model = await LepModel.load(dir, { device: deviceFlag(values.device), dtype: values.dtype as 'f32' | 'bf16' | undefined });
  try {
    if (values.chat) prompt = model.tokenizer!.applyChatTemplate([{ role: 'user', content: prompt }]);
    const r = await model.generate(prompt, {
      maxNewTokens: intFlag(values['max-new-tokens'], '--max-new-tokens'),
      temperature,
      topK: intFlag(values['top-k'], '--top-k'),
      topP: numFlag(values['top-p'], '--top-p'),
      repetitionPenalty: numFlag(values['repetition-penalty'], '--repetition-penalty'),
      seed,
      addSpecialTokens: !values.chat,
      // The text is printed as it comes (with --json, once, in the result).
      onText: values.json ? undefined : (piece) => process.stdout.write(piece),
    });
    if (values.json) return printJson({ text: r.text, tokens: r.tokens, finishReason: r.finishReason, ...(seed !== undefined ? { seed } : {}) });
    process.stdout.write('\n');
    console.error(`(${r.tokens.length} tokens, finish: ${r.finishReason})`);
  } finally {
    model.dispose();
  }
}
