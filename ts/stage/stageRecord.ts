/**
 * The one record every stage writes into its output: `lep-stage.json`, a versioned JSON document that
 * says which stage ran, with which lep, when and for how long, on which inputs (with fingerprints), with
 * which resolved options, and what it produced. It is written last and atomically (temporary name, fsync,
 * rename; inside a directory that is itself renamed into place where the stage builds one aside), so a
 * directory holding a valid record is a finished stage, and one without is not.
 *
 * The schema is a TypeBox object, so the same object validates a record on read (`readStageRecord`), types
 * it (`StageRecord`) and is the JSON Schema that other tools read (docs/stage-record.schema.json,
 * generated from it by scripts/write-generated.ts).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

import { listCorpusFiles } from '../corpus/listCorpusFiles.js';
import { LepError } from '../errors.js';
import { lepVersion } from '../runtime.js';
import { writeJsonAtomic } from '../util/atomicWrite.js';
import { dirFingerprint, fileFingerprint, filesFingerprint } from './inputFingerprint.js';

/** The record's file name in a stage's output directory. */
export const STAGE_RECORD_FILE = 'lep-stage.json';
export const STAGE_RECORD_SCHEMA = 'lep.stage-record';
/** Raised when a field changes meaning or is removed; new optional fields keep the version. */
export const STAGE_RECORD_VERSION = 1;

/**
 * Stages that write a record: `tokenizer` is lep tokenizer train, `extend` and `shrink` lep tokenizer
 * extend and shrink (with or without a donor); `data` and `adapt` are `lep adapt`'s own: its packing stage
 * and the whole run.
 */
export const RECORDED_STAGES = ['tokenizer', 'extend', 'shrink', 'init', 'data', 'train', 'propagate', 'calibrate', 'eval', 'adapt'] as const;
export type RecordedStage = (typeof RECORDED_STAGES)[number];

const StageInputSchema = Type.Object(
  {
    role: Type.String({ minLength: 1, description: 'What the stage read it as: model, tokenizer, data, corpus, …' }),
    path: Type.String({ minLength: 1, description: 'Absolute path when the stage ran.' }),
    fingerprint: Type.String({
      minLength: 1,
      description: 'Size and SHA-256 of the first and last MiB of each file (ts/stage/inputFingerprint.ts); a directory: of each file at its top level.',
    }),
  },
  { additionalProperties: false },
);

export const StageRecordSchema = Type.Object(
  {
    schema: Type.Literal(STAGE_RECORD_SCHEMA),
    version: Type.Literal(STAGE_RECORD_VERSION),
    stage: Type.Union(RECORDED_STAGES.map((s) => Type.Literal(s))),
    lepVersion: Type.String({ minLength: 1 }),
    startedAt: Type.String({ pattern: '^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?Z$', description: 'ISO 8601, UTC.' }),
    seconds: Type.Number({ minimum: 0, description: 'Wall-clock seconds from the start to the record.' }),
    inputs: Type.Array(StageInputSchema),
    resolved: Type.Record(Type.String(), Type.Unknown(), { description: "The stage's options with every default filled in (what ran)." }),
    result: Type.Unknown({ description: "The stage's result, as its function returns it." }),
    tags: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description: "What the caller attached to the run (the stage function's `tags` option): lep adapt keeps here the recipe section each stage ran with, and compares it when it resumes.",
      }),
    ),
  },
  {
    title: 'lep stage record',
    description: 'What one lep stage ran on, with which options, and what it produced (lep-stage.json in its output).',
  },
);

export type StageInput = Static<typeof StageInputSchema>;
export type StageRecord = Static<typeof StageRecordSchema>;

/** The JSON Schema of a record (docs/stage-record.schema.json). */
export function stageRecordSchema(): TSchema {
  return { $schema: 'http://json-schema.org/draft-07/schema#', ...StageRecordSchema } as TSchema;
}

