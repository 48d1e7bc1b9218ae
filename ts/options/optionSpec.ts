/**
 * One declarative spec per stage option: name (the key), type and bounds (a TypeBox schema), default, CLI
 * flag and doc, written once. Everything else derives from it: the TS options type (`OptionsOf`), validation
 * (`checkOptions`, for the API, the CLI and recipes alike), the CLI flags and their help lines
 * (`cliFlags`, `fromFlags`, `helpLines`), the recipe section's JSON Schema (`sectionSchema`) and the
 * resolved options (`withDefaults`).
 *
 * Why TypeBox (over zod v4 or valibot): a TypeBox schema *is* a JSON Schema object, so the recipe schema
 * that editors read (recipes/recipe.schema.json) is the validator's own schema, not a conversion of it;
 * `Static<>` gives the TS type from the same object; it has no runtime dependencies and is widely used
 * (Fastify's type provider). zod and valibot need a separate JSON Schema converter whose output can drift.
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

import { LepError, optionError } from '../errors.js';
import { MAX_SEED } from '../util/random.js';

export interface OptionSpec {
  /** Type and bounds. */
  readonly schema: TSchema;
  /** One sentence for --help, docs/cli.md and the recipe schema's description. */
  readonly doc: string;
  /** The value when unset. Absent: unset means "none", or the stage computes it (`defaultDoc` says how). */
  readonly default?: unknown;
  /** How the help shows a computed default ("a tenth of --steps"). */
  readonly defaultDoc?: string;
  /** Required by the stage's function (the TS type makes it non-optional). */
  readonly required?: boolean;
  /**
   * The CLI flag without dashes; `false`: not on the command line (API or recipe only). Defaults to the
   * key in kebab-case. A boolean whose flag starts with `no-` sets `false`.
   */
  readonly flag?: string | false;
  /** The value's name in help (N, X, FILE); derived from the type when unset. */
  readonly arg?: string;
  /** Also a key of the stage's recipe section. */
  readonly recipe?: boolean;
  /** Reads the flag's text (e.g. a JSON file it names) when the type alone does not say how. */
  readonly parse?: (text: string, flag: string) => unknown;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

/** Keeps the literal types of a spec (`required: true`, the schema's own type). */
export function defineOptions<const T extends OptionSpecs>(specs: T): T {
  return specs;
}

type RequiredKeys<T extends OptionSpecs> = { [K in keyof T]: T[K] extends { required: true } ? K : never }[keyof T];
type DefaultedKeys<T extends OptionSpecs> = { [K in keyof T]: T[K] extends { default: unknown } ? K : never }[keyof T];

/** The options a caller gives: required keys required, the rest optional. */
export type OptionsOf<T extends OptionSpecs> = { [K in RequiredKeys<T>]: Static<T[K]['schema']> } & {
  [K in Exclude<keyof T, RequiredKeys<T>>]?: Static<T[K]['schema']>;
};

type RecipeKeys<T extends OptionSpecs> = { [K in keyof T]: T[K] extends { recipe: true } ? K : never }[keyof T];

/** The keys of a stage's options that a recipe section takes (`recipe: true`), as a type. */
export type RecipeKeysOf<T extends OptionSpecs> = RecipeKeys<T> & string;

/** A recipe section as a type: the spec's recipe keys, required ones required. */
export type RecipeOptionsOf<T extends OptionSpecs> = Pick<OptionsOf<T>, RecipeKeys<T> & keyof OptionsOf<T>>;

/** Marks every option of a spec as a recipe key (a section that is all recipe, such as adapt's own keys). */
export function inRecipe<const T extends OptionSpecs>(specs: T): { [K in keyof T]: T[K] & { readonly recipe: true } } {
  return Object.fromEntries(Object.entries(specs).map(([k, v]) => [k, { ...v, recipe: true }])) as never;
}

/** Some of a spec's options (a command that takes only part of a library function's options). */
export function pickOptions<const T extends OptionSpecs, const K extends readonly (keyof T & string)[]>(specs: T, keys: K): Pick<T, K[number]> {
  return Object.fromEntries(keys.map((k) => [k, specs[k]])) as never;
}

