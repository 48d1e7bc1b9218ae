// Module entry of lep.node: registers the native surface declared in ts/binding/NativeTypes.ts.
#include <napi.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "addon/AddonJob.h"
#include "addon/AddonModel.h"
#include "addon/AddonSafetensors.h"
#include "addon/convert.h"
#include "common/NodeJob.h"
#include "core/cpu_allocator.h"
#include "core/device.h"
#include "core/distributed.h"
#include "core/fork_gate.h"
#include "core/runtime.h"

namespace lep_addon {
void InitGguf(Napi::Env env, Napi::Object exports);
void InitPropagate(Napi::Env env, Napi::Object exports);
void InitEmbeddingInit(Napi::Env env, Napi::Object exports);

namespace {

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto r = lep::runtime_info();
  Napi::Object o = Napi::Object::New(env);
  o.Set("torchVersion", r.torch_version);
  o.Set("blas", r.blas);
  o.Set("blasPath", r.blas_path);
  o.Set("blasCore", r.blas_core);
  o.Set("blasConfig", r.blas_config);
  o.Set("blasThreads", r.blas_threads);
  o.Set("intraOpThreads", r.intra_op_threads);
  o.Set("interOpThreads", r.inter_op_threads);
  o.Set("trainingSharesPools", r.training_shares_pools);
  o.Set("onednn", r.onednn);
  o.Set("onednnFitsCpu", r.onednn_fits_cpu);
  o.Set("f32Products", r.f32_products);
  o.Set("weights", r.weights);
  o.Set("allocator", r.allocator);
  o.Set("cudaAvailable", r.cuda_available);
  o.Set("cudaDevices", r.cuda_devices);
  o.Set("cudaVersion", r.cuda_version);
  o.Set("parallelInfo", r.parallel_info);
  return o;
}

Napi::Value BlasSelfCheck(const Napi::CallbackInfo& info) {
  auto c = lep::blas_self_check();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("f32Error", c.f32_error);
  o.Set("f64Error", c.f64_error);
  return o;
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  lep::set_threads(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

// A device this libtorch and this machine have, or LEP_BAD_ARGUMENT / LEP_NO_CUDA (core/device.h): for
// commands that check it before they make their outputs (lep train left an empty --out behind).
Napi::Value CheckDevice(const Napi::CallbackInfo& info) {
  if (!info[0].IsString()) throw Napi::TypeError::New(info.Env(), "checkDevice(device: string)");
  lep::parse_device(info[0].As<Napi::String>().Utf8Value());
  return info.Env().Undefined();
}

Napi::Value RunningJobs(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), lep_node::running_jobs().load()); }

// How long a fork waits for running jobs to reach a safe point (core/fork_gate.h): LEP_FORK_WAIT_MS, else
// 10 s; a process that must not block on a spawn that long can set less (the hazard then comes back).
std::chrono::milliseconds ForkWait() {
  const char* v = std::getenv("LEP_FORK_WAIT_MS");
  char* end = nullptr;
  const long ms = v && *v ? std::strtol(v, &end, 10) : -1;
  return std::chrono::milliseconds(ms >= 0 && end && *end == '\0' ? ms : 10000);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  lep::install_fork_gate(ForkWait());
  lep::load_unwinder();
  lep::tune_allocator();
  lep::install_cpu_allocator();
  lep::prepare_distributed_env();
  lep::set_threads(0);
  exports.Set("info", Napi::Function::New(env, Sync<Info>));
  exports.Set("setThreads", Napi::Function::New(env, Sync<SetThreads>));
  exports.Set("blasSelfCheck", Napi::Function::New(env, Sync<BlasSelfCheck>));
  exports.Set("runningJobs", Napi::Function::New(env, Sync<RunningJobs>));
  exports.Set("checkDevice", Napi::Function::New(env, Sync<CheckDevice>));
  exports.Set("exitNow", Napi::Function::New(env, lep_node::ExitNow));
  exports.Set("stopJobs", Napi::Function::New(env, lep_node::StopJobsJs));
  InitSafetensors(env, exports);
  AddonModel::Init(env, exports);
  InitGguf(env, exports);
  InitPropagate(env, exports);
  InitEmbeddingInit(env, exports);
  return exports;
}

}  // namespace
}  // namespace lep_addon

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return lep_addon::Init(env, exports); }
NODE_API_MODULE(lep, InitModule)
