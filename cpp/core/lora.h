// LoRA (Hu et al. 2021) as Hugging Face PEFT defines it: a frozen projection W gains a trainable low-rank
// update, y = x Wᵀ + (alpha / r) · B A dropout(x), with A (r × in) and B (out × r). PEFT's default
// initialisation (A Kaiming-uniform, B zero) leaves the model's output unchanged before training. Names
// follow PEFT's saved layout ("base_model.model." + module + ".lora_A.weight"), so adapters written here
// load in PEFT and adapters trained by PEFT load here.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "core/model_config.h"

namespace lep {

struct LoraConfig {
  int64_t rank = 8;
  double alpha = 16;
  double dropout = 0.0;
  // Projection names as in HF checkpoints; docs/method.md §5's instruction-tuning calibration uses all seven.
  std::vector<std::string> targets{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  std::vector<int64_t> layers;                // decoder layers that get adapters; empty = all
  std::vector<std::string> modules_to_save;   // fully trained modules: "embed_tokens", "lm_head"
  std::string init = "peft";                  // "peft": B = 0 (output unchanged); "random": B random too (tests)
  double scale() const { return alpha / static_cast<double>(rank); }
};

struct LoraAdapter {
  torch::Tensor a;  // (r, in)
  torch::Tensor b;  // (out, r)
  double scale = 1;
};

// The adapted modules ("model.layers.3.self_attn.q_proj") of a config on a model, in layer order; throws a
// clear error for an unknown target, a layer outside the model, or a rank above a projection's size.
std::vector<std::string> lora_modules(const LoraConfig& c, const ModelConfig& m);

// The parameter a fully trained module stands for ("lm_head" -> "lm_head.weight"; on a tied model the one
// matrix is "model.embed_tokens.weight").
std::string module_to_save_param(const std::string& module, const ModelConfig& m);

// PEFT's saved names: the prefix PeftModel/LoraModel wrapping adds to every key.
inline const char* kPeftPrefix = "base_model.model.";

}  // namespace lep