/** The options with every default filled in. */
export type ResolvedOf<T extends OptionSpecs> = OptionsOf<T> & { [K in DefaultedKeys<T>]-?: Static<T[K]['schema']> };

/** A seed (a libtorch generator's or lep's own sampler's), at most MAX_SEED: a larger one is an error, not an alias. */
export const SEED_SCHEMA = Type.Integer({ minimum: 0, maximum: MAX_SEED });

/** `batchSize` -> `batch-size`. */
export const kebab = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

export function flagOf(key: string, spec: OptionSpec): string | undefined {
  return spec.flag === false ? undefined : `--${spec.flag ?? kebab(key)}`;
}

/** The defaults of a spec, as one object. */
export function defaultsOf<T extends OptionSpecs>(specs: T): { [K in DefaultedKeys<T>]: Static<T[K]['schema']> } {
  return Object.fromEntries(Object.entries(specs).filter(([, s]) => s.default !== undefined).map(([k, s]) => [k, s.default])) as never;
}

/** `options` with the spec's defaults under it (unset keys only). */
export function withDefaults<T extends OptionSpecs, O extends object>(specs: T, options: O): O & { [K in DefaultedKeys<T>]-?: Static<T[K]['schema']> } {
  const out: Record<string, unknown> = { ...defaultsOf(specs) };
  for (const [k, v] of Object.entries(options)) if (v !== undefined) out[k] = v;
  return out as never;
}

// ---- what a schema accepts, in words ------------------------------------------------------------------

const fmt = (n: number): string => String(n);

/** "a positive integer", "a number in [0, 1)", "\"f32\" or \"bf16\"": the `expected` of error messages. */
export function expectedOf(s: TSchema): string {
  // A schema whose words the type cannot give (a pattern) carries them as its title.
  if (typeof s.title === 'string') return s.title;
  if ('const' in s) return JSON.stringify(s.const);
  if (Array.isArray(s.anyOf)) return (s.anyOf as TSchema[]).map(expectedOf).join(' or ');
  switch (s.type) {
    case 'boolean':
      return 'true or false';
    case 'string':
      return s.minLength ? 'a non-empty string' : 'a string';
    case 'array':
      return `a ${s.minItems ? 'non-empty ' : ''}list of ${plural(expectedOf(s.items as TSchema))}`;
    case 'object':
      return 'an object';
    case 'integer':
    case 'number': {
      const what = s.type === 'integer' ? 'integer' : 'number';
      const lo = s.minimum as number | undefined, xlo = s.exclusiveMinimum as number | undefined;
      const hi = s.maximum as number | undefined, xhi = s.exclusiveMaximum as number | undefined;
      if (hi === undefined && xhi === undefined) {
        if (xlo === 0 || (lo === 1 && what === 'integer')) return `a positive ${what}`;
        if (lo === 0) return `a non-negative ${what}`;
        if (lo !== undefined) return `${what === 'integer' ? 'an' : 'a'} ${what} >= ${fmt(lo)}`;
        if (xlo !== undefined) return `${what === 'integer' ? 'an' : 'a'} ${what} > ${fmt(xlo)}`;
        return `${what === 'integer' ? 'an' : 'a'} ${what}`;
      }
      const left = lo !== undefined ? `[${fmt(lo)}` : xlo !== undefined ? `(${fmt(xlo)}` : '(-inf';
      const right = hi !== undefined ? `${fmt(hi)}]` : `${fmt(xhi!)})`;
      return `${what === 'integer' ? 'an' : 'a'} ${what} in ${left}, ${right}`;
    }
    default:
      return 'a valid value';
  }
}

function plural(x: string): string {
  return x.replace(/^an? (positive |non-negative |non-empty )?(\w+)/, (_, adj: string | undefined, noun: string) => `${adj ?? ''}${noun}s`);
}

// ---- validation ---------------------------------------------------------------------------------------

/**
 * Where values come from, for error messages: the API and the CLI name the option and its flag
 * (LEP_BAD_OPTION); a recipe names the key's path (LEP_BAD_RECIPE).
 */
