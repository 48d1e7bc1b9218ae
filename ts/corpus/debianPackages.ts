/**
 * Debian packages fetched without installing them: `apt-get download` into a cache folder, `dpkg -x`
 * into another, `dpkg-deb -f` for the version. `apt-get update` runs only when a download fails because
 * the package lists are missing or stale. Nothing is installed and no system state changes beyond apt's
 * own lists.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { forkWhenIdle } from '../binding/forkWhenIdle.js';
import { tempPathFor, trackTemp, untrackTemp } from '../util/tempPaths.js';
import { LepError } from '../errors.js';

const run = promisify(execFile);

export interface DebInfo {
  package: string;
  version: string;
  architecture: string;
  /** The `.deb` file. */
  file: string;
}

async function tool(cmd: string, args: string[], cwd?: string): Promise<{ stdout: string; stderr: string }> {
  try {
    return await forkWhenIdle(() => run(cmd, args, { cwd, maxBuffer: 64 << 20, env: { ...process.env, LC_ALL: 'C' } }));
  } catch (e) {
    const x = e as NodeJS.ErrnoException & { stderr?: string; stdout?: string };
    if (x.code === 'ENOENT') {
      throw new LepError('LEP_CORPUS_FETCH', `${cmd} was not found\nHINT: corpus fetching needs a Debian or Ubuntu system with apt-get and dpkg`);
    }
    throw Object.assign(new Error(`${cmd} ${args.join(' ')} failed: ${(x.stderr || x.message).trim()}`), { stderr: x.stderr ?? '' });
  }
}

/** The cached `.deb` of a package in `debDir`, if there is one (apt names them `PKG_VERSION_ARCH.deb`). */
export function cachedDeb(debDir: string, pkg: string): string | undefined {
  if (!existsSync(debDir)) return undefined;
  const found = readdirSync(debDir)
    .filter((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'))
    .sort();
  return found.length ? join(debDir, found[found.length - 1]!) : undefined;
}

const NO_LISTS = /Unable to locate package|has no installation candidate|Can't select candidate version|No packages found|404\s+Not Found/i;

/**
 * Makes sure `debDir` holds a `.deb` of every package, downloading the missing ones in one
 * `apt-get download` call (the archive's current candidate version). Returns them with their fields.
 */
export async function downloadDebs(pkgs: readonly string[], debDir: string, log: (msg: string) => void = () => {}): Promise<DebInfo[]> {
  mkdirSync(debDir, { recursive: true });
  const missing = pkgs.filter((p) => !cachedDeb(debDir, p));
  if (missing.length) {
    log(`apt-get download ${missing.join(' ')}`);
    try {
      await tool('apt-get', ['download', ...missing], debDir);
    } catch (e) {
      if (!NO_LISTS.test((e as { stderr?: string }).stderr ?? '')) throw fetchError(missing, e);
      log('apt-get download failed for lack of package lists; running apt-get update');
      try {
        await tool('apt-get', ['update']);
        await tool('apt-get', ['download', ...missing], debDir);
      } catch (e2) {
        throw fetchError(missing, e2);
      }
    }
  }
  const out: DebInfo[] = [];
  for (const p of pkgs) {
    const file = cachedDeb(debDir, p);
    if (!file) throw fetchError([p], new Error('apt-get download reported success but left no .deb'));
    out.push(await debInfo(file));
    if (out[out.length - 1]!.package !== p) throw new LepError('LEP_CORPUS_FETCH', `${file} holds package "${out[out.length - 1]!.package}", not "${p}"`);
  }
  return out;
}

function fetchError(pkgs: string[], cause: unknown): LepError {
  return new LepError(
    'LEP_CORPUS_FETCH',
    `could not download ${pkgs.join(', ')}: ${(cause as Error).message}\n` +
      'HINT: the machine must reach the Debian archive (deb.debian.org); as root, `apt-get update` refreshes the package lists',
    { cause },
  );
}

/** Package, version and architecture of a `.deb`, from its control file. */
export async function debInfo(file: string): Promise<DebInfo> {
  const { stdout } = await tool('dpkg-deb', ['-f', file, 'Package', 'Version', 'Architecture']);
  const f: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
    if (m) f[m[1]!] = m[2]!.trim();
  }
  if (!f.Package || !f.Version) throw new LepError('LEP_CORPUS_FETCH', `dpkg-deb could not read the control fields of ${file}`);
  return { package: f.Package, version: f.Version, architecture: f.Architecture ?? '', file };
}

/**
 * Unpacks a `.deb` with `dpkg -x` into `extractDir/PKG_VERSION` (made atomically through a temporary
 * folder) unless it is there already; returns that folder.
 */
export async function extractDeb(deb: DebInfo, extractDir: string): Promise<string> {
  const dest = join(extractDir, `${deb.package}_${deb.version.replace(/[^A-Za-z0-9.+~-]/g, '_')}`);
  if (existsSync(dest)) return dest;
  mkdirSync(extractDir, { recursive: true });
  const tmp = tempPathFor(dest);
  rmSync(tmp, { recursive: true, force: true });
  trackTemp(tmp);
  try {
    await tool('dpkg', ['-x', deb.file, tmp]);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    untrackTemp(tmp);
    throw new LepError('LEP_CORPUS_FETCH', `dpkg -x ${deb.file} failed: ${(e as Error).message}\nHINT: delete the file and run again to download it afresh`, { cause: e });
  }
  try {
    renameSync(tmp, dest);
  } catch (e) {
    // Another process unpacked the same package meanwhile: keep its copy.
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(dest)) throw e;
  } finally {
    untrackTemp(tmp);
  }
  return dest;
}
