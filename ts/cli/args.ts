/** Shared CLI argument helpers over node:util parseArgs. */
import { parseArgs, type ParseArgsConfig } from 'node:util';

import { LepError, optionError } from '../errors.js';
import { checkDevice } from '../util/device.js';

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface Parsed {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

export function parse(argv: string[], options: Options, usage: string): Parsed {
  try {
    const r = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    return { values: r.values as Parsed['values'], positionals: r.positionals };
  } catch (e) {
    // Node's message, then a hint: its "ambiguous" one is a value that starts with a dash (--steps -3).
    throw new LepError('LEP_BAD_OPTION', `${(e as Error).message}\nHINT: the flags are listed below; a value that starts with a dash goes as --flag=VALUE.\n\n${usage}`);
  }
}

export function intFlag(v: unknown, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw optionError(flag.replace(/^--/, ''), 'an integer', v, flag);
  return n;
}

export function numFlag(v: unknown, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw optionError(flag.replace(/^--/, ''), 'a number', v, flag);
  return n;
}

export function required(v: string | undefined, flag: string, usage: string): string {
  if (v === undefined || v === '') throw new LepError('LEP_BAD_OPTION', `missing ${flag}\n\n${usage}`);
  return v;
}

/** A terminal progress line (stderr), or nothing when stderr is not a TTY. */
export function progressLine(label: string): (e: { done: number; total: number }) => void {
  if (!process.stderr.isTTY) return () => {};
  return (e) => {
    const width = 30;
    const done = e.total > 0 ? Math.min(1, e.done / e.total) : 0;
    const bar = '#'.repeat(Math.round(done * width)).padEnd(width, '.');
    process.stderr.write(`\r${label} [${bar}] ${e.done}/${e.total}${done >= 1 ? '\n' : ''}`);
  };
}

/** `--device`: cpu, cuda or cuda:N (checked here, before a model is loaded). */
export function deviceFlag(v: unknown, flag = '--device'): string | undefined {
  if (v === undefined) return undefined;
  return checkDevice(v, flag.replace(/^--/, ''), flag);
}

export { readJsonFlag } from '../util/readJsonFile.js';

/** `--json`: the command's result as one JSON document on stdout (progress and notes stay on stderr). */
export function printJson(result: unknown): void {
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}