export type Source = { kind: 'options' } | { kind: 'recipe'; section: string };

function hintOf(key: string, spec: OptionSpec): string {
  const def = spec.default !== undefined ? ` Defaults to ${showDefault(spec.default)}.` : spec.defaultDoc ? ` Defaults to ${spec.defaultDoc}.` : '';
  const flag = flagOf(key, spec);
  return `HINT: ${key}${flag ? ` (${flag})` : ''}: ${spec.doc}${def}`;
}

function badValue(source: Source, key: string, spec: OptionSpec, path: string, want: string, v: unknown): LepError {
  if (source.kind === 'recipe')
    return new LepError('LEP_BAD_RECIPE', `recipe.${path}: expected ${want}, got ${JSON.stringify(v)}\n${hintOf(key, spec)}`);
  const flag = flagOf(key, spec);
  return new LepError('LEP_BAD_OPTION', `Expected ${want} for ${path}${flag ? ` (${flag})` : ''} but received ${show(v)}\n${hintOf(key, spec)}`);
}

function show(v: unknown): string {
  if (v === undefined) return 'undefined';
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/**
 * Checks `v` against `schema`, descending into lists and objects so that the message names the innermost
 * wrong value (`methods[1]`, `lora.targets[0]`). Objects refuse unknown keys with the known ones as hint.
 */
export interface CheckHandlers {
  fail(path: string, want: string, v: unknown): never;
  unknownKey(path: string, known: string[]): never;
  missing(path: string): never;
}

export function checkValue(schema: TSchema, v: unknown, path: string, h: CheckHandlers): void {
  const ok: boolean = Value.Check(schema, v);
  if (ok) return;
  if (schema.type === 'array' && Array.isArray(v) && v.length >= ((schema.minItems as number | undefined) ?? 0)) {
    v.forEach((x, i) => checkValue(schema.items as TSchema, x, `${path}[${i}]`, h));
  } else if (schema.type === 'object' && schema.properties && typeof v === 'object' && v !== null && !Array.isArray(v)) {
    // (A record, with no named properties, is judged whole: its keys are the caller's, not unknown ones.)
    const props = (schema.properties ?? {}) as Record<string, TSchema>;
    for (const [k, x] of Object.entries(v)) {
      // Own keys only: "valueOf" or "constructor" would otherwise find Object.prototype's.
      const p = Object.hasOwn(props, k) ? props[k] : undefined;
      if (!p) h.unknownKey(`${path}.${k}`, Object.keys(props));
      if (x !== undefined) checkValue(p!, x, `${path}.${k}`, h);
    }
    for (const k of (schema.required as string[] | undefined) ?? []) if ((v as Record<string, unknown>)[k] === undefined) h.missing(`${path}.${k}`);
  } else if (Array.isArray(schema.anyOf)) {
    // A list-or-scalar union (e.g. a path or a list of paths) with a list given: name the wrong item.
    const list = (schema.anyOf as TSchema[]).find((s) => s.type === 'array');
    if (list && Array.isArray(v) && v.length > 0) checkValue(list, v, path, h);
  }
  h.fail(path, expectedOf(schema), v);
}

/**
 * Validates the given options of a stage against its spec: unknown keys are refused (typos), required
 * ones must be there, each value must fit its schema. Keys in `extra` are the stage's non-option fields
 * (callbacks, signals) and pass unchecked.
 */
export function checkOptions(specs: OptionSpecs, given: object, source: Source, extra: readonly string[] = []): void {
  // From plain JavaScript: null, a string or an array where the options object goes.
  if (typeof given !== 'object' || given === null || Array.isArray(given)) {
    if (source.kind === 'recipe') throw new LepError('LEP_BAD_RECIPE', `recipe.${source.section ?? ''}: expected an object, got ${JSON.stringify(given)}`);
    throw optionError('options', 'an object', given);
  }
  const options = given as Record<string, unknown>;
  const prefix = source.kind === 'recipe' && source.section ? `${source.section}.` : '';
  for (const [k, v] of Object.entries(options)) {
    const spec = Object.hasOwn(specs, k) ? specs[k] : undefined;
    if (!spec || (source.kind === 'recipe' && !spec.recipe)) {
      if (extra.includes(k)) continue;
      const known = Object.entries(specs).filter(([, s]) => source.kind !== 'recipe' || s.recipe).map(([n]) => n);
      if (source.kind === 'recipe') throw new LepError('LEP_BAD_RECIPE', `recipe.${prefix}${k}: unknown key\nHINT: the known keys of ${source.section} are ${[...known, ...extra].join(', ')}`);
      throw new LepError('LEP_BAD_OPTION', `unknown option ${k}\nHINT: the known options are ${known.join(', ')}`);
    }
    if (v === undefined) continue;
    checkValue(spec.schema, v, `${prefix}${k}`, {
      fail: (path, want, x) => {
        throw badValue(source, k, spec, path, want, x);
      },
      unknownKey: (path, known) => {
        const hint = `HINT: the known keys of ${path.replace(/\.[^.]*$/, '')} are ${known.join(', ')}`;
        throw source.kind === 'recipe' ? new LepError('LEP_BAD_RECIPE', `recipe.${path}: unknown key\n${hint}`) : new LepError('LEP_BAD_OPTION', `unknown option ${path}\n${hint}`);
      },
      missing: (path) => {
        throw new LepError(source.kind === 'recipe' ? 'LEP_BAD_RECIPE' : 'LEP_BAD_OPTION', `${source.kind === 'recipe' ? 'recipe.' : ''}${path} is required\n${hintOf(k, spec)}`);
      },
    });
  }
  for (const [k, spec] of Object.entries(specs)) {
    if (!spec.required || options[k] !== undefined || (source.kind === 'recipe' && !spec.recipe)) continue;
    if (source.kind === 'recipe') throw new LepError('LEP_BAD_RECIPE', `recipe.${prefix}${k} is required\n${hintOf(k, spec)}`);
    const flag = flagOf(k, spec);
    throw new LepError('LEP_BAD_OPTION', `missing ${k}${flag ? ` (${flag})` : ''}\n${hintOf(k, spec)}`);
  }
}

/**
 * How a message names an option: `recipe.init.ompK` in a recipe, `ompK (--omp-k)` elsewhere. For the checks
 * that involve several options at once (the spec checks one value at a time).
 */
export function nameIn(source: Source, key: string, spec: OptionSpec): string {
  if (source.kind === 'recipe') return `recipe.${source.section ? `${source.section}.` : ''}${key}`;
  const flag = flagOf(key, spec);
  return `${key}${flag ? ` (${flag})` : ''}`;
}

/** An error about a combination of options: LEP_BAD_RECIPE in a recipe, LEP_BAD_OPTION elsewhere. */
export function combinationError(source: Source, message: string, hint: string): LepError {
  return new LepError(source.kind === 'recipe' ? 'LEP_BAD_RECIPE' : 'LEP_BAD_OPTION', `${message}\nHINT: ${hint}`);
}

// ---- the command line ---------------------------------------------------------------------------------

type ParseArgsOption = { type: 'string' | 'boolean'; multiple?: boolean };

/**
 * A list the command line gives by repeating the flag (`--corpus a --corpus b`). A list with a `parse`
 * (a comma-separated one) may repeat too: each value is parsed and the lists joined.
 */
const repeatable = (s: OptionSpec): boolean => s.schema.type === 'array';

/** node:util parseArgs options for the spec's flags. */
export function cliFlags(specs: OptionSpecs): Record<string, ParseArgsOption> {
  const out: Record<string, ParseArgsOption> = {};
  for (const [k, s] of Object.entries(specs)) {
    const flag = flagOf(k, s);
    if (flag) out[flag.slice(2)] = repeatable(s) ? { type: 'string', multiple: true } : { type: s.schema.type === 'boolean' && !s.parse ? 'boolean' : 'string' };
  }
  return out;
}

/** The options given as flags, typed by the spec (a wrong number names the flag; bounds are checkOptions'). */
export function fromFlags(specs: OptionSpecs, values: Record<string, string | boolean | undefined>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, s] of Object.entries(specs)) {
    const flag = flagOf(k, s);
    const v = flag ? values[flag.slice(2)] : undefined;
    if (v === undefined) continue;
    if (s.parse && Array.isArray(v)) out[k] = (v as string[]).flatMap((x) => s.parse!(x, flag!) as unknown[]);
    else if (s.parse) out[k] = s.parse(String(v), flag!);
    else if (s.schema.type === 'boolean') out[k] = flag!.startsWith('--no-') ? !v : v;
    else if (s.schema.type === 'integer' || s.schema.type === 'number') {
      const n = Number(v);
      // Number('') is 0 and Number('0x10') 16: only plain decimal numbers count as numbers here.
      out[k] = v === '' || !/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(String(v).trim()) ? v : n;
    } else out[k] = v;
  }
  return out;
}

