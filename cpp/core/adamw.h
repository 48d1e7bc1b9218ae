// AdamW (decoupled weight decay, PyTorch's update rule) over named parameters, with optional row
// sets: such a parameter updates only the given rows, weight decay touches no other row, and its
// moments are kept for those rows only (k x C instead of V x C: at LLaMa-3-8B shapes, training 46k new
// rows keeps 1.5 GB of moments per matrix instead of 5.7 GB).
// Hand-written rather than torch::optim::AdamW because the row sets and an explicit, file-serialisable
// state (m, v, step per tensor, saved as safetensors for bit-exact resume) are what the method needs.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>

namespace lep {

struct AdamWConfig {
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-5, weight_decay = 0.1;
};

class AdamW {
 public:
  explicit AdamW(AdamWConfig c) : c_(c) {}
  // `rows`: (k,) int64 row ids on the parameter's device, or undefined for the whole tensor.
  // `lr_scale`: this tensor's learning rate is `lr_scale` times the step's (a parameter group's lr,
  // weight decay included, as torch.optim.AdamW applies a group's lr to its decay).
  void add(const std::string& name, const torch::Tensor& master, const torch::Tensor& rows = {}, double lr_scale = 1.0);
  // One update with learning rate `lr`. `grads` by name, float32/64: the tensor's shape, or (k, C) in
  // the order of `rows` for a row-set tensor. A tensor without a gradient is left as it is.
  void step(double lr, const std::map<std::string, torch::Tensor>& grads);
  int64_t steps() const { return step_; }
  void set_steps(int64_t s) { step_ = s; }
  // State tensors by name ("<param>.exp_avg", "<param>.exp_avg_sq", and "<param>.rows" for a row set)
  // for checkpoints. load_state also reads a whole-tensor state into a row set (checkpoints before the
  // row-set state) and refuses another row set.
  std::map<std::string, torch::Tensor> state() const;
  void load_state(const std::map<std::string, torch::Tensor>& state);

 private:
  struct Slot {
    torch::Tensor param, exp_avg, exp_avg_sq, rows;
    double lr_scale = 1.0;
  };
  AdamWConfig c_;
  std::map<std::string, Slot> slots_;
  int64_t step_ = 0;
};

}  // namespace lep
