#include "core/device.h"

#include <torch/cuda.h>

#include "core/error.h"

namespace lep {

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
  if (!torch::cuda::is_available())
    throw Error("LEP_NO_CUDA", "device '" + name + "' requested but this libtorch has no CUDA device" +
                                   "\nHINT: build lep against a CUDA libtorch (LIBTORCH=/path/to/libtorch) or use --device cpu");
  const auto count = static_cast<int64_t>(torch::cuda::device_count());
  if (dev.has_index() && dev.index() >= count)
    throw Error("LEP_NO_CUDA", "device '" + name + "' requested but this process sees " + std::to_string(count) +
                                   " CUDA device(s), cuda:0 to cuda:" + std::to_string(count - 1) +
                                   "\nHINT: name one of those (CUDA_VISIBLE_DEVICES renumbers the GPUs a process sees from 0; under a "
                                   "launcher, one GPU per rank is cuda:0 or --device cuda with LOCAL_RANK)");
  return dev;
}

}  // namespace lep