function argOf(s: OptionSpec): string {
  if (s.arg) return s.arg;
  if ('const' in s.schema) return '';
  if (Array.isArray(s.schema.anyOf) && (s.schema.anyOf as TSchema[]).every((x) => 'const' in x)) return (s.schema.anyOf as TSchema[]).map((x) => String(x.const)).join('|');
  switch (s.schema.type) {
    case 'integer':
      return 'N';
    case 'number':
      return 'X';
    case 'boolean':
      return '';
    default:
      return 'VALUE';
  }
}

/** 1e-4 rather than 0.0001. */
function showDefault(v: unknown): string {
  return typeof v === 'number' && v !== 0 && Math.abs(v) < 1e-3 ? v.toExponential() : String(v);
}

/** One help line per flag: the flag, its value, the doc and the default. */
export function helpLines(specs: OptionSpecs, width = 30): string[] {
  const lines: string[] = [];
  for (const [k, s] of Object.entries(specs)) {
    const flag = flagOf(k, s);
    if (!flag) continue;
    const head = `  ${flag}${argOf(s) ? ` ${argOf(s)}` : ''}`;
    const def = s.schema.type === 'boolean' && s.default !== undefined ? '' : s.default !== undefined ? ` (default ${showDefault(s.default)})` : s.defaultDoc ? ` (default ${s.defaultDoc})` : '';
    lines.push(`${head.padEnd(width)}${head.length >= width ? ' ' : ''}${s.required ? '(required) ' : ''}${s.doc}${def}`);
  }
  return lines;
}

