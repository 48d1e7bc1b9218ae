import { LepError, optionError } from '../errors.js';

/**
 * Throws LEP_BAD_TOKEN unless every id of `ids` is an integer in [0, vocab): native code and the Rust
 * tokenizer would otherwise truncate 1.5 to 1, NaN to 0 and 2^32 + 5 to 5, or decode nothing for -1.
 * `name` says where the ids came from (`sequences[2]`).
 */
export function checkTokenIds(ids: ArrayLike<number>, vocab: number, name: string): void {
  if (!ids || typeof ids !== 'object' || typeof ids.length !== 'number') throw optionError(name, 'an array of token ids', ids);
  for (let j = 0; j < ids.length; j++) {
    const id = ids[j]!;
    if (!Number.isInteger(id) || id < 0 || id >= vocab)
      throw new LepError(
        'LEP_BAD_TOKEN',
        `${name}[${j}]: token id ${String(id)} is ${!Number.isInteger(id) ? `not an integer (ids are integers from 0 to ${vocab - 1})` : vocab === 2 ** 32 ? 'not a token id (an integer from 0 to 2^32 - 1)' : `outside the vocabulary (size ${vocab})`}` +
          '\nHINT: encode text with the model\'s own tokenizer.',
      );
  }
}
