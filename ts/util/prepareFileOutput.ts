/**
 * Before a command writes a single output file: its folder exists (or a named error), temporaries of that
 * file left by dead processes are removed, and this process's temporary name (`OUT.tmp-PID`, the name the
 * native writers use too) is tracked so that an interrupted command removes it.
 */
import { basename, dirname, resolve } from 'node:path';

import { makeDirs } from './makeDirs.js';
import { removeOrphanTemps, tempPathFor, trackTemp } from './tempPaths.js';

export function prepareFileOutput(out: string, flag: string): void {
  const path = resolve(out);
  makeDirs(dirname(path), flag, out);
  removeOrphanTemps(dirname(path), `${basename(path)}.`);
  trackTemp(tempPathFor(path));
}
