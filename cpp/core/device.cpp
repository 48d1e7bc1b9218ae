#include "core/device.h"

#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/cuda.h>

#include <cstdlib>

#include "core/error.h"

namespace lep {

std::string libtorch_cuda_version() {
  const auto& hooks = at::detail::getCUDAHooks();
  if (!hooks.hasCUDART()) return "";
  const long v = hooks.versionCUDART();  // 12040 for 12.4
  return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10);
}

c10::Device parse_device(const std::string& name) {
  if (name == "cpu") return c10::Device(c10::DeviceType::CPU);
  if (name.rfind("cuda", 0) != 0)
    throw Error("LEP_BAD_ARGUMENT", "device must be cpu or cuda[:N], got '" + name + "'");
  c10::Device dev(c10::DeviceType::CPU);
  try {
    dev = c10::Device(name);
  } catch (const c10::Error&) {
    throw Error("LEP_BAD_ARGUMENT", "device must be cpu or cuda[:N], got '" + name + "'");
  }
  if (!torch::cuda::is_available()) {
    // A libtorch built with CUDA on a machine (or in a process) without a usable GPU needs another hint
    // than a CPU-only libtorch: rebuilding would change nothing there.
    const std::string cuda = libtorch_cuda_version();
    if (!cuda.empty()) {
      const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
      throw Error("LEP_NO_CUDA", "device '" + name + "' requested but this process sees no GPU (this libtorch has CUDA " + cuda + ")" +
                                     (visible ? std::string("; CUDA_VISIBLE_DEVICES is '") + visible + "'" : std::string()) +
                                     "\nHINT: check that nvidia-smi lists a GPU (the NVIDIA driver, and under a container or scheduler "
                                     "the GPUs it grants), that CUDA_VISIBLE_DEVICES names one, or use --device cpu");
    }
    throw Error("LEP_NO_CUDA", "device '" + name + "' requested but this libtorch has no CUDA device" +
                                   "\nHINT: build lep against a CUDA libtorch (LIBTORCH=/path/to/libtorch) or use --device cpu");
  }
  const auto count = static_cast<int64_t>(torch::cuda::device_count());
  if (dev.has_index() && dev.index() >= count)
    throw Error("LEP_NO_CUDA", "device '" + name + "' requested but this process sees " + std::to_string(count) +
                                   " CUDA device(s), cuda:0 to cuda:" + std::to_string(count - 1) +
                                   "\nHINT: name one of those (CUDA_VISIBLE_DEVICES renumbers the GPUs a process sees from 0; under a "
                                   "launcher, one GPU per rank is cuda:0 or --device cuda with LOCAL_RANK)");
  return dev;
}

}  // namespace lep
