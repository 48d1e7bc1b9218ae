// The option specs (ts/options/optionSpec.ts): one table per stage gives the validation of the API, the CLI
// and recipes alike, the help, the recipe JSON Schema and docs/cli.md.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Value } from '@sinclair/typebox/value';
import { Ajv } from 'ajv';
import test from 'ava';
import { parse as parseYaml } from 'yaml';

import { RECIPE_SECTIONS, readRecipe } from '../../ts/adapt/recipe.js';
import { commands } from '../../ts/cli/commands.js';
import { run as trainCli, usage as trainUsage } from '../../ts/cli/train.js';
import { LepError } from '../../ts/errors.js';
import { CLI_DOCS_FILE, cliDocsText, RECIPE_SCHEMA_FILE, recipeKeysText, recipeSchemaText } from '../../ts/options/generated.js';
import { checkOptions, expectedOf, type OptionSpecs } from '../../ts/options/optionSpec.js';
import { trainModel } from '../../ts/train/trainModel.js';
import { TRAIN_SPEC } from '../../ts/train/trainOptions.js';
import { tempDir } from '../helpers.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const RECIPES = join(ROOT, 'recipes');
const OK_RECIPE = { base: 'b', instruct: 'i', corpus: { train: 'ru.txt' }, tokenizer: { kind: 'extend', vocabSize: 8000 }, train: { seqLen: 128 } };

function writeRecipe(recipe: unknown): string {
  const f = join(tempDir(), 'r.json');
  writeFileSync(f, JSON.stringify(recipe));
  return f;
}

test('every default fits its own schema', (t) => {
  const specs: [string, OptionSpecs][] = [['train', TRAIN_SPEC], ...Object.entries(RECIPE_SECTIONS).map(([n, s]) => [n, s.spec] as [string, OptionSpecs])];
  for (const [name, spec] of specs)
    for (const [k, s] of Object.entries(spec)) if (s.default !== undefined) t.true(Value.Check(s.schema, s.default), `${name}.${k} default ${JSON.stringify(s.default)}`);
});

test('expected values in words', (t) => {
  t.is(expectedOf(TRAIN_SPEC.steps.schema), 'a positive integer');
  t.is(expectedOf(TRAIN_SPEC.lr.schema), 'a positive number');
  t.is(expectedOf(TRAIN_SPEC.beta1.schema), 'a number in [0, 1)');
  t.is(expectedOf(TRAIN_SPEC.evalEvery.schema), 'a non-negative integer');
  t.is(expectedOf(TRAIN_SPEC.seed.schema), 'an integer in [0, 4294967295]');
  t.is(expectedOf(TRAIN_SPEC.dtype.schema), '"f32" or "bf16"');
  t.is(expectedOf(TRAIN_SPEC.device.schema), 'cpu, cuda or cuda:N');
});

test('lr 0 is refused alike by the recipe, trainModel and the CLI (the recipe accepted it before)', async (t) => {
  const recipe = t.throws(() => readRecipe(writeRecipe({ ...OK_RECIPE, train: { seqLen: 128, lr: 0 } })), { instanceOf: LepError });
  t.is(recipe.code, 'LEP_BAD_RECIPE');
  t.regex(recipe.message, /recipe\.train\.lr: expected a positive number, got 0\nHINT: lr \(--lr\): Peak learning rate/);
  // The option check comes before any file is read or model loaded.
  const api = await t.throwsAsync(trainModel('/nonexistent/model', tempDir(), { data: '/nonexistent/blocks', lr: 0 }), { instanceOf: LepError });
  t.is(api.code, 'LEP_BAD_OPTION');
  t.regex(api.message, /Expected a positive number for lr \(--lr\) but received 0\nHINT: /);
  const cli = await t.throwsAsync(trainCli(['/nonexistent/model', '--data', '/nonexistent/blocks', '--out', join(tempDir(), 'o'), '--lr', '0']), { instanceOf: LepError });
  t.is(cli.code, 'LEP_BAD_OPTION');
  t.is(cli.message, api.message);
});

