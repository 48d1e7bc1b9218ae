// The driver of the TS fuzz targets (fuzz/*.fuzz.mjs): property tests with fast-check over the compiled
// readers in dist/. The property of every reader is the same: on any input it returns, or throws a
// LepError (a named error with a code); any other exception is a bug. Committed seeds in
// fuzz/corpus/<target>/ are replayed first; a failing input is written to build/fuzz/crashes/<target>/.
// Hangs are caught by fuzz/run.sh, which runs each target under `timeout`; an input that aborts the
// process is left in build/fuzz/last-<target>, which run.sh then keeps.
// FUZZ_SEED (an integer; run.sh passes 1 by default, like its libFuzzer targets) fixes fast-check's seed, so
// a CI run explores the same inputs each time and a failure there reproduces here; FUZZ_SEED=random draws
// one (for long exploratory runs) and prints it.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import fc from 'fast-check';

const root = join(import.meta.dirname, '..');
export const dist = (p) => join(root, 'dist', p);

/** Throws unless `e` is a LepError. */
function expectLepError(e) {
  if (e && e.name === 'LepError' && typeof e.code === 'string' && e.code.startsWith('LEP_')) return;
  throw e;
}

/**
 * Runs `check(input)` on the committed seeds of `name` (read as text), then on inputs from `arbitrary`
 * for `seconds`. `check` may be async; it passes when it returns or throws a LepError.
 */
export async function fuzz(name, arbitrary, check) {
  const seconds = Number(process.argv[2] ?? 30);
  const seedDir = join(root, 'fuzz', 'corpus', name);
  let seeds = [];
  try {
    // `*.input.json` holds a structured input (as a failing run wrote it); every other file is text.
    seeds = readdirSync(seedDir).sort().map((f) => {
      const text = readFileSync(join(seedDir, f), 'utf8');
      return f.endsWith('.input.json') ? JSON.parse(text) : text;
    });
  } catch {}
  // The input in flight, so that one which kills the process (a native abort) is not lost: run.sh keeps it.
  const last = join(root, 'build', 'fuzz', `last-${name}`);
  mkdirSync(dirname(last), { recursive: true });
  const run = async (input) => {
    writeFileSync(last, typeof input === 'string' ? input : JSON.stringify(input));
    try {
      await check(input);
    } catch (e) {
      try {
        expectLepError(e);
      } catch (bug) {
        const dir = join(root, 'build', 'fuzz', 'crashes', name);
        mkdirSync(dir, { recursive: true });
        const text = typeof input === 'string' ? input : JSON.stringify(input);
        const file = join(dir, createHash('sha1').update(text).digest('hex').slice(0, 16) + (typeof input === 'string' ? '' : '.input.json'));
        writeFileSync(file, text);
        console.error(`${name}: ${bug && bug.stack ? bug.stack : bug}\ninput kept in ${file}`);
        throw bug;
      }
    }
  };
  for (const s of seeds) await run(s);
  const seedText = process.env.FUZZ_SEED ?? '1';
  const seed = seedText === 'random' ? Math.floor(Math.random() * 2 ** 31) : Number(seedText);
  if (!Number.isSafeInteger(seed)) throw new Error(`FUZZ_SEED=${seedText}: expected an integer or "random"`);
  let runs = 0;
  const started = Date.now();
  await fc.assert(
    fc.asyncProperty(arbitrary, async (input) => {
      runs++;
      await run(input);
    }),
    { seed, numRuns: Number.MAX_SAFE_INTEGER, interruptAfterTimeLimit: seconds * 1000, markInterruptAsFailure: false, endOnFailure: true },
  );
  console.log(`${runs + seeds.length} runs, ${Math.round((Date.now() - started) / 1000)} s, seed ${seed}`);
}

/** Arbitrary JSON text: valid JSON of any shape, or JSON with one character changed, or any string. */
export function jsonText(valueArb) {
  return fc.oneof(
    valueArb.map((v) => JSON.stringify(v)),
    fc.tuple(valueArb.map((v) => JSON.stringify(v)), fc.nat(), fc.string({ minLength: 1, maxLength: 1, unit: 'binary' })).map(([s, i, c]) => {
      const k = s.length ? i % s.length : 0;
      return s.slice(0, k) + c + s.slice(k + 1);
    }),
    fc.string({ unit: 'binary' }),
  );
}

/** Mutations of an object: fields replaced by arbitrary JSON values, deleted, or added. */
export function mutated(base) {
  const keys = Object.keys(base);
  return fc
    .array(fc.tuple(keys.length ? fc.oneof(fc.constantFrom(...keys), fc.string()) : fc.string(), fc.option(fc.jsonValue({ maxDepth: 3 }), { nil: undefined })), { maxLength: 4 })
    .map((edits) => {
      const out = { ...base };
      for (const [k, v] of edits) {
        if (v === undefined) delete out[k];
        else out[k] = v;
      }
      return out;
    });
}
