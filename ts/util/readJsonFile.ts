/** Reading a JSON file that an option names, with errors that name the option (CLI flags and option specs share it). */
import { readFileSync } from 'node:fs';

import { LepError } from '../errors.js';

/** The parsed JSON file a flag names, or a LepError that names both. */
export function readJsonFlag(file: string, flag: string, expected: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new LepError('LEP_BAD_OPTION', `cannot read ${flag} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\nHINT: ${flag} takes a file holding ${expected}.`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new LepError('LEP_BAD_OPTION', `${flag} ${file} is not valid JSON: ${(e as Error).message}\nHINT: ${flag} takes a file holding ${expected}.`);
  }
}
