// core/failure.h for code on libtorch: its exceptions first (c10::Error derives from std::exception),
// then the rest as describe_failure does.
#pragma once
#include <exception>

#include "core/failure.h"

namespace lep {

// c10::OutOfMemoryError (a device allocator's, lep's CPU allocator's for a large block) and libtorch's CPU
// allocator's failures as LEP_OUT_OF_MEMORY with the hint for their cause, any other c10::Error as
// LEP_TORCH without its C++ backtrace.
Failure describe_torch_failure(std::exception_ptr ep);

}  // namespace lep
