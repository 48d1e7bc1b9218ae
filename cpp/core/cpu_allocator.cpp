#include "core/cpu_allocator.h"

#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <c10/util/Exception.h>
#include <sys/mman.h>
#include <unistd.h>
#include <torch/version.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace lep {
namespace {

constexpr std::size_t kLarge = std::size_t{1} << 20;      // smaller blocks stay with libtorch's allocator
constexpr std::size_t kHugePage = std::size_t{2} << 20;   // x86-64's transparent huge page
constexpr std::size_t kSmallStep = std::size_t{64} << 10;
// Freed blocks kept for reuse: classes up to kReusedBelow, so every request below it (as glibc's heap,
// which tune_allocator lets hold 1 GiB free), up to 1 GiB in all.
constexpr std::size_t kKeepAtMost = std::size_t{1} << 30;

// A block's size class: 64 KiB steps below 2 MiB, then whole huge pages and at most 8 classes per
// doubling, so a class wastes at most 1/8 of its address space (pages never touched cost no memory).
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
    ::madvise(p, size, MADV_HUGEPAGE);  // refused where THP is off: then 4 KiB pages, as before
  }
  ::madvise(p, size, MADV_DONTFORK);  // a child never gets this block (no page tables to copy)
  return p;
}

class LargeBlockAllocator final : public c10::Allocator {
 public:
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
  c10::DataPtr allocate(std::size_t n) override { return allocate_block(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const override { default_copy_data(dest, src, count); }
#else
  c10::DataPtr allocate(std::size_t n) const override { return allocate_block(n); }
#endif
  c10::DeleterFnPtr raw_deleter() const override { return &free_block; }

  static LargeBlockAllocator& instance() {
    static auto* a = new LargeBlockAllocator;  // never destroyed: tensors may outlive static destruction
    return *a;
  }

  void job_started() {
    std::lock_guard lock(mu_);
    ++jobs_;
  }

  void job_ended() {
    std::lock_guard lock(mu_);
    if (--jobs_ == 0) evict();
  }

 private:
  c10::DataPtr allocate_block(std::size_t n) const {
    const c10::Device cpu(c10::DeviceType::CPU);
    if (n < kLarge) {
      void* p = c10::alloc_cpu(n);  // what libtorch's own allocator does (its errors say DefaultCPUAllocator)
      return {p, p, &free_block, cpu};
    }
    void* p = const_cast<LargeBlockAllocator*>(this)->take(n);
    return {p, p, &free_block, cpu};
  }

  void* take(std::size_t n) {
    const std::size_t size = class_size(n);
    std::lock_guard lock(mu_);
    if (auto it = free_.find(size); it != free_.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      cached_ -= size;
      in_use_ += size;
      live_.emplace(p, size);
      return p;
    }
    void* p = map_block(size);
    if (!p) {
      const int err = errno;
      evict();
      p = map_block(size);
      if (!p)
        TORCH_CHECK_WITH(OutOfMemoryError, false, "lep's CPU allocator: cannot allocate memory: you tried to allocate ",
                         n, " bytes (mmap: ", std::strerror(err), ")");
    }
    in_use_ += size;
    live_.emplace(p, size);
    return p;
  }

  // Called with mu_ held: unmaps every kept block.
  void evict() {
    for (auto& [size, blocks] : free_)
      for (void* p : blocks) ::munmap(p, size);
    free_.clear();
    cached_ = 0;
  }

  static void free_block(void* p) {
    auto& self = instance();
    {
      std::lock_guard lock(self.mu_);
      if (auto it = self.live_.find(p); it != self.live_.end()) {
        const std::size_t size = it->second;
        self.live_.erase(it);
        self.in_use_ -= size;
        if (self.jobs_ > 0 && size <= kReusedBelow && self.cached_ + size <= kKeepAtMost) {
          self.cached_ += size;
          self.free_[size].push_back(p);
        } else {
          ::munmap(p, size);
        }
        return;
      }
    }
    c10::free_cpu(p);
  }

  std::mutex mu_;
  std::unordered_map<void*, std::size_t> live_;                // handed out: address -> class size
  std::unordered_map<std::size_t, std::vector<void*>> free_;   // kept for reuse, by class size
  std::size_t in_use_ = 0, cached_ = 0;
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
