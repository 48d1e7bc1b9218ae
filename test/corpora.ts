/**
 * The Debian corpora for tests, fetched once into the project's .cache/corpora (the same place
 * `lep corpora fetch` uses) and shared by test files, which ava runs in parallel processes: a lock
 * directory makes the first process fetch while the others wait for it.
 */
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { fetchCorpora } from '../ts/index.js';

export const CORPORA = join(import.meta.dirname, '..', '..', '.cache', 'corpora');

export async function corpora(): Promise<Record<string, string>> {
  const lock = `${CORPORA}.lock`;
  mkdirSync(join(CORPORA, '..'), { recursive: true });
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // A lock older than 10 minutes belongs to a process that died: take it over.
      if (Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now()) > 600_000) rmSync(lock, { recursive: true, force: true });
      await sleep(200);
    }
  }
  try {
    return (await fetchCorpora({ cacheDir: CORPORA })).files;
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}
