import { statSync } from 'node:fs';

import { Type } from '@sinclair/typebox';

import { listCorpusFiles } from '../corpus/listCorpusFiles.js';
import { cliFlags, checkOptions, defineOptions, fromFlags, helpLines, JSON_FLAG } from '../options/optionSpec.js';
import { packCorpus, type PackCorpusOptions } from '../train/packCorpus.js';
import { PACK_SPEC } from '../train/packCorpusOptions.js';
import { parse, printJson, progressLine, required } from './args.js';
import { jsonProgress, PROGRESS_FLAG } from './progressFlag.js';
import { interruptSignal } from './interrupt.js';

/** The flags of the command itself (not options of packCorpus). */
const CLI_ONLY = defineOptions({
  tokenizer: { schema: Type.String({ minLength: 1 }), required: true, arg: 'DIR', doc: 'The tokenizer (a tokenizer or model directory).' },
  out: { schema: Type.String({ minLength: 1 }), required: true, arg: 'FILE', doc: 'Output blocks file (.safetensors).' },
  json: JSON_FLAG,
  progress: PROGRESS_FLAG,
});

export const usage = `lep data pack --tokenizer DIR --out FILE --seq-len N CORPUS... [options]
  Tokenises a corpus into the trainer's blocks file (safetensors "tokens", plus "loss_mask" for chat).
  CORPUS: files, globs, directories; .jsonl (text field) and .gz are read too.
${helpLines({ ...CLI_ONLY, ...PACK_SPEC }).join('\n')}
Example: lep data pack --tokenizer runs/toy-ru/init --seq-len 128 --out train.safetensors ru.txt`;

export const stopsOnSignal = true;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { ...cliFlags(CLI_ONLY), ...cliFlags(PACK_SPEC) }, usage);
  if (values.help) return void console.log(usage);
  if (positionals.length === 0) required(undefined, 'CORPUS', usage);
  const tokenizer = required(values.tokenizer as string | undefined, '--tokenizer', usage);
  const out = required(values.out as string | undefined, '--out', usage);
  required(values['seq-len'] as string | undefined, '--seq-len', usage);
  const options = fromFlags(PACK_SPEC, values) as PackCorpusOptions;
  // Checked before the corpus is listed (packCorpus checks the same).
  checkOptions(PACK_SPEC, options, { kind: 'options' });
  // Progress: text bytes read against the corpus files' sizes (compressed or JSONL files make it a rough guide), in MB.
  const total = (await listCorpusFiles(positionals)).reduce((n, f) => n + statSync(f).size, 0);
  const json = jsonProgress('data', values.progress);
  const bar = progressLine('pack (MB)');
  const mb = (b: number) => Math.round(b / 1e6);
  const unit = options.kind === 'chat' ? 'conversations' : 'documents';
  // Events count what was read; --max-blocks can stop packing before all of it is used (the result's count).
  let read = 0;
  const report = (bytes: number, documents: number) => {
    const done = Math.min(bytes, total);
    read = Math.max(read, documents);
    if (json) json('packing', done, total, `${read} ${unit} read, ${(bytes / 1e6).toFixed(1)} of ${(total / 1e6).toFixed(1)} MB`);
    else bar({ done: mb(done), total: mb(total) });
  };
  const r = await packCorpus(positionals, tokenizer, out, { ...options, signal: interruptSignal, onProgress: (e) => report(Math.min(e.bytes, Math.max(0, total - 1)), e.documents) });
  report(total, r.documents);
  if (values.json) return printJson(r);
  console.log(`${r.out}: ${r.blocks} blocks of ${r.seqLen} tokens from ${r.documents} ${unit}` +
    (r.skippedTooLong ? ` (${r.skippedTooLong} longer than a block skipped)` : ''));
}
