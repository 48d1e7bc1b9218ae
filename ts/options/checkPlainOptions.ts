/**
 * The options of the few calls too small for an option spec (Tokenizer.encode/decode, LepModel.score):
 * a misspelt key or a value of the wrong type is a LEP_BAD_OPTION, as in every spec-checked call, instead
 * of being ignored.
 */
import { optionError } from '../errors.js';

type TypeName = 'boolean' | 'number' | 'function' | 'object';

/** Throws LEP_BAD_OPTION for a key of `options` outside `known`, or a value whose `typeof` is not the one listed. */
export function checkPlainOptions(options: unknown, known: Record<string, TypeName>, where: string): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw optionError(`${where} options`, 'an object', options);
  for (const [key, value] of Object.entries(options)) {
    if (!(key in known)) throw optionError(`${where} options`, `only ${Object.keys(known).join(', ')}`, key, undefined, `"${key}" is not an option of ${where}.`);
    if (value !== undefined && (typeof value !== known[key] || value === null)) throw optionError(key, `a ${known[key]}`, value);
  }
}
