import { readTexts } from '../corpus/readCorpus.js';
import { LepError } from '../errors.js';
import { measureTokenizers, type TokenizerMetrics } from '../tokenizer/metrics.js';
import { Tokenizer } from '../tokenizer/Tokenizer.js';
import { readTokenizerView } from '../tokenizer/view.js';
import { parse } from './args.js';
import { corpusOptions, corpusProgress, corpusSpecs, corpusUsage, readOptions } from './corpusFlags.js';

export const usage = `lep tokenizer stats TOKENIZER_DIR [TOKENIZER_DIR...] --corpus SPEC [--json] [options]
  Symbols per token (characters / tokens, no special tokens), tokens per word, bytes per token,
  byte-fallback and unknown-token rates of each tokenizer on the corpus (read once).
${corpusUsage}
Example: lep tokenizer stats base extended --corpus ru.txt --json`;

const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;

/** A markdown table, one row per tokenizer. */
export function statsTable(rows: { name: string; size: number; kind: string; m: TokenizerMetrics }[]): string {
  const head = '| tokenizer | kind | size | symbols/token | tokens/word | bytes/token | byte fallback | unknown |';
  const lines = rows.map(
    ({ name, size, kind, m }) =>
      `| ${name} | ${kind} | ${size} | ${m.symbolsPerToken.toFixed(3)} | ${m.tokensPerWord.toFixed(3)} | ${m.bytesPerToken.toFixed(3)} | ${pct(m.byteFallbackRate)} | ${pct(m.unknownRate)} |`,
  );
  return [head, '|---|---|---:|---:|---:|---:|---:|---:|', ...lines].join('\n');
}

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { ...corpusOptions, json: { type: 'boolean' } }, usage);
  if (values.help) return void console.log(usage);
  if (positionals.length === 0) throw new LepError('LEP_BAD_OPTION', `missing TOKENIZER_DIR\n\n${usage}`);
  const specs = corpusSpecs(values);
  if (specs.length === 0) throw new LepError('LEP_BAD_OPTION', `missing --corpus\n\n${usage}`);
  const tokenizers = positionals.map((d) => Tokenizer.fromDir(d));
  const views = tokenizers.map((t, i) => readTokenizerView(t, `${positionals[i]}/tokenizer.json`));
  const progress = await corpusProgress('stats', specs);
  const metrics = await measureTokenizers(tokenizers, readTexts(specs, readOptions(values)), { onProgress: progress.onProgress });
  progress.done();
  const rows = positionals.map((dir, i) => ({ name: dir, size: tokenizers[i]!.size, kind: `${views[i]!.modelType} ${views[i]!.style}`, m: metrics[i]! }));
  if (values.json) {
    console.log(JSON.stringify({ corpus: specs, tokenizers: rows.map(({ name, size, kind, m }) => ({ dir: name, size, kind, ...m })) }, null, 2));
    return;
  }
  const m = metrics[0]!;
  console.log(`corpus: ${m.texts} texts, ${m.characters} characters, ${m.words} words, ${m.bytes} bytes\n`);
  console.log(statsTable(rows));
}
