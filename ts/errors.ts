import { isErrorCode, type ErrorCode } from './errorCodes.js';

export { ERROR_CODES, type ErrorCode } from './errorCodes.js';

/**
 * Errors lep raises. Every error has a stable `code` for programs and a message for people; where the
 * user can fix the cause, the message ends with a `HINT:` line.
 */
export class LepError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LepError';
    this.code = code;
  }
}

/**
 * The one message template for invalid options: names the option and its CLI flag.
 * "Expected {expected} for {name} (--flag) but received {actual}", then "HINT: {hint}" when given.
 */
export function optionError(name: string, expected: string, actual: unknown, flag?: string, hint?: string): LepError {
  const where = flag ? `${name} (${flag})` : name;
  return new LepError('LEP_BAD_OPTION', `Expected ${expected} for ${where} but received ${describe(actual)}${hint ? `\nHINT: ${hint}` : ''}`);
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') return String(v);  // NaN and Infinity, which JSON writes as null
  if (v === undefined) return 'undefined';
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/**
 * A native error as a LepError carrying the caller's stack (`site`, captured before the native call,
 * sharp's pattern) and the native `code`. Other values pass through unchanged.
 */
export function fromNative(e: unknown, site: Error): unknown {
  // Node's own file-system errors (a numeric errno; thrown by a JS callback the job called) keep their
  // path and code: they were LEP_NATIVE "ENOSPC: ENOSPC: no space left on device, write".
  if (e instanceof Error && !(e instanceof LepError) && typeof (e as { code?: unknown }).code === 'string' && typeof (e as { errno?: unknown }).errno !== 'number') {
    const code = (e as unknown as { code: string }).code;
    // A code outside the union would be a native code missing from errorCodes.ts (its test says which).
    const err = new LepError(isErrorCode(code) ? code : 'LEP_NATIVE', isErrorCode(code) ? e.message : `${code}: ${e.message}`);
    err.stack = `${err.name} [${err.code}]: ${e.message}\n${site.stack?.split('\n').slice(1).join('\n') ?? ''}`;
    return err;
  }
  return e;
}

/** Awaits a native promise, re-throwing its rejection with the caller's stack. */
export function withCallerStack<T>(promise: Promise<T>): Promise<T> {
  const site = new Error();
  return promise.catch((e: unknown) => {
    throw fromNative(e, site);
  });
}

/** Runs a synchronous native call, re-throwing its error with the caller's stack. */
export function callNative<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw fromNative(e, new Error());
  }
}
