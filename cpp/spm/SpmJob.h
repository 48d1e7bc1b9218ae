// The SentencePiece addon's job runner: common/NodeJob.h (one thread per job, progress and result through
// one queue, {promise, abort}) with a progress event of its own; errors as common/JsError.h makes them. No libtorch
// here or in anything this includes: lep_spm.node must not pull in torch (protobuf symbol clash).
#pragma once
#include <napi.h>

#include <cstdint>
#include <exception>
#include <functional>
#include <string>

#include "common/NodeJob.h"
#include "spm/SpmError.h"

namespace lep_spm {

struct Progress {
  std::string phase;
  int64_t step = 0;
  int64_t total = 0;
};

// Reports progress; returns false once the caller asked to stop.
using ProgressFn = std::function<bool(const Progress&)>;

struct SpmJobTraits {
  using Event = Progress;
  static constexpr const char* kResourceName = "lep-spm-job";

  static void OnThreadStart() {}
  static void AtProgress() {}
  static void OnThreadEnd() {}

  static Napi::Value EventToJs(Napi::Env env, const Event& event) {
    Napi::Object ev = Napi::Object::New(env);
    // As lep.node's events (addon/convert.cpp): `done` of `total`; `step` is the 0.1.0 name of `done`.
    ev.Set("phase", event.phase);
    ev.Set("done", Napi::Number::New(env, static_cast<double>(event.step)));
    ev.Set("total", Napi::Number::New(env, static_cast<double>(event.total)));
    ev.Set("step", Napi::Number::New(env, static_cast<double>(event.step)));
    return ev;
  }

  // SpmError is lep::Error; no libtorch here.
  static lep_node::JobFailure Describe(std::exception_ptr ep) { return lep::describe_failure(ep); }
};

// SpmJob<R>::Start(env, onProgress, work, convert); work takes a const ProgressFn&.
template <class R>
using SpmJob = lep_node::NodeJob<R, SpmJobTraits>;

// A synchronous module function of lep_spm.node, its exceptions turned into JS errors as a job's would be.
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value Sync(const Napi::CallbackInfo& info) {
  return lep_node::Sync<SpmJobTraits, F>(info);
}

}  // namespace lep_spm
