#include "core/adamw_kernel.h"

#include <cmath>

namespace lep {

void adamw_update_f32(float* __restrict param, float* __restrict exp_avg, float* __restrict exp_avg_sq,
                      const float* __restrict grad, int64_t begin, int64_t end, const AdamWCoefficients& c) {
  // Locals: the compiler need not reload them through `c` (which could alias the arrays) each iteration.
  const float keep = c.keep, b1 = c.beta1, b2 = c.beta2, a1 = c.one_minus_beta1, a2 = c.one_minus_beta2;
  const float bias2 = c.bias2, eps = c.eps, lr = c.step_size;
  // The eager sequence's arithmetic (core/adamw.cpp) in the same order.
  for (int64_t i = begin; i < end; ++i) {
    const float g = grad[i];
    const float m = b1 * exp_avg[i] + a1 * g;
    const float v = b2 * exp_avg_sq[i] + a2 * g * g;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    // v >= 0: sqrt never sets errno, which -fno-math-errno lets the compiler assume (and vectorise).
    param[i] = param[i] * keep - lr * (m / (std::sqrt(v / bias2) + eps));
  }
}

}  // namespace lep
