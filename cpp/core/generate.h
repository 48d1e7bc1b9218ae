// Text generation over a LlamaModel: batched prompts (left-padded), KV cache, greedy or sampled.
#pragma once
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "core/llama_model.h"
#include "core/progress.h"

namespace lep {

struct GenerateOptions {
  int64_t max_new_tokens = 64;
  double temperature = 0.0;  // 0 = greedy
  int64_t top_k = 0;         // 0 = off
  double top_p = 1.0;        // 1 = off
  double repetition_penalty = 1.0;  // HF convention: >1 discourages tokens already in the sequence
  std::set<int64_t> stop_tokens;
  uint64_t seed = 0;
};

struct GenerateResult {
  std::vector<int64_t> tokens;  // new tokens, the stop token included if one ended the sequence
  std::string finish_reason;    // "stop", "length" or "aborted"
};

// Throws lep::Error(LEP_BAD_OPTION) for values outside their range (top_p 2, a negative temperature, ...).
void validate(const GenerateOptions& options);

std::vector<GenerateResult> generate(LlamaModel& model, const std::vector<std::vector<int64_t>>& prompts,
                                     const GenerateOptions& options, const ProgressFn& progress);

}  // namespace lep
