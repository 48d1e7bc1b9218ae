// Errors thrown by the core. Each carries a stable machine-readable code (used by TS as `err.code`)
// and a message written for people; a HINT line says how to fix causes a user can fix.
#pragma once
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

// The HINT of LEP_OUT_OF_MEMORY, for every allocation that fails (libtorch's allocators, operator new, a
// mapped checkpoint): the limit a process meets is often not the machine's RAM but one set on it.
inline const char* out_of_memory_hint() {
  return "HINT: free memory, or raise the limit this process met (ulimit -v or -d, a cgroup or job "
         "scheduler's memory limit, the commit limit under vm.overcommit_memory=2), or ask for less: "
         "--dtype bf16, a smaller batch, --activation-checkpointing when training";
}

}  // namespace lep
