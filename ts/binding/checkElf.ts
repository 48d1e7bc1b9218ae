/**
 * A cheap sanity check of a native addon file before dlopen: dlopen maps a truncated shared object and
 * the process dies with SIGBUS when the loader touches the missing pages, so a damaged .node must be
 * caught here, as an error naming the file. Checks the ELF header, the machine, and that every segment
 * and the section table lie inside the file. Returns the problem, or undefined when the file looks whole.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/** e_machine of the architectures lep builds for. */
const ELF_MACHINE: Record<string, number> = { x64: 62, arm64: 183 };

export function checkElf(path: string): string | undefined {
  if (process.platform !== 'linux') return undefined;
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const header = Buffer.alloc(64);
    if (readSync(fd, header, 0, 64, 0) < 64 || header.readUInt32BE(0) !== 0x7f454c46) return 'not an ELF shared object (damaged or not a .node file)';
    if (header[4] !== 2 || header[5] !== 1) return 'not a 64-bit little-endian ELF file';
    const machine = header.readUInt16LE(0x12);
    const expected = ELF_MACHINE[process.arch];
    if (expected !== undefined && machine !== expected) return `built for another CPU (ELF machine ${machine}, this is ${process.arch})`;
    const phoff = Number(header.readBigUInt64LE(0x20));
    const shoff = Number(header.readBigUInt64LE(0x28));
    const phentsize = header.readUInt16LE(0x36);
    const phnum = header.readUInt16LE(0x38);
    const shentsize = header.readUInt16LE(0x3a);
    const shnum = header.readUInt16LE(0x3c);
    const truncated = `truncated: ${size} bytes, but its ELF headers describe more (damaged download or copy)`;
    if (phoff + phentsize * phnum > size || shoff + shentsize * shnum > size) return truncated;
    const ph = Buffer.alloc(phentsize * phnum);
    readSync(fd, ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) {
      const at = i * phentsize;
      const offset = Number(ph.readBigUInt64LE(at + 8));
      const fileSize = Number(ph.readBigUInt64LE(at + 32));
      if (offset + fileSize > size) return truncated;
    }
    return undefined;
  } finally {
    closeSync(fd);
  }
}