test('the same bounds for the CLI and recipes: steps, beta2, dtype, device, a LoRA target', async (t) => {
  const out = join(tempDir(), 'o');
  const cases: [string[], Record<string, unknown>, RegExp][] = [
    [['--steps', '0'], { steps: 0 }, /positive integer/],
    [['--steps', '1.5'], { steps: 1.5 }, /positive integer/],
    [['--beta2', '1'], { beta2: 1 }, /a number in \[0, 1\)/],
    [['--dtype', 'f16'], { dtype: 'f16' }, /"f32" or "bf16"/],
    [['--device', 'gpu'], { device: 'gpu' }, /cpu, cuda or cuda:N/],
  ];
  for (const [flags, train, want] of cases) {
    const cli = await t.throwsAsync(trainCli(['m', '--data', 'd', '--out', out, ...flags]), { instanceOf: LepError }, flags.join(' '));
    t.regex(cli.message, want, flags.join(' '));
    t.regex(cli.message, new RegExp(`\\(${flags[0]}\\)`), 'the message names the flag');
    const recipe = t.throws(() => readRecipe(writeRecipe({ ...OK_RECIPE, train: { seqLen: 128, ...train } })), { instanceOf: LepError });
    t.regex(recipe.message, want, JSON.stringify(train));
    t.regex(recipe.message, new RegExp(`recipe\\.train\\.${Object.keys(train)[0]}:`));
  }
  const lora = t.throws(() => readRecipe(writeRecipe({ ...OK_RECIPE, train: { seqLen: 128, lora: { rank: 0 } } })));
  t.regex(lora.message, /recipe\.train\.lora\.rank: expected a positive integer, got 0/);
  t.throws(() => checkOptions(TRAIN_SPEC, { data: 'd', stpes: 3 }, { kind: 'options' }), { message: /unknown option stpes\nHINT: the known options are data, evalData/ });
  t.throws(() => checkOptions(TRAIN_SPEC, {}, { kind: 'options' }), { message: /missing data \(--data\)/ });
});

test('every help page has an example; train shows every default of its spec', (t) => {
  for (const [name, c] of Object.entries(commands)) t.regex(c.usage, new RegExp(`\\nExample: lep ${name.split(' ')[0]}`), name);
  for (const [k, s] of Object.entries(TRAIN_SPEC as OptionSpecs)) {
    if (s.default === undefined || typeof s.default === 'boolean') continue;
    const line = trainUsage.split('\n').find((l) => l.startsWith(`  --${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} `));
    t.truthy(line, k);
    t.regex(line!, /\(default [^)]+\)$/, k);
  }
  t.regex(trainUsage, /--lr X +Peak learning rate .*\(default 1e-4\)/);
  t.regex(trainUsage, /--checkpoint-every N .*\(default a tenth of the steps\)/);
});

test('recipes/recipe.schema.json and docs/cli.md are what the specs generate (node dist/scripts/write-generated.js)', (t) => {
  t.is(readFileSync(join(ROOT, RECIPE_SCHEMA_FILE), 'utf8'), recipeSchemaText());
  t.is(readFileSync(join(ROOT, CLI_DOCS_FILE), 'utf8'), cliDocsText());
});

test('docs/cli.md\'s recipe keys name every key a recipe may hold, sections as dotted names, with type and default', (t) => {
  const keys = recipeKeysText().split('\n').map((l) => l.slice(0, l.indexOf(' (')));
  const want: string[] = [];
  const walk = (props: Record<string, { type?: string; properties?: Record<string, unknown> }>, prefix: string): void => {
    for (const [k, v] of Object.entries(props)) {
      want.push(prefix + k);
      if (v.type === 'object' && v.properties) walk(v.properties as never, `${prefix}${k}.`);
    }
  };
  walk((JSON.parse(recipeSchemaText()) as { properties: never }).properties, '');
  t.deepEqual(keys, want);
  const text = recipeKeysText();
  t.regex(text, /^train\.newRowsOnly \(boolean; default false\): Train only the rows of new tokens/m);
  t.regex(text, /^tokenizer\.kind \("existing" \| "train" \| "extend" \| "shrink"\): /m);
  t.regex(text, /^base \(string; required\): /m);
  t.true(cliDocsText().includes(`## Recipe keys\n`) && cliDocsText().includes(text));
});

test('the JSON Schema, read by an independent validator, accepts every shipped recipe and refuses what lep refuses', (t) => {
  const ajv = new Ajv({ allErrors: true, strict: true });
  const validate = ajv.compile(JSON.parse(readFileSync(join(ROOT, RECIPE_SCHEMA_FILE), 'utf8')) as object);
  const files = readdirSync(RECIPES).filter((f) => /\.ya?ml$/.test(f));
  t.true(files.length >= 3);
  for (const f of files) t.true(validate(parseYaml(readFileSync(join(RECIPES, f), 'utf8'))), `${f}: ${ajv.errorsText(validate.errors)}`);
  t.true(validate(OK_RECIPE));
  for (const bad of [
    { ...OK_RECIPE, train: { seqLen: 128, lr: 0 } },
    { ...OK_RECIPE, train: { seqLen: 128, stpes: 10 } },
    { ...OK_RECIPE, train: {} },
    { ...OK_RECIPE, tokenizer: { kind: 'merge' } },
    { ...OK_RECIPE, propagate: { methods: ['swap', 'copy'] } },
    { ...OK_RECIPE, calibrate: { mode: 'self', lora: { targets: ['qkv'] } } },
  ]) {
    t.false(validate(bad), JSON.stringify(bad));
    t.throws(() => readRecipe(writeRecipe(bad)), { instanceOf: LepError }, JSON.stringify(bad));
  }
});
