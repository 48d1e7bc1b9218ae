/**
 * The one check every command runs on its output path before it writes anything: the output must not be
 * a dangling symbolic link, and must not be, lie inside, or contain any of the command's inputs (a
 * directory output is replaced as a whole, so an input inside it would be deleted; a file output inside
 * an input directory would be read back as input by the next run). Training's output is the one written
 * into rather than replaced (checkpoints, a log, the model's files beside them): it may hold inputs in
 * subdirectories of its own (`into`).
 */
import { lstatSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';

import { LepError, optionError } from '../errors.js';
import { globCouldReach, isGlob, splitGlob } from './globPattern.js';

/** Input paths of a command by the flag (or positional name) they came from; a corpus input may be a glob. */
export type CommandInputs = Record<string, string | readonly string[] | undefined>;

/** The real path of `p` (symbolic links resolved), for paths that do not exist yet too. */
function realPath(p: string): string {
  const abs = resolve(p);
  const rest: string[] = [];
  let at = abs;
  for (;;) {
    try {
      return join(realpathSync(at), ...rest.reverse());
    } catch {
      const up = dirname(at);
      if (up === at) return abs;
      rest.push(basename(at));
      at = up;
    }
  }
}

const inside = (child: string, parent: string): boolean => {
  const r = relative(parent, child);
  // `..x` is a name inside parent; only `..` itself or `../...` leaves it.
  return r !== '' && r !== '..' && !r.startsWith(`..${sep}`) && !isAbsolute(r);
};

/**
 * How `realOut` overlaps one input, if it does. A glob's files are what it matches: an output that is or
 * contains the glob's fixed root holds them, one below the root overlaps only where the pattern could
 * reach it or a file in it (`--corpus '*.txt' --out tok` is fine: `*.txt` never reads tok/).
 */
function overlap(out: string, realOut: string, input: string, shape: OutputShape | undefined): string | undefined {
  const into = typeof shape === 'object' ? shape : undefined;
  const kind = shape === undefined ? undefined : shape === 'file' ? 'file' : 'folder';
  if (!isGlob(input)) {
    const realIn = realPath(input);
    if (into && inSubdirectory(realIn, realOut, into)) return undefined;
    return realOut === realIn ? 'is' : inside(realOut, realIn) ? 'is inside' : inside(realIn, realOut) ? 'contains' : undefined;
  }
  const { root, rest } = splitGlob(input);
  const realRoot = realPath(root);
  if (into && inSubdirectory(realRoot, realOut, into)) return undefined;
  if (realOut === realRoot || inside(realRoot, realOut)) return 'contains';
  // The pattern is matched on the paths as listing walks them (through linked folders: `data/latest` ->
  // v2 is listed as data/latest/...) and as they resolve. Listing yields files only, so `--corpus 'data/*'
  // --out data/tok` is fine for a folder output (data/tok/* is one level too deep) and refused for a file.
  const reaches = (o: string, r: string): boolean => inside(o, r) && globCouldReach(rest, relative(r, o).split(sep), kind);
  if (reaches(realOut, realRoot) || reaches(resolve(out), resolve(root))) return 'falls under';
  return undefined;
}

/**
 * What an output is, where a corpus glob may reach it: a `'file'`, a `'folder'` (replaced whole), or a
 * folder written into (`WrittenInto`). Left out, it may be either, and a glob that could reach it as
 * either refuses it.
 */
export type OutputShape = 'file' | 'folder' | WrittenInto;

/**
 * An output directory the command writes into, never replaces: `ownSubdirs` are the subdirectories it
 * writes (an input there would be overwritten or removed); its top level holds the files it writes.
 */
export interface WrittenInto {
  ownSubdirs: readonly string[];
}

/**
 * Whether `realIn` lies in a subfolder of `realOut` that the command does not write: its first segment is
 * a folder (it has more below it, or is an existing folder), not a name at OUT's top level.
 */
function inSubdirectory(realIn: string, realOut: string, into: WrittenInto): boolean {
  if (!inside(realIn, realOut)) return false;
  const rel = relative(realOut, realIn).split(sep);
  const first = rel[0]!;
  return !into.ownSubdirs.includes(first) && (rel.length > 1 || statSync(join(realOut, first), { throwIfNoEntry: false })?.isDirectory() === true);
}

/**
 * Throws a LepError when `out` (given by `outFlag`) is a dangling link, or is, lies inside, or contains an
 * input; with a `WrittenInto` shape, an input in a subdirectory of `out` other than its own ones is no
 * overlap.
 */
export function checkOutputPath(out: string, outFlag: string, inputs: CommandInputs, shape?: OutputShape): void {
  // From plain JavaScript a path can be anything: a bare TypeError from path.resolve otherwise.
  if (typeof out !== 'string' || out === '') throw optionError(outFlag, 'a path', out);
  for (const [flag, value] of Object.entries(inputs))
    for (const input of pathsOf(value)) if (typeof input !== 'string') throw optionError(flag, 'a path', input);
  let link;
  try {
    link = lstatSync(out, { throwIfNoEntry: false });
  } catch (e) {
    // ENOTDIR: a part of the path is a file (it was "cannot lstat ...: ENOTDIR" without the flag).
    throw new LepError('LEP_BAD_OUTPUT', `${outFlag} ${out} cannot be made: ${(e as NodeJS.ErrnoException).code === 'ENOTDIR' ? 'a part of its path is a file, not a folder' : (e as Error).message}\nHINT: choose an ${outFlag} whose folders are folders.`);
  }
  if (link?.isSymbolicLink()) {
    try {
      realpathSync(out);
    } catch {
      throw new LepError('LEP_BAD_OUTPUT', `${outFlag} ${out} is a symbolic link to a path that does not exist\nHINT: remove the link, or pass the directory it should point to.`);
    }
  }
  const realOut = realPath(out);
  for (const [flag, value] of Object.entries(inputs)) {
    for (const input of pathsOf(value) as string[]) {
      const how = overlap(out, realOut, input, shape);
      if (how) throw overInput(out, outFlag, how, flag, input);
    }
  }
}

/** An input's paths as a list (from plain JavaScript a value may be anything: checked by the caller). */
const pathsOf = (value: unknown): unknown[] => (value === undefined ? [] : Array.isArray(value) ? value : [value]);

function overInput(out: string, outFlag: string, how: string, flag: string, input: string): LepError {
  return new LepError(
    'LEP_OUTPUT_OVER_INPUT',
    `${outFlag} ${out} ${how} the input ${flag} ${input}: writing it would overwrite or mix with what the command reads\n` +
      `HINT: give ${outFlag} a path that is outside every input and contains none of them.`,
  );
}

/**
 * For a directory output (replaced whole) beside model directories, which are read at their top level
 * only: refuses an output that is one of them or contains one, or lies in one of their `reserved`
 * subfolders (a training output's checkpoints/ and adapter/); an output in another subfolder of one is no
 * overlap (`lep train --out run --patch run/patch`).
 */
export function checkBesideModels(out: string, outFlag: string, models: Record<string, string>, reserved: readonly string[] = []): void {
  checkOutputPath(out, outFlag, {});
  const realOut = realPath(out);
  for (const [flag, model] of Object.entries(models)) {
    const realIn = realPath(model);
    const how = realOut === realIn ? 'is' : inside(realIn, realOut) ? 'contains' : undefined;
    if (how) throw overInput(out, outFlag, how, flag, model);
    const sub = inside(realOut, realIn) ? relative(realIn, realOut).split(sep)[0]! : undefined;
    if (sub !== undefined && reserved.includes(sub))
      throw new LepError(
        'LEP_OUTPUT_OVER_INPUT',
        `${outFlag} ${out} lies in ${join(model, sub)}, the ${sub}/ folder that training writes in ${flag} ${model}\n` +
          `HINT: give ${outFlag} a path outside ${sub}/ (another folder inside ${model} is fine, e.g. ${join(model, 'patch')}).`,
      );
  }
}
