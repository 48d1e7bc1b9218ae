// The tensors a config implies, by Hugging Face name and shape, and the check of a checkpoint against
// them. The check runs on header shapes before anything is allocated: a config.json claiming 10^9 layers
// or an intermediate_size of 2^40 is refused in microseconds, not after gigabytes of allocation.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/model_config.h"

namespace lep {

// One dimension of a parameter and the config.json field it comes from ("hidden_size", ...).
struct Dim {
  int64_t size;
  const char* field;
};

// Calls fn(name, dims) for every parameter of the model `c` describes, in a fixed order; lm_head.weight is
// absent for tied models. Stops early when fn throws.
void for_each_parameter(const ModelConfig& c, const std::function<void(const std::string&, const std::vector<Dim>&)>& fn);

struct TensorShape {
  std::string dtype;  // safetensors dtype
  std::vector<int64_t> shape;
};

// Checks a checkpoint's tensors (by name) against `c`: every parameter present, floating point, with the
// shape config.json implies, and no tensor the model would not use (rotary inv_freq buffers and a stored
// copy of a tied lm_head excepted). `where` names the checkpoint. Throws lep::Error naming the tensor and
// the config.json field: LEP_MISSING_TENSOR, LEP_SHAPE_MISMATCH, LEP_UNEXPECTED_TENSOR or LEP_BAD_DTYPE.
void check_weights_match_config(const ModelConfig& c, const std::map<std::string, TensorShape>& tensors, const std::string& where);

}  // namespace lep
