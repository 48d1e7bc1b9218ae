#include "core/adamw.h"

#include <cmath>

#include "core/error.h"

namespace lep {

void AdamW::add(const std::string& name, const torch::Tensor& master, const torch::Tensor& rows, double lr_scale) {
  auto moments = [&] {
    return rows.defined() ? torch::zeros({rows.size(0), master.size(1)}, master.options()) : torch::zeros_like(master);
  };
  slots_[name] = Slot{master, moments(), moments(), rows, lr_scale};
}

void AdamW::step(double step_lr, const std::map<std::string, torch::Tensor>& grads) {
  torch::NoGradGuard no_grad;
  ++step_;
  const double bc1 = 1 - std::pow(c_.beta1, static_cast<double>(step_));
  const double bc2 = 1 - std::pow(c_.beta2, static_cast<double>(step_));
  for (auto& [name, s] : slots_) {
    auto it = grads.find(name);
    if (it == grads.end() || !it->second.defined()) continue;
    const auto& g = it->second;
    const double lr = step_lr * s.lr_scale;
    // A row set updates a gathered copy of its rows with the same arithmetic as a whole tensor, then
    // writes it back: the other rows are not read or written at all.
    auto p = s.rows.defined() ? s.param.index_select(0, s.rows) : s.param;
    p.mul_(1 - lr * c_.weight_decay);
    s.exp_avg.mul_(c_.beta1).add_(g, 1 - c_.beta1);
    s.exp_avg_sq.mul_(c_.beta2).addcmul_(g, g, 1 - c_.beta2);
    auto denom = (s.exp_avg_sq / bc2).sqrt().add_(c_.eps);
    p.addcdiv_(s.exp_avg, denom, -lr / bc1);
    if (s.rows.defined()) s.param.index_copy_(0, s.rows, p);
  }
}

std::map<std::string, torch::Tensor> AdamW::state() const {
  std::map<std::string, torch::Tensor> out;
  for (const auto& [name, s] : slots_) {
    out[name + ".exp_avg"] = s.exp_avg;
    out[name + ".exp_avg_sq"] = s.exp_avg_sq;
    if (s.rows.defined()) out[name + ".rows"] = s.rows;
  }
  return out;
}

void AdamW::load_state(const std::map<std::string, torch::Tensor>& state) {
  torch::NoGradGuard no_grad;
  for (auto& [name, s] : slots_) {
    auto saved_rows = state.find(name + ".rows");
    if (s.rows.defined() && saved_rows != state.end() && !torch::equal(saved_rows->second.to(torch::kCPU), s.rows.to(torch::kCPU)))
      throw Error("LEP_RESUME_MISMATCH", "the checkpoint's optimizer state of '" + name + "' is for another set of trained rows" +
                                             "\nHINT: resume with the rows it was trained with, or start afresh (--no-resume).");
    for (const auto& kv : {std::pair<const char*, torch::Tensor*>{".exp_avg", &s.exp_avg}, {".exp_avg_sq", &s.exp_avg_sq}}) {
      const std::string key = kv.first;
      torch::Tensor* dst = kv.second;
      auto it = state.find(name + key);
      if (it == state.end()) throw Error("LEP_BAD_CHECKPOINT", "optimizer state lacks '" + name + key + "'");
      auto src = it->second;
      // A whole-tensor state (every checkpoint before row-set state) into a row set: its rows.
      if (s.rows.defined() && src.dim() == 2 && src.size(0) == s.param.size(0) && src.size(0) != s.rows.size(0))
        src = src.to(dst->device()).index_select(0, s.rows);
      if (src.sizes() != dst->sizes())
        throw Error("LEP_RESUME_MISMATCH", "the checkpoint's optimizer state '" + name + key + "' has shape " + c10::str(src.sizes()) +
                                               ", this run needs " + c10::str(dst->sizes()) +
                                               "\nHINT: resume with the settings it was trained with, or start afresh (--no-resume).");
      dst->copy_(src);
    }
  }
}

}  // namespace lep
