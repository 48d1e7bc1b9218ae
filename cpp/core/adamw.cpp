#include "core/adamw.h"

#include <ATen/Parallel.h>

#include <cmath>

#include "core/adamw_kernel.h"
#include "core/error.h"
#include "core/fork_gate.h"

namespace lep {

void AdamW::add(const std::string& name, const torch::Tensor& master, double lr_scale) {
  fork_safe_point();  // between two tensors' moments (core/fork_gate.h)
  slots_[name] = Slot{master, torch::zeros_like(master), torch::zeros_like(master), lr_scale};
}

namespace {

// Elements per task of the fused update: 128 KiB of each of the four streams, long against the pool's
// dispatch and short against a tensor (the embedding matrices have millions of elements).
constexpr int64_t kGrain = 1 << 15;

// One pass over the four streams (parameter, gradient, two moments), each element read once and written
// once (core/adamw_kernel.h), where the eager sequence below makes about nine passes over the tensor and
// allocates a temporary of its size. The update is memory-bound, so passes are its cost: on the training
// bench's small model (22 M parameters, 2 cores) the whole step is 3-6 % faster fused (bench/README.md,
// "AdamW in one pass"). float32 only: the masters lep train makes (a float64 master, from a float64 model,
// takes the eager path).
bool fusable(const torch::Tensor& param, const torch::Tensor& m, const torch::Tensor& v, const torch::Tensor& grad) {
  for (const auto* t : {&param, &m, &v, &grad})
    if (!t->device().is_cpu() || t->scalar_type() != torch::kFloat32 || !t->is_contiguous() || t->sizes() != param.sizes()) return false;
  // The kernel's arrays must not overlap (no caller passes a gradient that is its parameter; checked all the same).
  return !grad.is_alias_of(param) && !grad.is_alias_of(m) && !grad.is_alias_of(v);
}

void fused_update(torch::Tensor& param, torch::Tensor& m, torch::Tensor& v, const torch::Tensor& grad, const AdamWCoefficients& c) {
  float* p = param.data_ptr<float>();
  float* pm = m.data_ptr<float>();
  float* pv = v.data_ptr<float>();
  const float* g = grad.data_ptr<float>();
  at::parallel_for(0, param.numel(), kGrain, [&](int64_t begin, int64_t end) { adamw_update_f32(p, pm, pv, g, begin, end, c); });
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
      const auto f = [](double x) { return static_cast<float>(x); };
      const AdamWCoefficients k{f(1 - lr * c_.weight_decay), f(c_.beta1), f(c_.beta2), f(1 - c_.beta1), f(1 - c_.beta2), f(bc2), f(c_.eps), f(lr / bc1)};
      fused_update(s.param, s.exp_avg, s.exp_avg_sq, g, k);
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
