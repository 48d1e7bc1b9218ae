// Module entry of lep.node: registers the native surface declared in ts/binding/NativeTypes.ts.
#include <napi.h>

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "addon/AddonJob.h"
#include "addon/AddonModel.h"
#include "addon/AddonSafetensors.h"
#include "addon/convert.h"
#include "common/NodeJob.h"
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
  o.Set("cudaAvailable", r.cuda_available);
  o.Set("cudaDevices", r.cuda_devices);
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

Napi::Value RunningJobs(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), lep_node::running_jobs().load()); }

// Node starts child processes with fork(), and OpenBLAS's pre-fork handler tears its thread pool down,
// under a threaded BLAS call a job may be in: that job then waits forever (ts/binding/forkWhenIdle.ts).
// lep's own children wait for idle; a program's may not. This handler says so, once, when a fork comes
// while a job runs, so that such a hang is not a silent one. It runs in the forking thread before the
// fork, where only async-signal-safe calls belong: an atomic and write(2).
void WarnForkDuringJob() {
  if (lep_node::running_jobs().load() == 0) return;
  static std::atomic<bool> said{false};
  if (said.exchange(true)) return;
  static const char message[] =
      "lep: a child process is starting while a lep job computes in this process: OpenBLAS's pre-fork handler can "
      "leave that job waiting forever. Start children with forkWhenIdle(() => spawn(...)) from lep, or from another "
      "process (docs/architecture.md, \"Known hazard\"). Said once.\n";
  ssize_t written = write(STDERR_FILENO, message, sizeof message - 1);
  (void)written;  // nothing to do if stderr is gone
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  static std::once_flag fork_warning;
  std::call_once(fork_warning, [] { pthread_atfork(WarnForkDuringJob, nullptr, nullptr); });
  lep::load_unwinder();
  lep::tune_allocator();
  lep::set_threads(0);
  exports.Set("info", Napi::Function::New(env, Sync<Info>));
  exports.Set("setThreads", Napi::Function::New(env, Sync<SetThreads>));
  exports.Set("blasSelfCheck", Napi::Function::New(env, Sync<BlasSelfCheck>));
  exports.Set("runningJobs", Napi::Function::New(env, Sync<RunningJobs>));
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
