/**
 * Before a command writes a single output file: its folder exists and can be written (or a named error,
 * before the work: data pack tokenised a whole corpus, then met a read-only folder), temporaries of that
 * file left by dead processes are removed, and this process's temporary name (`OUT.tmp-PID`, the name the
 * native writers use too) is tracked so that an interrupted command removes it, until the returned function
 * is called once the file is written or given up (a `finally`).
 */
import { accessSync, constants, statSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';

import { LepError } from '../errors.js';

import { nearestExisting } from './freeBytes.js';
import { makeDirs } from './makeDirs.js';
import { removeOrphanTemps, tempPathFor, trackTemp, untrackTemp } from './tempPaths.js';

/**
 * Throws LEP_BAD_OUTPUT unless `dir`, or the nearest of its ancestors that exists, can be written: a
 * read-only file system or a folder without permission, named before the work rather than after it.
 */
export function checkWritable(dir: string, flag: string, out: string): void {
  const at = nearestExisting(dir);
  try {
    accessSync(at, constants.W_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new LepError(
      'LEP_BAD_OUTPUT',
      `${flag} ${out}: its folder ${at} cannot be written (${code})` +
        `\nHINT: ${code === 'EROFS' ? 'it is on a read-only file system: choose' : 'give this user write permission there, or choose'} another ${flag}.`,
    );
  }
}

export function prepareFileOutput(out: string, flag: string): () => void {
  const path = resolve(out);
  // Else the work runs to its end and the final rename fails.
  if (statSync(path, { throwIfNoEntry: false })?.isDirectory())
    throw new LepError('LEP_BAD_OUTPUT', `${flag} ${out} is a directory; this output is a file\nHINT: give the file's own path (a new name in that directory, say).`);
  makeDirs(dirname(path), flag, out);
  checkWritable(dirname(path), flag, out);
  removeOrphanTemps(dirname(path), `${basename(path)}.`);
  const tmp = tempPathFor(path);
  trackTemp(tmp);
  let released = false;
  return () => {
    if (!released) untrackTemp(tmp);
    released = true;
  };
}
