#include "core/adamw.h"

#include <ATen/Parallel.h>

#include <cmath>

#include "core/error.h"
#include "core/fork_gate.h"

namespace lep {

void AdamW::add(const std::string& name, const torch::Tensor& master, double lr_scale) {
  fork_safe_point();  // between two tensors' moments (core/fork_gate.h)
  slots_[name] = Slot{master, torch::zeros_like(master), torch::zeros_like(master), lr_scale};
}

namespace {

// Elements per task of the fused update: a few hundred KiB of each stream, so a task is long against the
// pool's dispatch and short against a tensor (the embedding matrices have millions of elements).
constexpr int64_t kGrain = 1 << 15;

// One pass over the four streams (parameter, gradient, two moments), each element read once and written
// once, where the eager sequence below makes about nine passes over the tensor and allocates a temporary
// of its size. The update is memory-bound, so passes are its cost: on the training bench's small model (22 M
// parameters, 2 cores) the whole step is 3-6 % faster fused (bench/README.md, "AdamW in one pass").
// The eager sequence's arithmetic in the same order. float32 only: the masters lep train makes (a float64
// master, from a float64 model, takes the eager path).
void fused_update(torch::Tensor& param, torch::Tensor& m, torch::Tensor& v, const torch::Tensor& grad, double decay,
                  double beta1, double beta2, double bc2, double eps, double step_size) {
  float* __restrict p = param.data_ptr<float>();
  float* __restrict pm = m.data_ptr<float>();
  float* __restrict pv = v.data_ptr<float>();
  const float* __restrict g = grad.data_ptr<float>();
  const auto keep = static_cast<float>(decay), b1 = static_cast<float>(beta1), b2 = static_cast<float>(beta2);
  const auto a1 = static_cast<float>(1 - beta1), a2 = static_cast<float>(1 - beta2);
  const auto bc = static_cast<float>(bc2), e = static_cast<float>(eps), lr = static_cast<float>(step_size);
  at::parallel_for(0, param.numel(), kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float gi = g[i];
      const float mi = b1 * pm[i] + a1 * gi;
      const float vi = b2 * pv[i] + a2 * gi * gi;
      pm[i] = mi;
      pv[i] = vi;
      // vi >= 0, so sqrt never sets errno: adamw.cpp is built with -fno-math-errno (CMakeLists.txt) so
      // that this loop vectorises.
      p[i] = p[i] * keep - lr * (mi / (std::sqrt(vi / bc) + e));
    }
  });
}

bool fusable(const torch::Tensor& param, const torch::Tensor& m, const torch::Tensor& v, const torch::Tensor& grad) {
  for (const auto* t : {&param, &m, &v, &grad})
    if (!t->device().is_cpu() || t->scalar_type() != torch::kFloat32 || !t->is_contiguous() || t->numel() != param.numel()) return false;
  return true;
}

}  // namespace

void AdamW::step(double step_lr, const std::map<std::string, torch::Tensor>& grads) {
  torch::NoGradGuard no_grad;
  ++step_;
  const double bc1 = 1 - std::pow(c_.beta1, static_cast<double>(step_));
  const double bc2 = 1 - std::pow(c_.beta2, static_cast<double>(step_));
  for (auto& [name, s] : slots_) {
    fork_safe_point();  // between two tensors' updates (core/fork_gate.h): 8B shapes have seconds of them
    auto it = grads.find(name);
    if (it == grads.end() || !it->second.defined()) continue;
    const auto& g = it->second;
    const double lr = step_lr * s.lr_scale;
    if (fusable(s.param, s.exp_avg, s.exp_avg_sq, g)) {
      fused_update(s.param, s.exp_avg, s.exp_avg_sq, g, 1 - lr * c_.weight_decay, c_.beta1, c_.beta2, bc2, c_.eps, lr / bc1);
      continue;
    }
    // Other devices (and layouts): libtorch's own ops, one kernel each.
    s.param.mul_(1 - lr * c_.weight_decay);
    s.exp_avg.mul_(c_.beta1).add_(g, 1 - c_.beta1);
    s.exp_avg_sq.mul_(c_.beta2).addcmul_(g, g, 1 - c_.beta2);
    auto denom = (s.exp_avg_sq / bc2).sqrt().add_(c_.eps);
    s.param.addcdiv_(s.exp_avg, denom, -lr / bc1);
  }
}

std::map<std::string, torch::Tensor> AdamW::state() const {
  std::map<std::string, torch::Tensor> out;
  for (const auto& [name, s] : slots_) {
    out[name + ".exp_avg"] = s.exp_avg;
    out[name + ".exp_avg_sq"] = s.exp_avg_sq;
  }
  return out;
}

void AdamW::load_state(const std::map<std::string, torch::Tensor>& state) {
  torch::NoGradGuard no_grad;
  for (auto& [name, s] : slots_) {
    for (const auto& kv : {std::pair<const char*, torch::Tensor*>{".exp_avg", &s.exp_avg}, {".exp_avg_sq", &s.exp_avg_sq}}) {
      const std::string key = kv.first;
      torch::Tensor* dst = kv.second;
      auto it = state.find(name + key);
      if (it == state.end()) throw Error("LEP_BAD_CHECKPOINT", "optimizer state lacks '" + name + key + "'");
      if (it->second.sizes() != dst->sizes())
        throw Error("LEP_RESUME_MISMATCH", "the checkpoint's optimizer state '" + name + key + "' has shape " +
                                               c10::str(it->second.sizes()) + ", this run needs " + c10::str(dst->sizes()) +
                                               "\nHINT: resume with the settings it was trained with, or start afresh (--no-resume).");
      dst->copy_(it->second);
    }
  }
}

}  // namespace lep