/** A stage under way: `beginStage` when it starts, `writeStageRecord` when it is done. */
export interface StageStart {
  stage: RecordedStage;
  startedAt: Date;
}

export function beginStage(stage: RecordedStage): StageStart {
  return { stage, startedAt: new Date() };
}

/** One input with its fingerprint (a file, or a directory's top-level files). */
export function stageInput(role: string, path: string): StageInput {
  const p = resolve(path);
  const fingerprint = statSync(p).isDirectory() ? dirFingerprint(p, [STAGE_RECORD_FILE]) : fileFingerprint(p);
  return { role, path: p, fingerprint };
}

/** The tokenizer files lep reads from a tokenizer or model directory (Tokenizer.fromDir). */
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json'];

/**
 * A tokenizer directory as an input: fingerprinted over its tokenizer files only, so a model directory's
 * weights (which a tokenizer stage does not read) neither cost reads nor change the fingerprint.
 */
export function tokenizerInput(role: string, dir: string): StageInput {
  const p = resolve(dir);
  return { role, path: p, fingerprint: filesFingerprint(TOKENIZER_FILES.map((f) => join(p, f)).filter((f) => existsSync(f))) };
}

/** A corpus as inputs: one per spec (a file, a directory or a glob), over the files it names. */
export async function corpusInputs(role: string, specs: string | readonly string[]): Promise<StageInput[]> {
  const out: StageInput[] = [];
  for (const spec of typeof specs === 'string' ? [specs] : specs) out.push({ role, path: resolve(spec), fingerprint: filesFingerprint(await listCorpusFiles(spec)) });
  return out;
}

/**
 * Whether an input a record lists still has its fingerprint: the same bytes at the same path (read again
 * the way the stage read it: a file, a directory's top-level files, a tokenizer's files, or a corpus
 * spec's files; the record does not say which, so each way that applies is tried, and any match means
 * the same content). A path that is gone, or names nothing now, has changed.
 */
export async function inputUnchanged(input: StageInput): Promise<boolean> {
  const st = statSync(input.path, { throwIfNoEntry: false });
  const ways: (() => Promise<string> | string)[] = st?.isFile()
    ? [() => fileFingerprint(input.path), async () => filesFingerprint(await listCorpusFiles(input.path))]
    : st?.isDirectory()
      ? [() => dirFingerprint(input.path, [STAGE_RECORD_FILE]), () => tokenizerInput(input.role, input.path).fingerprint, async () => filesFingerprint(await listCorpusFiles(input.path))]
      : [async () => filesFingerprint(await listCorpusFiles(input.path))];
  for (const way of ways) {
    try {
      if ((await way()) === input.fingerprint) return true;
    } catch {
      // This way does not apply (no file matches the spec, a file cannot be read): try the next.
    }
  }
  return false;
}

/**
 * A value as JSON keeps it, without what is not data: callbacks, AbortSignals and undefined go, typed
 * arrays become arrays, non-finite numbers become null (as JSON.stringify would).
 */
function plain(v: unknown): unknown {
  return JSON.parse(
    JSON.stringify(v, (_k, x: unknown) => {
      if (typeof x === 'function' || (typeof AbortSignal !== 'undefined' && x instanceof AbortSignal)) return undefined;
      if (ArrayBuffer.isView(x) && !(x instanceof DataView)) return Array.from(x as unknown as ArrayLike<number>);
      return x;
    }) ?? 'null',
  ) as unknown;
}

/**
 * What every stage function takes besides its own options: `tags`, JSON data the caller attaches to the
 * stage's record (a job id, a sweep's coordinates). lep adapt tags each stage with the recipe section it
 * ran with and reads it back to decide what a resumed run can keep. Tags are not options: they change
 * nothing the stage does.
 */
export interface StageTagOptions {
  tags?: Record<string, unknown>;
}

export interface StageRecordBody {
  inputs: StageInput[];
  resolved: object;
  result: unknown;
  tags?: Record<string, unknown>;
}

/**
 * Writes the record of a finished stage into `dir` (atomically); call it after everything else the stage
 * writes. Returns the record.
 */
