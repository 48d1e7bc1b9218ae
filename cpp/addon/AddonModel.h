// A loaded LlamaModel held by JS. Every method that computes starts a job (AddonJob); a mutex keeps
// one job at a time on a model.
#pragma once
#include <napi.h>

#include <memory>
#include <mutex>

#include "core/llama_model.h"

namespace lep_addon {

struct ModelHolder {
  std::unique_ptr<lep::LlamaModel> model;
  std::mutex busy;
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
  void Dispose(const Napi::CallbackInfo& info);
  std::shared_ptr<ModelHolder> holder(Napi::Env env);

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
