/**
 * Tokenizer training time: lep's `trainTokenizer` against Debian's `spm_train` CLI, on the same corpus
 * file with the same SentencePiece options, one run each, side by side.
 *
 * lep's time is end to end: reading the corpus through `readTexts`, writing SentencePiece's input file,
 * training in lep_spm.node (the same libsentencepiece as spm_train), converting to tokenizer.json and the
 * load check in Hugging Face tokenizers. Correctness first: both models must hold the same pieces with the
 * same scores, or the run stops before any number is recorded.
 *
 *   node dist/bench/spm-train.js [--corpus FILE] [--type bpe|unigram] [--vocab-size N] [--max-chars N]
 *        [--threads N] [--no-record]
 *
 * Corpus: FILE, else .cache/corpora/ru.txt (`lep corpora fetch`), else Debian's
 * fortunes-ru fetched into .cache/corpora-fortunes-ru. Non-blank lines (capped at --max-chars characters)
 * are first written to one input file that both sides read.
 * Prints a markdown row and appends one JSON line per run to bench/results/spm-train.jsonl.
 */
import { execFile } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';

import { getSpmNative, packageRoot } from '../ts/binding/loadNative.js';
import { fetchCorpora } from '../ts/corpus/fetchDebian.js';
import { TOKENIZER_TRAIN_DEFAULTS as D, trainTokenizer, type TokenizerTrainType } from '../ts/tokenizer/train.js';
import { writeTrainingText } from '../ts/tokenizer/writeTrainingText.js';

const run = promisify(execFile);

async function defaultCorpus(): Promise<string> {
  const full = join(packageRoot, '.cache', 'corpora', 'ru.txt');
  if (existsSync(full)) return full;
  const r = await fetchCorpora({ cacheDir: join(packageRoot, '.cache', 'corpora-fortunes-ru'), sources: ['fortunes-ru'], outputs: ['ru'] });
  return r.files['ru.txt']!;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      corpus: { type: 'string' }, type: { type: 'string' }, 'vocab-size': { type: 'string' }, 'max-chars': { type: 'string' },
      threads: { type: 'string' }, 'no-record': { type: 'boolean' },
    },
  });
  const type = (values.type ?? 'bpe') as TokenizerTrainType;
  const vocabSize = Number(values['vocab-size'] ?? 8000);
  const maxChars = Number(values['max-chars'] ?? 0);
  const threads = Number(values.threads ?? availableParallelism());
  const source = values.corpus ?? (await defaultCorpus());

  const work = mkdtempSync(join(tmpdir(), 'lep-bench-spm-'));
  try {
    // One input file for both: the corpus's non-blank lines, as lep's reader yields them.
    const input = join(work, 'input.txt');
    const { lines } = await writeTrainingText(source, input, { read: { maxChars }, sampleSize: 0, shuffle: false, seed: 0, maxLineBytes: Infinity });
    const bytes = statSync(input).size;

    // Exactly the flags trainTokenizer passes (see spmArgs in ts/tokenizer/train.ts), special pieces included.
    const flags = {
      model_type: type, vocab_size: String(vocabSize), character_coverage: String(D.characterCoverage),
      byte_fallback: 'true', split_digits: 'true', input_sentence_size: '0', num_threads: String(threads),
      max_sentence_length: String(D.maxSentenceLength), max_sentencepiece_length: String(D.maxPieceLength),
      normalization_rule_name: 'identity', remove_extra_whitespaces: 'false', add_dummy_prefix: 'true',
      unk_id: '0', unk_piece: '<unk>', bos_id: '1', eos_id: '2', pad_id: '-1', bos_piece: '<s>', eos_piece: '</s>',
    };
    const prefix = join(work, 'spm');
    const t0 = performance.now();
    await run('spm_train', [`--input=${input}`, `--model_prefix=${prefix}`, ...Object.entries(flags).map(([k, v]) => `--${k}=${v}`)], { maxBuffer: 1 << 28 });
    const spmSeconds = (performance.now() - t0) / 1000;

    const out = join(work, 'lep');
    const t1 = performance.now();
    const { stats } = await trainTokenizer(input, out, { type, vocabSize, threads });
    const lepSeconds = (performance.now() - t1) / 1000;

    // Correctness before timing: the same pieces and scores from both.
    const spm = getSpmNative();
    const a = spm.readModel(`${prefix}.model`);
    const b = spm.readModel(join(out, 'tokenizer.model'));
    const same = a.pieces.length === b.pieces.length && a.pieces.every((p, i) => p === b.pieces[i] && a.scores[i] === b.scores[i] && a.types[i] === b.types[i]);
    if (!same) throw new Error(`spm_train and lep trained different models (${a.pieces.length} vs ${b.pieces.length} pieces)`);

    const ratio = lepSeconds / spmSeconds;
    const row = {
      bench: 'spm-train',
      date: new Date().toISOString(),
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      // The machines are shared: the 1-minute load average at the end of the run says how noisy it was.
      loadAvg1m: +loadavg()[0]!.toFixed(2),
      corpus: source,
      inputBytes: bytes,
      lines,
      type,
      vocabSize,
      threads,
      samePieces: same,
      spmTrainSeconds: +spmSeconds.toFixed(3),
      lepSeconds: +lepSeconds.toFixed(3),
      lepReadSeconds: +stats.readSeconds.toFixed(3),
      lepTrainSeconds: +stats.trainSeconds.toFixed(3),
      lepOverSpmTrain: +ratio.toFixed(3),
    };
    console.log('| type | vocab | input MB | lines | threads | spm_train s | lep s (read + train + convert) | lep / spm_train |');
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
    console.log(
      `| ${type} | ${vocabSize} | ${(bytes / 1e6).toFixed(1)} | ${lines} | ${threads} | ${spmSeconds.toFixed(2)} | ` +
        `${lepSeconds.toFixed(2)} (${stats.readSeconds.toFixed(2)} + ${stats.trainSeconds.toFixed(2)} + ${(lepSeconds - stats.readSeconds - stats.trainSeconds).toFixed(2)}) | ${ratio.toFixed(2)} |`,
    );
    if (!values['no-record']) {
      mkdirSync(join(packageRoot, 'bench', 'results'), { recursive: true });
      appendFileSync(join(packageRoot, 'bench', 'results', 'spm-train.jsonl'), JSON.stringify(row) + '\n');
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
