#include "core/compute_threads.h"

#include "core/error.h"

namespace lep {

namespace {
bool half_weights(LlamaModel& model) {
  const auto t = model.param("model.embed_tokens.weight").scalar_type();
  return t == torch::kBFloat16 || t == torch::kHalf;
}

// Whether the model's float32 products go to oneDNN in this work (compute_threads.h).
bool onednn_for(LlamaModel& model, Work work) {
  const auto products = float32_products();
  if (!products.error.empty()) throw Error("LEP_BAD_ARGUMENT", products.error);
  const bool f32_cpu =
      model.device().is_cpu() && model.param("model.embed_tokens.weight").scalar_type() == torch::kFloat32;
  return f32_cpu && work != Work::kOneRow && products.onednn;
}

ThreadPool pool_for(LlamaModel& model, Work work, bool onednn) {
  if (!model.device().is_cpu()) return ThreadPool::kBlas;
  if (half_weights(model)) return ThreadPool::kOpenMp;  // oneDNN runs every product
  if (work == Work::kTraining) return training_shares_pools() ? ThreadPool::kOpenMp : ThreadPool::kBlas;
  return onednn ? ThreadPool::kOpenMp : ThreadPool::kBlas;
}
}  // namespace

ComputeThreads::ComputeThreads(LlamaModel& model, Work work)
    : model_(model),
      work_(work),
      before_(model.onednn_products()),
      onednn_(onednn_for(model, work)),
      pool_(pool_for(model, work, onednn_)) {
  model.set_onednn_products(onednn_);
}

}  // namespace lep
