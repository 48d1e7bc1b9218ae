/**
 * Darumeru's summary numbers (docs/method.md §6): a group score is the mean of its datasets' scores, and
 * Micro-Avg is the mean over all datasets, i.e. the group scores weighted by their dataset counts:
 * (3·MMLU + 8·MERA + 2·Sum + 2·CopyEN + 2·CopyRU) / 17.
 */
export interface GroupWeight {
  group: string;
  /** Number of datasets in the group (its weight in Micro-Avg). */
  datasets: number;
}

/** The paper's groups in its tables' column order. */
export const DARUMERU_GROUPS: readonly GroupWeight[] = [
  { group: 'DaruMMLU', datasets: 3 },
  { group: 'DaruMERA', datasets: 8 },
  { group: 'DaruSum', datasets: 2 },
  { group: 'DaruCopy (EN)', datasets: 2 },
  { group: 'DaruCopy (RU)', datasets: 2 },
];

/** Micro-Avg from group scores and their dataset counts. */
export function microAverage(groupScores: Readonly<Record<string, number>>, weights: readonly GroupWeight[] = DARUMERU_GROUPS): number {
  let sum = 0;
  let n = 0;
  for (const { group, datasets } of weights) {
    const s = groupScores[group];
    if (s === undefined) throw new Error(`no score for group ${group}`);
    sum += datasets * s;
    n += datasets;
  }
  return n === 0 ? 0 : sum / n;
}

export interface Summary {
  /** Group → mean of its tasks' scores. */
  groups: Record<string, number>;
  /** Group → how many tasks it has. */
  groupSizes: Record<string, number>;
  /** Mean over all tasks (= group scores weighted by task counts). */
  microAvg: number;
}

/** Group scores and Micro-Avg of task results (`group` undefined → the task's own name). */
export function summarize(tasks: readonly { name: string; group?: string; score: number }[]): Summary {
  const sums: Record<string, number> = {};
  const sizes: Record<string, number> = {};
  for (const t of tasks) {
    const g = t.group ?? t.name;
    sums[g] = (sums[g] ?? 0) + t.score;
    sizes[g] = (sizes[g] ?? 0) + 1;
  }
  const groups: Record<string, number> = {};
  for (const g of Object.keys(sums)) groups[g] = sums[g]! / sizes[g]!;
  const weights = Object.keys(groups).map((group) => ({ group, datasets: sizes[group]! }));
  return { groups, groupSizes: sizes, microAvg: weights.length === 0 ? 0 : microAverage(groups, weights) };
}
