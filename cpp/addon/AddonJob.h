// The libtorch addon's job runner: common/NodeJob.h (one thread per job, progress and result through one
// queue, {promise, abort}) with what is torch-specific here: thread settings applied on the job's thread,
// libtorch's exceptions described first (core/torch_failure.h), lep::ProgressEvent as the progress event.
// The traits also guard the addon's synchronous calls (Sync below).
#pragma once
#include <napi.h>

#include <atomic>
#include <exception>
#include <string>

#include "addon/errors.h"
#include "common/NodeJob.h"
#include "core/cpu_allocator.h"
#include "core/error.h"
#include "core/fork_gate.h"
#include "core/progress.h"
#include "core/runtime.h"
#include "core/torch_failure.h"

namespace lep_addon {

struct TorchJobTraits {
  using Event = lep::ProgressEvent;
  static constexpr const char* kResourceName = "lep-job";

  // OpenMP's thread count is per thread: re-apply the setting on the job's thread. The job computes
  // inside the fork gate (core/fork_gate.h): a fork waits for one of its safe points.
  static void OnThreadStart() {
    ++working();
    lep::cpu_job_started();
    lep::apply_threads();
    lep::fork_gate_enter();
  }
  // Each progress report is a safe point: no BLAS call is under way.
  static void AtProgress() { lep::fork_safe_point(); }
  // The allocator keeps freed memory for reuse while jobs run (lep::tune_allocator); the last job to
  // finish its work gives it back. Not every job: malloc_trim trims every thread's arena, so a short job
  // (an evaluation's batch) ending beside a training job would make that job fault its pages in again.
  static void OnThreadEnd() {
    lep::fork_gate_leave();
    lep::cpu_job_ended();
    if (--working() == 0) lep::release_free_memory();
  }
  // Jobs of lep.node whose work is running on their threads.
  static std::atomic<int>& working() {
    static std::atomic<int> n{0};
    return n;
  }

  static Napi::Value EventToJs(Napi::Env env, const Event& ev) { return progress_to_js(env, ev); }

  static lep_node::JobFailure Describe(std::exception_ptr ep) { return lep::describe_torch_failure(ep); }
};

// AddonJob<R>::Start(env, onProgress, work, convert); work takes a const lep::ProgressFn&.
template <class R>
using AddonJob = lep_node::NodeJob<R, TorchJobTraits>;

// A synchronous module function of lep.node, its exceptions turned into JS errors as a job's would be;
// the blocks it frees are reused within the call as a job's are (core/cpu_allocator.h).
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value Sync(const Napi::CallbackInfo& info) {
  lep::CpuJobScope scope;
  return lep_node::Sync<TorchJobTraits, F>(info);
}

}  // namespace lep_addon
