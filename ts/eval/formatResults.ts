/** Plain-text rendering of evaluation results for the terminal. */
import type { EvalResult } from './evaluate.js';

function table(rows: string[][]): string {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const lines = rows.map((r) => r.map((x, i) => (i < 2 ? x.padEnd(w[i]!) : x.padStart(w[i]!))).join('  ').trimEnd());
  lines.splice(1, 0, '-'.repeat(Math.max(...lines.map((l) => l.length))));
  return lines.join('\n');
}

export function formatResults(r: EvalResult): string {
  const out: string[] = [`model ${r.model} (format ${r.format}${r.format === 'plain' ? `, ${r.options.shots}-shot` : ', zero-shot'})`];
  if (r.tasks.length > 0) {
    const rows = [['task', 'group', 'score', 'items', 'metrics']];
    for (const t of r.tasks) {
      const m = Object.entries(t.metrics).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ');
      const notes = [t.unstopped ? `${t.unstopped} hit max tokens` : '', t.truncated ? `${t.truncated} prompts cut to fit the context` : '', t.badLines.length ? `${t.badLines.length} bad lines skipped` : ''].filter(Boolean).join('; ');
      rows.push([t.name, t.group, t.score.toFixed(3), String(t.items), m + (notes ? ` (${notes})` : '')]);
    }
    out.push(table(rows));
    const g = r.summary.groups;
    out.push(table([['group', 'tasks', 'score'], ...Object.keys(g).map((k) => [k, String(r.summary.groupSizes[k]), g[k]!.toFixed(3)]), ['Micro-Avg', String(r.tasks.length), r.summary.microAvg.toFixed(3)]]));
    for (const t of r.tasks) for (const b of t.badLines) out.push(`${t.file}:${b.line}: skipped: ${b.message}`);
  }
  const langs = Object.keys(r.text);
  if (langs.length > 0)
    out.push(table([['held-out text', '', 'bits/char', 'symbols/token', 'chars'], ...langs.map((l) => [l, '', r.text[l]!.bitsPerChar.toFixed(3), r.text[l]!.symbolsPerToken.toFixed(3), String(r.text[l]!.chars)])]));
  return out.join('\n\n');
}
