/**
 * lep's per-user cache folder: `$XDG_CACHE_HOME/lep`, else `~/.cache/lep` (the XDG base-directory rule).
 * For what an installed lep keeps between runs; an installed package's own folder may be read-only and is
 * replaced by every `npm install`, so nothing is written there.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

export function userCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'lep');
}
