import { TOKENIZER_TRAIN_DEFAULTS as D, trainTokenizer, type TokenizerTrainType } from '../tokenizer/train.js';
import { LepError } from '../errors.js';
import { intFlag, numFlag, parse, printJson, progressLine, required } from './args.js';
import { corpusOptions, corpusSpecs, corpusUsage, readOptions } from './corpusFlags.js';

export const usage = `lep tokenizer train --corpus SPEC --out DIR [options]
  Trains a SentencePiece BPE or Unigram tokenizer and writes it as a Llama/Mistral-style Hugging Face
  tokenizer (tokenizer.json, tokenizer_config.json, tokenizer.model).
  --type bpe|unigram (${D.type})   --vocab-size N (${D.vocabSize})   --character-coverage X (${D.characterCoverage})
  --no-byte-fallback   --no-split-digits   --user-defined-symbol S (repeatable)
  --input-sentence-size N (${D.inputSentenceSize} = all)   --no-shuffle   --seed N (${D.seed})   --spm-threads N (one per core)
  --max-sentence-length BYTES (${D.maxSentenceLength})   --max-piece-length N (${D.maxPieceLength})
  --like MODEL_DIR (carry that model's special tokens and chat template)   --tmp-dir DIR   --verbose
${corpusUsage}
  --json (print the result as one JSON document on stdout; progress stays on stderr)
Example: lep tokenizer train --corpus ru.txt --vocab-size 8000 --out donor`;

export async function run(argv: string[]): Promise<void> {
  const { values } = parse(
    argv,
    { json: { type: 'boolean' },
      ...corpusOptions,
      out: { type: 'string' }, type: { type: 'string' }, 'vocab-size': { type: 'string' },
      'character-coverage': { type: 'string' }, 'no-byte-fallback': { type: 'boolean' }, 'no-split-digits': { type: 'boolean' },
      'user-defined-symbol': { type: 'string', multiple: true }, 'input-sentence-size': { type: 'string' },
      'no-shuffle': { type: 'boolean' }, seed: { type: 'string' }, 'spm-threads': { type: 'string' },
      'max-sentence-length': { type: 'string' }, 'max-piece-length': { type: 'string' }, like: { type: 'string' },
      'tmp-dir': { type: 'string' }, verbose: { type: 'boolean' },
    },
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
  const { stats } = await trainTokenizer(specs, out, {
    type: values.type as TokenizerTrainType | undefined,
    vocabSize: intFlag(values['vocab-size'], '--vocab-size'),
    characterCoverage: numFlag(values['character-coverage'], '--character-coverage'),
    byteFallback: values['no-byte-fallback'] ? false : undefined,
    splitDigits: values['no-split-digits'] ? false : undefined,
    userDefinedSymbols: values['user-defined-symbol'] as unknown as string[] | undefined,
    inputSentenceSize: intFlag(values['input-sentence-size'], '--input-sentence-size'),
    shuffleInputSentence: values['no-shuffle'] ? false : undefined,
    seed: intFlag(values.seed, '--seed'),
    threads: intFlag(values['spm-threads'], '--spm-threads'),
    maxSentenceLength: intFlag(values['max-sentence-length'], '--max-sentence-length'),
    maxPieceLength: intFlag(values['max-piece-length'], '--max-piece-length'),
    like: values.like as string | undefined,
    tmpDir: values['tmp-dir'] as string | undefined,
    verbose: values.verbose as boolean | undefined,
    corpus,
    onProgress: (e) => {
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
