#include "core/adamw.h"

#include <cmath>

#include "core/error.h"

namespace lep {

void AdamW::add(const std::string& name, const torch::Tensor& master, const torch::Tensor& row_mask, double lr_scale) {
  slots_[name] = Slot{master, torch::zeros_like(master), torch::zeros_like(master), row_mask, lr_scale};
}

void AdamW::step(double step_lr) {
  torch::NoGradGuard no_grad;
  ++step_;
  const double bc1 = 1 - std::pow(c_.beta1, static_cast<double>(step_));
  const double bc2 = 1 - std::pow(c_.beta2, static_cast<double>(step_));
  for (auto& [name, s] : slots_) {
    auto g = s.param.grad();
    if (!g.defined()) continue;
    const double lr = step_lr * s.lr_scale;
    if (s.row_mask.defined()) {
      // Only the selected rows move: gradients, moments and decay elsewhere stay exactly zero/unchanged.
      auto m = s.row_mask.view({-1, 1}).to(g.scalar_type());
      g = g * m;
      s.exp_avg.mul_(1 - (1 - c_.beta1) * m).add_(g, 1 - c_.beta1);
      s.exp_avg_sq.mul_(1 - (1 - c_.beta2) * m).addcmul_(g, g, 1 - c_.beta2);
      auto update = (s.exp_avg / bc1) / ((s.exp_avg_sq / bc2).sqrt() + c_.eps) + c_.weight_decay * s.param;
      s.param.sub_(update * m * lr);
    } else {
      s.param.mul_(1 - lr * c_.weight_decay);
      s.exp_avg.mul_(c_.beta1).add_(g, 1 - c_.beta1);
      s.exp_avg_sq.mul_(c_.beta2).addcmul_(g, g, 1 - c_.beta2);
      auto denom = (s.exp_avg_sq / bc2).sqrt().add_(c_.eps);
      s.param.addcdiv_(s.exp_avg, denom, -lr / bc1);
    }
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
      dst->copy_(it->second);
    }
  }
}

}  // namespace lep
