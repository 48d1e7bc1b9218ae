/**
 * Before a command writes a single output file: its folder exists (or a named error), temporaries of that
 * file left by dead processes are removed, and this process's temporary name (`OUT.tmp-PID`, the name the
 * native writers use too) is tracked so that an interrupted command removes it.
 */
import { statSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';

import { LepError } from '../errors.js';

import { makeDirs } from './makeDirs.js';
import { removeOrphanTemps, tempPathFor, trackTemp } from './tempPaths.js';

export function prepareFileOutput(out: string, flag: string): void {
  const path = resolve(out);
  // Else the work runs to its end and the final rename fails.
  if (statSync(path, { throwIfNoEntry: false })?.isDirectory())
    throw new LepError('LEP_BAD_OUTPUT', `${flag} ${out} is a directory; this output is a file\nHINT: give the file's own path (a new name in that directory, say).`);
  makeDirs(dirname(path), flag, out);
  removeOrphanTemps(dirname(path), `${basename(path)}.`);
  trackTemp(tempPathFor(path));
}
