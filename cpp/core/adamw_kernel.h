// AdamW's float32 update over one range of elements, on raw pointers: no libtorch here, so that this one
// file is built with -fno-math-errno (CMakeLists.txt) and its loop vectorises, while core/adamw.cpp keeps
// the project's flags and precompiled header. core/adamw.cpp splits a tensor into ranges across libtorch's
// pool and calls this for each.
#pragma once
#include <cstdint>

namespace lep {

struct AdamWCoefficients {
  float keep;       // 1 - lr * weight_decay (decoupled decay)
  float beta1, beta2;
  float one_minus_beta1, one_minus_beta2;  // rounded from double, as the eager ops' scalars are
  float bias2;      // 1 - beta2^step
  float eps;
  float step_size;  // lr / (1 - beta1^step)
};

// For i in [begin, end): m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2;
// p = p * keep - step_size * m / (sqrt(v / bias2) + eps). The four arrays do not overlap.
void adamw_update_f32(float* param, float* exp_avg, float* exp_avg_sq, const float* grad, int64_t begin, int64_t end,
                      const AdamWCoefficients& c);

}  // namespace lep
