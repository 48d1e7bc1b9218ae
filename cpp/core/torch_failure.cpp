#include "core/torch_failure.h"

#include <c10/util/Exception.h>

#include <string>

namespace lep {

Failure describe_torch_failure(std::exception_ptr ep) {
  try {
    std::rethrow_exception(ep);
  } catch (const c10::OutOfMemoryError& e) {  // before c10::Error, which it is
    const std::string what = e.what_without_backtrace();
    return {"LEP_OUT_OF_MEMORY", what + "\n" + out_of_memory_hint(what)};
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    // libtorch's CPU allocator's failures (lep's passes blocks under 1 MiB to it) are plain c10::Errors
    // ("DefaultCPUAllocator: can't allocate memory: you tried to allocate N bytes", or "not enough memory").
    if (what.find("DefaultCPUAllocator") != std::string::npos)
      return {"LEP_OUT_OF_MEMORY", what + "\n" + out_of_memory_hint()};
    return {"LEP_TORCH", what};
  } catch (...) {
    return describe_failure(ep);
  }
}

}  // namespace lep