export function writeStageRecord(dir: string, start: StageStart, body: StageRecordBody): StageRecord {
  return writeStageRecordFile(join(dir, STAGE_RECORD_FILE), start, body);
}

/** `writeStageRecord` to a file of another name (a stage whose output is a file: `lep eval --out`). */
export function writeStageRecordFile(file: string, start: StageStart, body: StageRecordBody): StageRecord {
  const record: StageRecord = {
    schema: STAGE_RECORD_SCHEMA,
    version: STAGE_RECORD_VERSION,
    stage: start.stage,
    lepVersion: lepVersion(),
    startedAt: start.startedAt.toISOString(),
    seconds: Math.max(0, (Date.now() - start.startedAt.getTime()) / 1000),
    inputs: body.inputs,
    resolved: plain(body.resolved) as Record<string, unknown>,
    result: plain(body.result),
    ...(body.tags === undefined ? {} : { tags: plain(body.tags) as Record<string, unknown> }),
  };
  const bad = Value.Errors(StageRecordSchema, record).First();
  if (bad) throw new LepError('LEP_INTERNAL', `the ${start.stage} stage made an invalid record: ${bad.path || '/'} ${bad.message}`);
  writeJsonAtomic(file, record);
  return record;
}

/**
 * The record in `dirOrFile` (a stage's output directory, or a record file), validated. `expect` names the
 * stage it must be. Errors name the file and say what to do: LEP_NO_STAGE_RECORD (none there: the stage
 * did not finish, or an older lep wrote the output), LEP_BAD_STAGE_RECORD (not JSON, not a record, a
 * field wrong, another stage's), LEP_STAGE_RECORD_VERSION (written by a newer lep).
 */
export function readStageRecord(dirOrFile: string, expect?: RecordedStage): StageRecord {
  const p = resolve(dirOrFile);
  const file = existsSync(p) && statSync(p).isDirectory() ? join(p, STAGE_RECORD_FILE) : p;
  const bad = (message: string, hint: string) => new LepError('LEP_BAD_STAGE_RECORD', `${file}: ${message}\nHINT: ${hint}`);
  const rerun = `run the stage again to rewrite ${STAGE_RECORD_FILE} (it is written last, when the stage is done).`;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new LepError(
        'LEP_NO_STAGE_RECORD',
        `${file}: no stage record${expect ? ` of the ${expect} stage` : ''}\nHINT: the stage that writes this output did not finish (or an older lep wrote it, which kept no ${STAGE_RECORD_FILE}): ${rerun}`,
      );
    throw bad(`cannot read the stage record (${code ?? (e as Error).message})`, 'check the file\'s permissions.');
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw bad(`the stage record is not valid JSON (${(e as Error).message})`, rerun);
  }
  const o = (typeof v === 'object' && v !== null && !Array.isArray(v) ? v : {}) as Record<string, unknown>;
  if (o.schema !== STAGE_RECORD_SCHEMA) throw bad(`not a lep stage record (its "schema" is ${JSON.stringify(o.schema)}, not "${STAGE_RECORD_SCHEMA}")`, rerun);
  if (typeof o.version === 'number' && o.version > STAGE_RECORD_VERSION)
    throw new LepError(
      'LEP_STAGE_RECORD_VERSION',
      `${file}: the stage record has version ${o.version}, written by a newer lep (${String(o.lepVersion)}); this lep (${lepVersion()}) reads version ${STAGE_RECORD_VERSION}\nHINT: upgrade lep, or run the stage again with this one.`,
    );
  const err = Value.Errors(StageRecordSchema, v).First();
  if (err) throw bad(`the stage record is invalid at ${err.path || '/'}: ${err.message}`, rerun);
  const record = v as StageRecord;
  if (expect && record.stage !== expect) throw bad(`this is the record of the ${record.stage} stage, not of ${expect}`, `give the output directory of the ${expect} stage.`);
  return record;
}
