/**
 * One ErrorCode union (ts/errorCodes.ts) for TS and the native addons: every code the C++ source can
 * throw, and every code the TS source writes, is in it (TS's own are also checked by the compiler through
 * LepError's constructor; this test catches a native code added without its TS name).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { asErrorCode, ERROR_CODES, isErrorCode } from '../../ts/errorCodes.js';
import { fromNative, LepError } from '../../ts/errors.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');

function sourceFiles(dir: string, ext: RegExp): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && ext.test(e.name))
    .map((e) => join(e.parentPath, e.name));
}

/** "LEP_X" string literals, leaving out environment variable names (getenv / process.env lines). */
function codesIn(files: string[], literal: RegExp): Map<string, string> {
  const found = new Map<string, string>();
  for (const f of files)
    readFileSync(f, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (/getenv\(|process\.env/.test(line)) return;
        for (const m of line.matchAll(literal)) if (!found.has(m[1]!)) found.set(m[1]!, `${f.slice(ROOT.length + 1)}:${i + 1}`);
      });
  return found;
}

test('every code the C++ addons throw is in the ErrorCode union', (t) => {
  const cpp = codesIn(sourceFiles('cpp', /\.(h|cpp)$/), /"(LEP_[A-Z0-9_]+)"/g);
  t.true(cpp.size > 30, `${cpp.size} codes found in cpp/`);
  const missing = [...cpp].filter(([code]) => !isErrorCode(code)).map(([code, at]) => `${code} (${at})`);
  t.deepEqual(missing, [], 'add these to ts/errorCodes.ts');
});

test('every code the TS source writes is in the union, and the union has no code twice or unused', (t) => {
  const ts = codesIn([...sourceFiles('ts', /\.ts$/), ...sourceFiles('scripts', /\.ts$/)], /['`](LEP_[A-Z0-9_]+)['`$]/g);
  t.deepEqual([...ts].filter(([code]) => !isErrorCode(code)).map(([code, at]) => `${code} (${at})`), []);
  t.is(new Set(ERROR_CODES).size, ERROR_CODES.length);
  const cpp = codesIn(sourceFiles('cpp', /\.(h|cpp)$/), /"(LEP_[A-Z0-9_]+)"/g);
  t.deepEqual(ERROR_CODES.filter((c) => !ts.has(c) && !cpp.has(c)), [], 'codes nothing raises');
});

test('one code for an empty corpus; a native error with an unknown code stays a LepError', (t) => {
  t.true(isErrorCode('LEP_CORPUS_EMPTY'));
  t.false(isErrorCode('LEP_EMPTY_CORPUS'));
  t.is(asErrorCode('LEP_SOMETHING_NEW'), 'LEP_NATIVE');
  const native = Object.assign(new Error('boom'), { code: 'LEP_SOMETHING_NEW' });
  const e = fromNative(native, new Error()) as LepError;
  t.true(e instanceof LepError);
  t.is(e.code, 'LEP_NATIVE');
  t.regex(e.message, /^LEP_SOMETHING_NEW: boom$/);
});
