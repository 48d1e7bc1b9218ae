// An exception as lep reports it: a stable code and a message for people, the one mapping for jobs and
// synchronous calls of both addons (common/JsError.h) and for what the core reports per item without
// throwing (a propagation target's failure). Free of libtorch, as lep_spm.node has none; libtorch's own
// exceptions are described by core/torch_failure.h, which falls back to this.
#pragma once
#include <exception>
#include <filesystem>
#include <new>
#include <string>

#include "core/error.h"

namespace lep {

struct Failure {
  std::string code, message;
};

// lep::Error as its code, std::bad_alloc as LEP_OUT_OF_MEMORY, std::filesystem's errors as LEP_IO, any
// other std::exception or anything else as LEP_NATIVE.
inline Failure describe_failure(std::exception_ptr ep) {
  try {
    std::rethrow_exception(ep);
  } catch (const Error& e) {
    return {e.code(), e.what()};
  } catch (const std::bad_alloc& e) {
    return {"LEP_OUT_OF_MEMORY", std::string("out of memory (") + e.what() + ")\n" + out_of_memory_hint()};
  } catch (const std::filesystem::filesystem_error& e) {
    // Directories made or listed by the core (a checkpoint's): "cannot create directories: No space left
    // on device [OUT/checkpoints]" as LEP_IO with its hint, not LEP_NATIVE.
    std::string what = e.what();
    if (what.rfind("filesystem error: ", 0) == 0) what.erase(0, 18);
    return {"LEP_IO", what + "\nHINT: " + io_hint(e.code().value())};
  } catch (const std::exception& e) {
    return {"LEP_NATIVE", e.what()};
  } catch (...) {
    return {"LEP_NATIVE", "unknown native error"};
  }
}

}  // namespace lep
