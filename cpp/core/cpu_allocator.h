#pragma once
// libtorch's CPU allocator, replaced for large blocks. A process that holds a model and starts children
// (Node forks for every spawn) paid for each fork with a copy of the page tables of all its memory, and
// its job then took a write fault on every page it touched again: a training step beside a spawn every
// 0.5 s ran 1.66x as long as alone (2.7 GB of training state; bench/cpu-allocator.ts). Blocks of at
// least 1 MiB (weights, gradients, optimizer moments, activations, KV caches) are mapped apart with
// MADV_DONTFORK, so a child gets none of them (it execs at once: nothing in a child touches them), and
// from 2 MiB on with MADV_HUGEPAGE (where transparent huge pages are in "madvise" or "always" mode):
// one fault per 2 MiB instead of 512. Freed blocks are kept by size class for the next allocation while
// jobs run (a training step's sizes repeat step to step), as glibc kept them in its heaps, up to 1 GiB and
// about 10 s unused (checked whenever a large block is taken or freed, or a job starts: jobs that overlap
// would otherwise keep every class any of them freed); a process that runs no job keeps none. Smaller
// blocks stay with libtorch's own allocator (glibc, tuned by tune_allocator).
//
// LEP_CPU_ALLOCATOR=libtorch keeps libtorch's allocator for everything (read once, at load).
#include <cstddef>
#include <string>

namespace lep {

// Freed blocks smaller than this are reused within a job, by either allocator: lep's keeps them (up to
// 1 GiB), glibc's heap under libtorch's (tune_allocator sets this, its largest mmap threshold on 64-bit).
// Larger ones go back to the system when freed and come back as fresh pages.
inline constexpr std::size_t kReusedBelow = std::size_t{32} << 20;

// Installs the allocator as libtorch's CPU allocator unless LEP_CPU_ALLOCATOR says not to; once per
// process, before the first job. Throws nothing: another value than lep or libtorch keeps libtorch's,
// with a line on stderr and in cpu_allocator_description().
void install_cpu_allocator();

// Freed blocks are kept for reuse while a job runs: each job's thread calls these as its work starts and
// ends. When the last one ends, the kept blocks are unmapped, and so is every block freed after (a model
// disposed, a result released on the main thread), so an idle process holds no finished job's memory.
void cpu_job_started();
void cpu_job_ended();

// The same for work done in a call on the caller's thread (lep.node's synchronous functions).
class CpuJobScope {
 public:
  CpuJobScope() { cpu_job_started(); }
  ~CpuJobScope() { cpu_job_ended(); }
  CpuJobScope(const CpuJobScope&) = delete;
  CpuJobScope& operator=(const CpuJobScope&) = delete;
};

// One line for `lep info`: which allocator runs and why.
std::string cpu_allocator_description();

}  // namespace lep
