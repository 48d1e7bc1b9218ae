import { packCorpus } from '../train/packCorpus.js';
import { intFlag, parse, printJson, required } from './args.js';
import { checkOutputPath } from '../util/checkOutputPath.js';
import { prepareFileOutput } from '../util/prepareFileOutput.js';
import { interruptSignal } from './interrupt.js';

export const usage = `lep data pack --tokenizer DIR --out FILE --seq-len N CORPUS... [options]
  Tokenises a corpus into the trainer's blocks file (safetensors "tokens", plus "loss_mask" for chat).
  CORPUS: files, globs, directories; .jsonl (text field) and .gz are read too.
  --kind text|chat (chat: JSONL of {"messages": [...]}, loss on assistant tokens only)
  --max-blocks N   --max-chars N   --normalize none|NFC|NFKC   --script NAME (e.g. Cyrillic)   --text-field F
  --json (print the result as one JSON document on stdout; progress stays on stderr)
Example: lep data pack --tokenizer runs/toy-ru/init --seq-len 128 --out train.safetensors ru.txt`;

export const stopsOnSignal = true;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parse(
    argv,
    { json: { type: 'boolean' },
      tokenizer: { type: 'string' }, out: { type: 'string' }, 'seq-len': { type: 'string' }, kind: { type: 'string' },
      'max-blocks': { type: 'string' }, 'max-chars': { type: 'string' }, normalize: { type: 'string' },
      script: { type: 'string' }, 'text-field': { type: 'string' },
    },
    usage,
  );
  if (values.help) return void console.log(usage);
  if (positionals.length === 0) required(undefined, 'CORPUS', usage);
  const tokenizer = required(values.tokenizer as string | undefined, '--tokenizer', usage);
  const out = required(values.out as string | undefined, '--out', usage);
  checkOutputPath(out, '--out', { CORPUS: positionals, '--tokenizer': tokenizer });
  prepareFileOutput(out, '--out');
  const r = await packCorpus(positionals, tokenizer, out, {
    signal: interruptSignal,
    seqLen: intFlag(required(values['seq-len'] as string | undefined, '--seq-len', usage), '--seq-len')!,
    kind: values.kind as 'text' | 'chat' | undefined,
    maxBlocks: intFlag(values['max-blocks'], '--max-blocks'),
    maxChars: intFlag(values['max-chars'], '--max-chars'),
    normalize: values.normalize as 'none' | 'NFC' | 'NFKC' | undefined,
    script: values.script as string | undefined,
    textField: values['text-field'] as string | undefined,
  });
  if (values.json) return printJson(r);
  console.log(`${r.out}: ${r.blocks} blocks of ${r.seqLen} tokens from ${r.documents} ${values.kind === 'chat' ? 'conversations' : 'documents'}` +
    (r.skippedTooLong ? ` (${r.skippedTooLong} longer than a block skipped)` : ''));
}
