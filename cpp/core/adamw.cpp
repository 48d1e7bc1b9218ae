#include "core/adamw.h"

#include <cmath>

#include "core/error.h"
#include "core/fork_gate.h"

namespace lep {

void AdamW::add(const std::string& name, const torch::Tensor& master, double lr_scale) {
  fork_safe_point();  // between two tensors' moments (core/fork_gate.h)
  slots_[name] = Slot{master, torch::zeros_like(master), torch::zeros_like(master), lr_scale};
}

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
