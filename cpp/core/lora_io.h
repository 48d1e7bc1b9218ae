// LoRA adapters on disk in PEFT's layout: adapter_model.safetensors holds "base_model.model.<module>.lora_A.weight"
// / ".lora_B.weight" for every adapted projection and "base_model.model.<param>" for every fully trained module
// (PEFT strips its "modules_to_save.default" wrapper when saving). adapter_config.json is written by the caller.
#pragma once
#include <string>

#include "core/llama_model.h"

namespace lep {

// Writes the model's adapters and its modules to save (in `dtype`) to `path`, atomically.
void save_lora(LlamaModel& model, const std::string& path, torch::ScalarType dtype);

// Adds adapters described by `config` to the model and fills them, and the modules to save, from `path`.
// Every tensor the config implies must be present with its shape; a tensor the config does not describe
// is an error (the config and the file disagree). skip_modules_to_save: load only the adapters and leave
// the model's own modules to save (a CPT adapter merged into a propagated model whose embeddings and head
// came through LEP instead).
void load_lora(LlamaModel& model, const LoraConfig& config, const std::string& path, bool skip_modules_to_save = false);

// The same adapter merged into the model's weights straight from the file (W += (alpha / r) · B A in
// float32, from the file's A and B as they are, rounded once to the weight's dtype), with the modules to
// save copied in. For a float32 model that is load_lora then merge_lora, bit for bit; a bf16 model gets
// the bits a float32 copy of it would, stored in bf16 (load_lora would round A and B to bf16 first), at
// half the memory. Refused when nothing would change (no targets, and its modules to save skipped).
void merge_lora_file(LlamaModel& model, const LoraConfig& config, const std::string& path, bool skip_modules_to_save = false);

}  // namespace lep
