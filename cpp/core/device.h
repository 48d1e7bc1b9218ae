// The device a user names (--device, a recipe's device): cpu, cuda or cuda:N, checked against this
// libtorch and this machine before any work, so that a wrong one fails with a code and a hint instead of
// libtorch's "invalid device ordinal" in the middle of a job.
#pragma once
#include <c10/core/Device.h>

#include <string>

namespace lep {

// LEP_BAD_ARGUMENT for a name that is not a device, LEP_NO_CUDA for a CUDA device this libtorch or this
// machine does not have (a libtorch built without CUDA, no visible GPU, an index past the last one).
c10::Device parse_device(const std::string& name);

// The CUDA runtime version this libtorch was built with ("12.4"), or "" for a libtorch without CUDA:
// a CUDA libtorch on a machine with no usable GPU says so rather than "no CUDA".
std::string libtorch_cuda_version();

}  // namespace lep
