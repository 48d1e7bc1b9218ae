#include "core/compute_threads.h"

#include "core/error.h"

namespace lep {

namespace {
bool half_weights(LlamaModel& model) {
  const auto t = model.param("model.embed_tokens.weight").scalar_type();
  return t == torch::kBFloat16 || t == torch::kHalf;
}

// Whether the model's float32 products go to oneDNN in this phase (compute_threads.h).
bool onednn_for(LlamaModel& model, Phase phase) {
  const auto products = float32_products();
  if (!products.error.empty()) throw Error("LEP_BAD_ARGUMENT", products.error);
  const bool f32_cpu = model.device().is_cpu() && model.param("model.embed_tokens.weight").scalar_type() == torch::kFloat32;
  return f32_cpu && phase != Phase::kDecode && products.onednn;
}

ThreadPool pool_for(LlamaModel& model, Phase phase, bool onednn) {
  if (!model.device().is_cpu()) return ThreadPool::kBlas;
  if (half_weights(model)) return ThreadPool::kOpenMp;  // oneDNN runs every product
  switch (phase) {
    case Phase::kTraining: return training_shares_pools() ? ThreadPool::kOpenMp : ThreadPool::kBlas;
    case Phase::kPrompt: return onednn ? ThreadPool::kOpenMp : ThreadPool::kBlas;
    case Phase::kDecode: break;
  }
  return ThreadPool::kBlas;
}
}  // namespace

ComputeThreads::ComputeThreads(LlamaModel& model, Phase phase)
    : model_(model), before_(model.onednn_products()), onednn_(onednn_for(model, phase)), pool_(pool_for(model, phase, onednn_)) {
  model.set_onednn_products(onednn_);
}

}  // namespace lep
