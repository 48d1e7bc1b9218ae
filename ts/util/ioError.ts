/**
 * File-system errors (Node's, with an errno code and the path) as messages for people, with what to do
 * about each: one table for the CLI's last-resort report and for training, which reports such an error
 * as LEP_IO with where to resume. cpp/core/error.h has the native writers' table (io_hint).
 */
import { LepError } from '../errors.js';

const HINTS: Record<string, string> = {
  ENOSPC: 'the disk is full (of bytes or of inodes): free space there, or write somewhere else.',
  EDQUOT: 'your disk quota is used up: free space there, or write somewhere else.',
  EFBIG: 'the file would be larger than this process may write (ulimit -f) or the filesystem allows.',
  EROFS: 'it is on a read-only file system: write somewhere else.',
  EACCES: 'this user may not write there: give it permission, or write somewhere else.',
  EPERM: 'this user may not write there: give it permission, or write somewhere else.',
  ENOTDIR: 'a part of the path is a file, not a folder: choose another path.',
  EIO: 'the disk reported an error: check it (dmesg), or write somewhere else.',
  EMFILE: 'this process may open too few files: raise `ulimit -n`.',
  ENFILE: 'the system has too many files open: close some, or raise fs.file-max.',
};

/** What to do about an errno `code`. */
export function ioHint(code: string | undefined): string {
  return HINTS[code ?? ''] ?? 'check that the path exists, is writable and is on a real disk.';
}

/** Whether `e` is one of Node's file-system errors (a numeric errno and a string code). */
export function isIoError(e: unknown): e is NodeJS.ErrnoException & { dest?: string } {
  return e instanceof Error && !(e instanceof LepError) && typeof (e as NodeJS.ErrnoException).errno === 'number' && typeof (e as NodeJS.ErrnoException).code === 'string';
}

/** A file-system error (it names its path) as a message with a HINT line. */
export function ioMessage(e: NodeJS.ErrnoException & { dest?: string }): string {
  // copyfile and rename name both ends: the destination is usually the one that failed.
  const where = e.dest ? ` ${e.path} to ${e.dest}` : e.path ? ` ${e.path}` : '';
  return `cannot ${e.syscall ?? 'access'}${where}: ${e.code}\nHINT: ${ioHint(e.code)}`;
}
