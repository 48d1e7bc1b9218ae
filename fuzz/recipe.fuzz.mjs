// Fuzz target: `lep adapt` recipes (readRecipe: YAML or JSON text, then validateRecipe and path
// resolution). Seeds: the shipped recipes. Run: fuzz/run.sh 30 recipe
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import fc from 'fast-check';
import { parse } from 'yaml';

import { dist, fuzz, jsonText, mutated } from './fuzzTarget.mjs';

const { readRecipe, validateRecipe } = await import(dist('ts/adapt/recipe.js'));

const shipped = parse(readFileSync(join(import.meta.dirname, '..', 'recipes', 'toy-ru-extended.yaml'), 'utf8'));
const dir = mkdtempSync(join(tmpdir(), 'lep-fuzz-recipe-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

// Sections mutated one level down too, where typos and wrong types hide.
const section = (name) => mutated(shipped[name] ?? {}).map((s) => ({ ...shipped, [name]: s }));
const recipes = fc.oneof(mutated(shipped), ...Object.keys(shipped).map(section));

await fuzz('recipe', fc.oneof(jsonText(recipes).map((t) => ['json', t]), fc.string({ unit: 'binary' }).map((t) => ['yaml', t]), recipes.map((r) => ['value', r])), (input) => {
  const [kind, body] = typeof input === 'string' ? ['yaml', input] : input;
  if (kind === 'value') return validateRecipe(body);
  const file = join(dir, `r.${kind}`);
  writeFileSync(file, body);
  return readRecipe(file);
});
