import { readTexts } from '../corpus/readCorpus.js';
import { compareTokenizers } from '../tokenizer/metrics.js';
import { Tokenizer } from '../tokenizer/Tokenizer.js';
import { parse, required } from './args.js';
import { corpusOptions, corpusProgress, corpusSpecs, corpusUsage, readOptions } from './corpusFlags.js';

export const usage = `lep tokenizer compare DIR_A DIR_B --corpus SPEC [--json] [options]
  Vocabulary overlap (by surface string, so "▁the" and "Ġthe" match), the share of corpus texts whose
  segmentation differs (run it on original-language text for Extended/Optimized), symbols/token of each.
${corpusUsage}
Example: lep tokenizer compare base-tokenizer extended-tokenizer --corpus ru.txt --json`;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { ...corpusOptions, json: { type: 'boolean' } }, usage);
  if (values.help) return void console.log(usage);
  const dirA = required(positionals[0], 'DIR_A', usage);
  const dirB = required(positionals[1], 'DIR_B', usage);
  const specs = corpusSpecs(values);
  required(specs[0], '--corpus', usage);
  const [a, b] = [Tokenizer.fromDir(dirA), Tokenizer.fromDir(dirB)];
  const progress = await corpusProgress('compare', specs);
  const r = await compareTokenizers(a, b, readTexts(specs, readOptions(values)), { onProgress: progress.onProgress });
  progress.done();
  if (values.json) {
    console.log(JSON.stringify({ dirA, dirB, corpus: specs, sizeA: a.size, sizeB: b.size, ...r }, null, 2));
    return;
  }
  const o = r.overlap;
  console.log(`A = ${dirA} (${a.size} ids)\nB = ${dirB} (${b.size} ids)\ncorpus: ${r.texts} texts, ${r.a.characters} characters\n`);
  console.log(`vocabulary overlap   ${o.shared} shared of ${o.a} (A) and ${o.b} (B); Jaccard ${o.jaccard.toFixed(4)}, A in B ${(100 * o.aInB).toFixed(2)}%, B in A ${(100 * o.bInA).toFixed(2)}%`);
  console.log(`segmentation changed ${r.changedTexts} of ${r.texts} texts (${(100 * r.changedShare).toFixed(2)}%)`);
  console.log(`symbols/token        A ${r.a.symbolsPerToken.toFixed(3)}, B ${r.b.symbolsPerToken.toFixed(3)} (B/A ${(r.b.symbolsPerToken / r.a.symbolsPerToken).toFixed(3)})`);
  console.log(`tokens               A ${r.a.tokens}, B ${r.b.tokens}`);
}
