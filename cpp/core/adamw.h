// AdamW (decoupled weight decay, PyTorch's update rule) over named float32/64 master tensors. Rows-only
// training hands it the trained rows' master copy (k x C, trainer.cpp), so a row set's moments are k x C.
// Hand-written rather than torch::optim::AdamW because gradients come by name (a row set's are gathered
// from the model's whole-matrix gradient) and an explicit, file-serialisable state (m, v, step per tensor,
// saved as safetensors for bit-exact resume) is what the method needs.
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
  // `lr_scale`: this tensor's learning rate is `lr_scale` times the step's (a parameter group's lr,
  // weight decay included, as torch.optim.AdamW applies a group's lr to its decay).
  void add(const std::string& name, const torch::Tensor& master, double lr_scale = 1.0);
  // One update with learning rate `lr`; `grads` by name, each the master's shape and dtype. A tensor
  // without a gradient is left as it is.
  void step(double lr, const std::map<std::string, torch::Tensor>& grads);
  int64_t steps() const { return step_; }
  void set_steps(int64_t s) { step_ = s; }
  // State tensors by name ("<param>.exp_avg", "<param>.exp_avg_sq") for checkpoints; load_state
  // refuses tensors of another shape (LEP_RESUME_MISMATCH).
  std::map<std::string, torch::Tensor> state() const;
  void load_state(const std::map<std::string, torch::Tensor>& state);

 private:
  struct Slot {
    torch::Tensor param, exp_avg, exp_avg_sq;
    double lr_scale = 1.0;
  };
  AdamWConfig c_;
  std::map<std::string, Slot> slots_;
  int64_t step_ = 0;
};

}  // namespace lep
