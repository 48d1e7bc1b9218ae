#include "core/cpu_allocator.h"

#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <c10/util/Exception.h>
#include <sys/mman.h>
#include <unistd.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <list>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace lep {
namespace {

constexpr std::size_t kLarge = std::size_t{1} << 20;      // smaller blocks stay with libtorch's allocator
constexpr std::size_t kHugePage = std::size_t{2} << 20;   // x86-64's transparent huge page
constexpr std::size_t kSmallStep = std::size_t{64} << 10;
// Freed blocks kept for reuse: classes up to kReusedBelow, so every request below it (as glibc's heap,
// which tune_allocator lets hold 1 GiB free), up to 1 GiB in all, the oldest given back first.
constexpr std::size_t kKeepAtMost = std::size_t{1} << 30;
// A kept block not reused for this long goes back too, though jobs still run: a server whose jobs
// overlap (one model generating while another scores rows of every length) never has none running, and
// kept every class any job freed, up to the 1 GiB (+200-300 MiB over libtorch's glibc heap in a hunt).
// A job's sizes repeat within a step; where a step takes longer, fresh pages cost little beside it.
constexpr auto kKeepFor = std::chrono::seconds(10);

// A block's size class: 64 KiB steps below 2 MiB, whole huge pages up to 16 MiB, then 8 classes per
// doubling (a class spans at most 1/8 more address space than asked). Untouched pages cost no memory,
// but a touched huge page is resident whole: a block of 2-16 MiB may hold up to 2 MiB it never uses.
std::size_t class_size(std::size_t n) {
  if (n < kHugePage) return (n + kSmallStep - 1) / kSmallStep * kSmallStep;
  std::size_t power = kHugePage;  // the largest power of two <= n
  while (power <= n / 2) power *= 2;
  const std::size_t step = std::max(kHugePage, power / 8);
  return (n + step - 1) / step * step;
}

// mmap, aligned to a huge page from 2 MiB on (the kernel backs only aligned 2 MiB extents with huge pages).
void* map_block(std::size_t size) {
  const std::size_t align = size >= kHugePage ? kHugePage : 0;
  void* raw = ::mmap(nullptr, size + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  char* p = static_cast<char*>(raw);
  if (align) {
    char* aligned = reinterpret_cast<char*>((reinterpret_cast<std::uintptr_t>(p) + align - 1) / align * align);
    if (aligned > p) ::munmap(p, aligned - p);
    if (aligned + size < p + size + align) ::munmap(aligned + size, p + size + align - (aligned + size));
    p = aligned;
    // Does nothing where the kernel's mode is "never" (and fails where it has no THP): 4 KiB pages then.
    // Where its defrag setting compacts memory on a fault in such a range ("madvise", a common default),
    // a first touch may wait for that; lep's jobs touch a block's pages once and reuse it.
    ::madvise(p, size, MADV_HUGEPAGE);
  }
  ::madvise(p, size, MADV_DONTFORK);  // a child never gets this block (no page tables to copy)
  return p;
}

struct Block {
  void* p;
  std::size_t size;
  std::chrono::steady_clock::time_point freed{};  // when it was kept
};

void unmap(const std::vector<Block>& blocks) {
  for (const Block& b : blocks) ::munmap(b.p, b.size);
}

class LargeBlockAllocator final : public c10::Allocator {
 public:
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
  c10::DataPtr allocate(std::size_t n) override { return allocate_block(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const override { default_copy_data(dest, src, count); }
#else
  c10::DataPtr allocate(std::size_t n) const override { return allocate_block(n); }
#endif
  // For raw_allocate / raw_deallocate (oneDNN's ideep allocates through them): either kind of block.
  c10::DeleterFnPtr raw_deleter() const override { return &free_any; }

  static LargeBlockAllocator& instance() {
    static auto* a = new LargeBlockAllocator;  // never destroyed: tensors may outlive static destruction
    return *a;
  }

  void job_started() {
    std::vector<Block> gone;
    {
      std::lock_guard lock(mu_);
      ++jobs_;
      expire(gone);
    }
    unmap(gone);
  }

  void job_ended() {
    std::vector<Block> gone;
    {
      std::lock_guard lock(mu_);
      if (--jobs_ == 0) gone = take_all_kept();
    }
    unmap(gone);
  }

 private:
  c10::DataPtr allocate_block(std::size_t n) const {
    const c10::Device cpu(c10::DeviceType::CPU);
    if (n < kLarge) {
      void* p = c10::alloc_cpu(n);  // what libtorch's own allocator does (its errors say DefaultCPUAllocator)
      return {p, p, &c10::free_cpu, cpu};
    }
    void* p = const_cast<LargeBlockAllocator*>(this)->take(n);
    return {p, p, &free_large, cpu};
  }

  void* take(std::size_t n) {
    const std::size_t size = class_size(n);
    std::vector<Block> expired;
    void* reused = nullptr;
    {
      std::lock_guard lock(mu_);
      expire(expired);
      if (auto it = by_size_.find(size); it != by_size_.end() && !it->second.empty()) {
        const auto k = it->second.back();
        it->second.pop_back();
        reused = k->p;
        kept_.erase(k);
        kept_bytes_ -= size;
        live_.emplace(reused, size);
      }
    }
    unmap(expired);  // system calls outside the lock: other threads' frees go on meanwhile
    if (reused) return reused;
    void* p = map_block(size);
    if (!p) {
      const int err = errno;
      std::vector<Block> gone;
      {
        std::lock_guard lock(mu_);
        gone = take_all_kept();
      }
      unmap(gone);
      p = map_block(size);
      if (!p)
        TORCH_CHECK_WITH(OutOfMemoryError, false, "lep's CPU allocator: cannot allocate memory: you tried to allocate ",
                         n, " bytes (mmap: ", std::strerror(err), ")");
    }
    std::lock_guard lock(mu_);
    live_.emplace(p, size);
    return p;
  }

  // With mu_ held: empties the kept blocks and returns them, to be unmapped after the lock.
  std::vector<Block> take_all_kept() {
    std::vector<Block> gone(kept_.begin(), kept_.end());
    kept_.clear();
    by_size_.clear();
    kept_bytes_ = 0;
    return gone;
  }

  static void free_large(void* p) {
    auto& self = instance();
    std::vector<Block> gone;
    {
      std::lock_guard lock(self.mu_);
      self.release(self.live_.find(p), gone);
    }
    unmap(gone);
  }

  // raw_allocate's blocks come back here, of either kind: one lookup under the lock tells which.
  static void free_any(void* p) {
    auto& self = instance();
    std::vector<Block> gone;
    bool large;
    {
      std::lock_guard lock(self.mu_);
      const auto it = self.live_.find(p);
      large = it != self.live_.end();
      if (large) self.release(it, gone);
    }
    if (!large) c10::free_cpu(p);
    unmap(gone);
  }

  // With mu_ held: a large block handed back is kept for reuse while jobs run (below kReusedBelow), or
  // put in `gone` to be unmapped after the lock.
  void release(std::unordered_map<void*, std::size_t>::iterator it, std::vector<Block>& gone) {
    const Block b{it->first, it->second};
    live_.erase(it);
    if (jobs_ == 0 || b.size > kReusedBelow) {
      gone.push_back(b);
      return;
    }
    kept_.push_back({b.p, b.size, std::chrono::steady_clock::now()});
    by_size_[b.size].push_back(std::prev(kept_.end()));
    kept_bytes_ += b.size;
    expire(gone);
  }

  // With mu_ held: over the bound, or unused for kKeepFor, the oldest kept blocks go to `gone` (a job whose
  // sizes drift keeps its recent ones). Run on every take, release and job start, so a block outlives its
  // 10 s only while the process allocates nothing large and starts nothing. The oldest of all is the
  // oldest of its class, at the front of that class's list.
  void expire(std::vector<Block>& gone) {
    const auto now = std::chrono::steady_clock::now();
    while (!kept_.empty() && (kept_bytes_ > kKeepAtMost || now - kept_.front().freed > kKeepFor)) {
      const Block old = kept_.front();
      auto& same = by_size_[old.size];
      same.erase(same.begin());
      kept_.pop_front();
      kept_bytes_ -= old.size;
      gone.push_back(old);
    }
  }

  std::mutex mu_;
  std::unordered_map<void*, std::size_t> live_;  // large blocks handed out: address -> class size
  std::list<Block> kept_;                         // freed large blocks kept for reuse, oldest first
  std::unordered_map<std::size_t, std::vector<std::list<Block>::iterator>> by_size_;  // kept_, by class
  std::size_t kept_bytes_ = 0;
  int jobs_ = 0;  // running jobs: blocks are kept only while there are some
};

enum class Choice { kLep, kLibtorch, kRefused };
Choice g_choice = Choice::kLibtorch;
std::string g_setting;  // LEP_CPU_ALLOCATOR as read at install

std::string transparent_huge_pages() {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  std::getline(f, line);
  const auto a = line.find('['), b = line.find(']');
  return a != std::string::npos && b > a ? line.substr(a + 1, b - a - 1) : "unknown";
}

}  // namespace

void install_cpu_allocator() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* env = std::getenv("LEP_CPU_ALLOCATOR");
    g_setting = env ? env : "";
    if (g_setting.empty() || g_setting == "lep") {
      // Priority above the default's registration (0), so libtorch's own static setter cannot win later.
      // Nothing replaces it after (one lep.node per process: ts/binding/loadNative.ts); if something did,
      // blocks given out by raw_allocate before would go back to that allocator's raw deleter.
      c10::SetCPUAllocator(&LargeBlockAllocator::instance(), 1);
      g_choice = Choice::kLep;
    } else if (g_setting == "libtorch") {
      g_choice = Choice::kLibtorch;
    } else {
      g_choice = Choice::kRefused;  // not worth refusing every job over: said here and in lep info
      const std::string message = "lep: LEP_CPU_ALLOCATOR is '" + g_setting +
                                  "', which is neither lep nor libtorch: libtorch's own allocator runs. Unset it for lep's.\n";
      ssize_t written = ::write(STDERR_FILENO, message.data(), message.size());
      (void)written;
    }
  });
}

void cpu_job_started() {
  if (g_choice == Choice::kLep) LargeBlockAllocator::instance().job_started();
}

void cpu_job_ended() {
  if (g_choice == Choice::kLep) LargeBlockAllocator::instance().job_ended();
}

std::string cpu_allocator_description() {
  switch (g_choice) {
    case Choice::kLep: {
      const std::string thp = transparent_huge_pages();
      return "lep's: blocks of 1 MiB or more mapped apart, never copied into child processes, on huge pages where "
             "the kernel gives them (transparent_hugepage: " + thp + "); LEP_CPU_ALLOCATOR=libtorch for libtorch's own";
    }
    case Choice::kLibtorch:
      return "libtorch's own (LEP_CPU_ALLOCATOR=libtorch): a spawn copies the page tables of every model in this process";
    case Choice::kRefused:
      break;
  }
  return "libtorch's own: LEP_CPU_ALLOCATOR is '" + g_setting + "', which is neither lep nor libtorch (unset it for lep's)";
}

}  // namespace lep
