import { Type } from '@sinclair/typebox';

import { cliFlags, defineOptions, fromFlags, helpLines, JSON_FLAG } from '../options/optionSpec.js';
import { TOKENIZER_TRAIN_DEFAULTS as D, trainTokenizer, type TrainTokenizerOptions } from '../tokenizer/train.js';
import { TOKENIZER_TRAIN_SPEC } from '../tokenizer/trainTokenizerOptions.js';
import { LepError } from '../errors.js';
import { parse, printJson, progressLine, required } from './args.js';
import { jsonProgress, PROGRESS_FLAG } from './progressFlag.js';
import { corpusOptions, corpusSpecs, corpusUsage, readOptions } from './corpusFlags.js';

/** The flags of the command itself (not options of trainTokenizer). */
const CLI_ONLY = defineOptions({
  out: { schema: Type.String({ minLength: 1 }), required: true, arg: 'DIR', doc: 'Output tokenizer directory.' },
  json: JSON_FLAG,
  progress: PROGRESS_FLAG,
});

export const usage = `lep tokenizer train --corpus SPEC --out DIR [options]
  Trains a SentencePiece BPE or Unigram tokenizer and writes it as a Llama/Mistral-style Hugging Face
  tokenizer (tokenizer.json, tokenizer_config.json, tokenizer.model).
${helpLines({ ...CLI_ONLY, ...TOKENIZER_TRAIN_SPEC }).join('\n')}
${corpusUsage}
Example: lep tokenizer train --corpus ru.txt --vocab-size 8000 --out donor`;

export async function run(argv: string[]): Promise<void> {
  const { values } = parse(
    argv,
    { ...corpusOptions, ...cliFlags(CLI_ONLY), ...cliFlags(TOKENIZER_TRAIN_SPEC), 'user-defined-symbol': { type: 'string', multiple: true } },
    usage,
  );
  if (values.help) return void console.log(usage);
  const specs = corpusSpecs(values);
  if (specs.length === 0) throw new LepError('LEP_BAD_OPTION', `missing --corpus\n\n${usage}`);
  const out = required(values.out as string | undefined, '--out', usage);
  const { mode, ...corpus } = readOptions(values);
  if (mode !== undefined && mode !== 'line')
    throw new LepError('LEP_BAD_OPTION', `--mode ${mode}: SentencePiece trains on lines, so tokenizer training always reads lines\nHINT: drop --mode`);
  const bars = new Map<string, (e: { done: number; total: number }) => void>();
  const json = jsonProgress('tokenizer', values.progress);
  const { stats } = await trainTokenizer(specs, out, {
    ...(fromFlags(TOKENIZER_TRAIN_SPEC, values) as TrainTokenizerOptions),
    corpus,
    onProgress: (e) => {
      if (json) return json(e.phase, e.done, e.total);
      if (e.phase !== 'bpe' && e.phase !== 'unigram') return;
      if (!bars.has(e.phase)) bars.set(e.phase, progressLine(e.phase === 'bpe' ? 'merging' : 'pruning'));
      bars.get(e.phase)!(e);
    },
  });
  if (values.json) return printJson({ out, stats });
  console.log(
    `wrote ${out}: ${values.type ?? D.type}, ${stats.vocabSize} pieces${stats.merges !== undefined ? `, ${stats.merges} merges` : ''}; ` +
      `${stats.lines} lines (${stats.chars} characters) read in ${stats.readSeconds.toFixed(1)} s, trained in ${stats.trainSeconds.toFixed(1)} s` +
      `${stats.skippedLongLines ? `; ${stats.skippedLongLines} lines over --max-sentence-length skipped` : ''}`,
  );
}
