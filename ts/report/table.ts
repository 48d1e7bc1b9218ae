/**
 * The results table, shaped like the paper's Table 3 (docs/method.md §6): one row per model (vocabulary x
 * method), columns group scores, Micro-Avg, symbols per token and bits per character on held-out
 * Russian, the best value of each column highlighted. Rendered as markdown for the terminal and as HTML
 * for the report, from the same columns so the two never disagree.
 */
import type { ReportInput, ReportRow } from './ReportInput.js';
import { escapeXml, formatNumber } from './svg.js';

export interface TableColumn {
  label: string;
  /** Which end of the column is best. */
  better: 'higher' | 'lower';
  digits: number;
  value(row: ReportRow): number | undefined;
}

/**
 * Group columns in order of first appearance across rows, then Micro-Avg (both only when some row has
 * them), then the two held-out text measures, which every row has.
 */
export function tableColumns(rows: ReportRow[]): TableColumn[] {
  const groups = [...new Set(rows.flatMap((r) => Object.keys(r.groups)))];
  const cols: TableColumn[] = groups.map((g) => ({ label: g, better: 'higher', digits: 3, value: (r) => r.groups[g] }));
  if (rows.some((r) => r.microAvg !== undefined)) cols.push({ label: 'Micro-Avg', better: 'higher', digits: 3, value: (r) => r.microAvg });
  cols.push({ label: 'symbols/token', better: 'higher', digits: 2, value: (r) => r.symbolsPerToken });
  cols.push({ label: 'bits/char', better: 'lower', digits: 3, value: (r) => r.bitsPerChar });
  return cols;
}

/**
 * Indexes of the rows holding a column's best value (all of them on a tie). Nothing is highlighted when
 * fewer than two distinct values are present: a lone or uniform column has no winner.
 */
export function bestRows(rows: ReportRow[], col: TableColumn): Set<number> {
  const vals = rows.map((r) => col.value(r)).map((v) => (v !== undefined && Number.isFinite(v) ? v : undefined));
  const present = vals.filter((v): v is number => v !== undefined);
  if (new Set(present).size < 2) return new Set();
  const best = col.better === 'higher' ? Math.max(...present) : Math.min(...present);
  return new Set(vals.flatMap((v, i) => (v === best ? [i] : [])));
}

/** A markdown cell: a pipe would split the cell and a newline the row. */
function mdCell(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/[\r\n]+/g, ' ');
}

/** The table as markdown (printed by the main job; best values in bold). */
export function formatTable(input: Pick<ReportInput, 'rows'>): string {
  const cols = tableColumns(input.rows);
  const best = cols.map((c) => bestRows(input.rows, c));
  const lines = [
    `| vocabulary | method | ${cols.map((c) => mdCell(c.label)).join(' | ')} |`,
    `|---|---|${cols.map(() => '---:').join('|')}|`,
    ...input.rows.map((r, i) => {
      const cells = cols.map((c, j) => {
        const s = formatNumber(c.value(r), c.digits);
        return best[j]!.has(i) ? `**${s}**` : s;
      });
      return `| ${mdCell(r.vocabulary)} | ${mdCell(r.method)} | ${cells.join(' | ')} |`;
    }),
  ];
  return `${lines.join('\n')}\n`;
}

/** The table as HTML; best cells are <strong> with class "best". */
export function tableHtml(input: Pick<ReportInput, 'rows'>): string {
  const cols = tableColumns(input.rows);
  const best = cols.map((c) => bestRows(input.rows, c));
  const arrow = (c: TableColumn) => (c.better === 'higher' ? '↑' : '↓');
  const head = `<tr><th>vocabulary</th><th>method</th>${cols.map((c) => `<th class="num" title="${c.better} is better">${escapeXml(c.label)} ${arrow(c)}</th>`).join('')}</tr>`;
  const body = input.rows
    .map((r, i) => {
      const cells = cols.map((c, j) => {
        const s = escapeXml(formatNumber(c.value(r), c.digits));
        return best[j]!.has(i) ? `<td class="num best"><strong>${s}</strong></td>` : `<td class="num">${s}</td>`;
      });
      return `<tr><td>${escapeXml(r.vocabulary)}</td><td>${escapeXml(r.method)}</td>${cells.join('')}</tr>`;
    })
    .join('\n');
  return `<table class="results">\n<thead>${head}</thead>\n<tbody>\n${body}\n</tbody>\n</table>`;
}
