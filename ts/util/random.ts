/** Seeded randomness: the same numbers on every machine and Node version (data sets, bootstrap samples, tests). */

/**
 * The largest seed: seededRandom keeps 32 bits of its seed, and so does libtorch's generator (at::mt19937),
 * so 2^32 would draw what 0 draws. Larger seeds are refused rather than aliased (SEED_SCHEMA, isSeed).
 */
export const MAX_SEED = 2 ** 32 - 1;

/** Whether `seed` is one seededRandom draws from as given. */
export function isSeed(seed: unknown): seed is number {
  return Number.isInteger(seed) && (seed as number) >= 0 && (seed as number) <= MAX_SEED;
}

/** Mulberry32: a tiny seeded PRNG, so the data is the same on every machine and Node version. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A shuffled copy of `xs` (Fisher-Yates), drawing from `rand`. */
export function shuffle<T>(xs: T[], rand: () => number): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}
