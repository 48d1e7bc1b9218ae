/**
 * ROUGE-N (Lin 2004): clipped n-gram matches between a prediction and a reference, as recall
 * (matches / reference n-grams), precision (matches / prediction n-grams) and F-measure. Words are
 * runs of Unicode letters and digits, lower-cased, so Russian works (Google's rouge_score keeps only
 * [a-z0-9] and would drop Cyrillic); no stemming unless a stemming tokenizer is passed (rougeStem.ts,
 * `--rouge-stem`). Checked against the js-rouge package.
 */
export interface RougeScore {
  precision: number;
  recall: number;
  f: number;
}

export function rougeWords(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

function grams(words: readonly string[], n: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i + n <= words.length; i++) {
    const g = words.slice(i, i + n).join('\u0000');
    m.set(g, (m.get(g) ?? 0) + 1);
  }
  return m;
}

export function rougeN(pred: string, ref: string, n: number, tokenize: (s: string) => string[] = rougeWords): RougeScore {
  const p = grams(tokenize(pred), n);
  const r = grams(tokenize(ref), n);
  let matches = 0;
  let pTotal = 0;
  let rTotal = 0;
  for (const c of p.values()) pTotal += c;
  for (const [g, c] of r) {
    rTotal += c;
    matches += Math.min(c, p.get(g) ?? 0);
  }
  const precision = pTotal === 0 ? 0 : matches / pTotal;
  const recall = rTotal === 0 ? 0 : matches / rTotal;
  const f = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  return { precision, recall, f };
}
