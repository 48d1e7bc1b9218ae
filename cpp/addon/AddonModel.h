// A loaded LlamaModel held by JS. Every method that computes starts a job (AddonJob); a mutex keeps
// one job at a time on a model.
#pragma once
#include <napi.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "common/NodeJob.h"
#include "core/error.h"
#include "core/fork_gate.h"
#include "core/llama_model.h"
#include "core/progress.h"

namespace lep_addon {

// What info() reports about a model.
struct ModelInfo {
  int64_t parameters = 0, lora_parameters = 0;
  std::string device, dtype;
};

struct ModelHolder {
  std::unique_ptr<lep::LlamaModel> model;
  std::timed_mutex busy;  // one job at a time on the model (ModelLock)

  // info() runs on the main thread: it must neither walk the LoRA map while a job changes it (addLora,
  // mergeLora, train with LoRA) nor wait for `busy` (a training job holds it for minutes). It reads this
  // snapshot, which each job refreshes when it lets go of the model (ModelLock).
  ModelInfo info() const {
    std::lock_guard<std::mutex> lock(info_lock_);
    return info_;
  }
  void refresh_info();  // with `busy` held (or before any job can see the model)

 private:
  mutable std::mutex info_lock_;
  ModelInfo info_;
};

// A job's hold on the model: `busy` for the job's length, then the info() snapshot refreshed.
//
// A job that finds the model busy waits outside the fork gate (core/fork_gate.h): the job ahead passes
// safe points while it holds the model, and a fork waiting for this thread's gate would wait for that job,
// which waits for the fork at its next safe point (found: two overlapping generations and a spawn hung,
// the fork going ahead after its 10 s and OpenBLAS's pool lost under the running one). And it waits
// stoppably: an aborted job leaves at once, not when the job ahead ends.
class ModelLock {
 public:
  explicit ModelLock(ModelHolder& h) : h_(h), lock_(h.busy, std::try_to_lock) {
    if (lock_.owns_lock()) return;
    lep::ForkSafeRegion waiting;
    while (!lock_.try_lock_for(std::chrono::milliseconds(20)))
      if (lep::job_stop_requested()) throw lep::Error("LEP_ABORTED", "stopped while it waited for another job on the model");
  }
  // Runs while `busy` is still held (members are destroyed after the body). A failed refresh (it only
  // reads shapes) keeps the previous snapshot rather than throwing from a destructor.
  ~ModelLock() {
    try {
      h_.refresh_info();
    } catch (...) {
    }
  }
  ModelLock(const ModelLock&) = delete;
  ModelLock& operator=(const ModelLock&) = delete;

 private:
  ModelHolder& h_;
  std::unique_lock<std::timed_mutex> lock_;
};

class AddonModel : public Napi::ObjectWrap<AddonModel> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  static Napi::Object NewInstance(Napi::Env env, std::shared_ptr<ModelHolder> holder);
  explicit AddonModel(const Napi::CallbackInfo& info);

 private:
  Napi::Value Score(const Napi::CallbackInfo& info);
  Napi::Value Generate(const Napi::CallbackInfo& info);
  Napi::Value Save(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Train(const Napi::CallbackInfo& info);         // AddonTrain.cpp
  Napi::Value LossAndGrads(const Napi::CallbackInfo& info);  // AddonTrain.cpp
  Napi::Value AddLora(const Napi::CallbackInfo& info);       // AddonLora.cpp
  Napi::Value LoadLora(const Napi::CallbackInfo& info);
  Napi::Value SaveLora(const Napi::CallbackInfo& info);
  Napi::Value MergeLora(const Napi::CallbackInfo& info);
  Napi::Value MergeLoraFile(const Napi::CallbackInfo& info);
  void Dispose(const Napi::CallbackInfo& info);
  std::shared_ptr<ModelHolder> holder(Napi::Env env);
  // A method as registered: its exceptions become JS errors as a job's would (common/JsError.h).
  template <Napi::Value (AddonModel::*M)(const Napi::CallbackInfo&)>
  Napi::Value Guarded(const Napi::CallbackInfo& info);

  std::shared_ptr<ModelHolder> holder_;
};

torch::ScalarType dtype_arg(Napi::Env env, const std::string& s);
// "cpu", "cuda" or "cuda:N"; LEP_NO_CUDA when this libtorch has no CUDA device.
torch::Device device_arg(Napi::Env env, const std::string& s);
// {rank, alpha, dropout, targets, layers, modulesToSave, init} -> lep::LoraConfig (AddonLora.cpp).
lep::LoraConfig lora_from_js(const Napi::Object& o);

// loadModel({config, files, device, dtype, seed?, initStd?, embedStd?}, onProgress) -> {promise, abort}
// With no files the model is randomly initialised from `seed`.
Napi::Value LoadModel(const Napi::CallbackInfo& info);
Napi::Value CheckModelWeights(const Napi::CallbackInfo& info);

}  // namespace lep_addon