// ---- JSON Schema --------------------------------------------------------------------------------------

/** The recipe section of a stage as a JSON Schema object: its recipe keys with docs and defaults. */
export function sectionSchema(specs: OptionSpecs, options: { doc?: string } = {}): TSchema {
  const props: Record<string, TSchema> = {};
  const required: string[] = [];
  for (const [k, s] of Object.entries(specs)) {
    if (!s.recipe) continue;
    const description = `${s.doc}${s.default === undefined && s.defaultDoc ? ` Defaults to ${s.defaultDoc}.` : ''}`;
    props[k] = { ...s.schema, description, ...(s.default !== undefined ? { default: s.default } : {}) };
    if (s.required) required.push(k);
  }
  const o = Type.Object({}, { additionalProperties: false, ...(options.doc ? { description: options.doc } : {}) });
  return { ...o, properties: props, ...(required.length ? { required } : {}) } as TSchema;
}

/** Enumerated strings: `oneOf('f32', 'bf16')`. */
export function oneOf<const T extends readonly string[]>(...xs: T) {
  return Type.Union(xs.map((x) => Type.Literal(x)) as never) as unknown as TSchema & { static: T[number] };
}

/** `--json`, the same on every command that produces data. */
export const JSON_FLAG = {
  schema: Type.Boolean(),
  doc: 'Print the result as one JSON document on stdout (progress stays on stderr).',
} as const satisfies OptionSpec;

/** The schema of an object holding some of a spec's options (a sub-section that reuses them). */
export function pickSchema(specs: OptionSpecs, keys: readonly string[], doc?: string): TSchema {
  const picked = Object.fromEntries(keys.map((k) => [k, { ...specs[k]!, recipe: true }]));
  return sectionSchema(picked, { doc });
}
