// Errors thrown by the core. Each carries a stable machine-readable code (used by TS as `err.code`)
// and a message written for people; a HINT line says how to fix causes a user can fix.
#pragma once
#include <cerrno>
#include <fstream>
#include <stdexcept>
#include <string>

namespace lep {

class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message) : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

// Mappings this process holds when they are within 5% of the kernel's vm.max_map_count, else 0: an
// mmap then fails with ENOMEM however much memory is free (lep's CPU allocator maps each block of 1 MiB
// or more apart; a thread's stack is one more), and "out of memory" would send the user the wrong way.
inline long mappings_at_limit(long* limit_out = nullptr) {
  long limit = 0, n = 0;
  std::ifstream("/proc/sys/vm/max_map_count") >> limit;
  if (limit <= 0) return 0;
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) ++n;
  if (limit_out) *limit_out = limit;
  return n * 20 >= limit * 19 ? n : 0;
}

// The HINT of LEP_OUT_OF_MEMORY, for every allocation that fails (libtorch's allocators, operator new, a
// mapped checkpoint, a thread), given the failure's message: the limit a process meets is often not the
// machine's RAM but one set on it, or the GPU's memory.
inline std::string out_of_memory_hint(const std::string& what = "") {
  // The caching allocator says "CUDA out of memory"; cudaMallocAsync (PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync)
  // "... would exceed allowed memory. (out of memory)".
  if (what.find("CUDA out of memory") != std::string::npos || what.find("would exceed allowed memory") != std::string::npos)
    return "HINT: the GPU's memory is full: ask for less (--dtype bf16, a smaller batch, --activation-checkpointing "
           "when training), free the GPU of other processes (nvidia-smi), or, when the message shows much memory "
           "reserved but unallocated, set PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True";
  long limit = 0;
  if (const long n = mappings_at_limit(&limit))
    return "HINT: this process holds " + std::to_string(n) + " memory mappings, at the kernel's limit vm.max_map_count=" +
           std::to_string(limit) + ", which fails an allocation however much memory is free: raise it (sysctl -w "
           "vm.max_map_count=262144, as root)";
  return "HINT: free memory, or raise the limit this process met (ulimit -v or -d, a cgroup or job "
         "scheduler's memory limit, the commit limit under vm.overcommit_memory=2), or ask for less: "
         "--dtype bf16, a smaller batch, --activation-checkpointing when training";
}

// What to do about a file that cannot be created or written, by errno (core/atomic_file.cpp, and
// std::filesystem's errors in common/JsError.h). Inline: lep_spm.node links no core library.
inline std::string io_hint(int err) {
  switch (err) {
    case ENOSPC: return "the disk is full (of bytes or of inodes): free space there, or write somewhere else";
    case EDQUOT: return "your disk quota is used up: free space there, or write somewhere else";
    case EFBIG: return "the file would be larger than this process may write (ulimit -f) or the filesystem allows";
    case EROFS: return "the folder is on a read-only file system: write somewhere else";
    case EACCES:
    case EPERM: return "this user may not write in that folder: give it write permission, or write somewhere else";
    case ENOENT:
    case ENOTDIR: return "the folder does not exist (or a part of its path is a file): choose an existing folder";
    case EMFILE:
    case ENFILE: return "too many files are open: raise the limit (ulimit -n)";
    case EIO: return "the disk reported an error: check it (dmesg), or write somewhere else";
    default: return "is the disk full, read-only or failing?";
  }
}

}  // namespace lep
