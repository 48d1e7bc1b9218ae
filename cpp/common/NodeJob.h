// Runs one native job on its own thread and hands back {promise, abort}: the job runner shared by
// lep.node (addon/AddonJob.h) and lep_spm.node (spm/SpmJob.h). Header-only and free of libtorch on
// purpose: lep_spm.node must not pull in torch (libsentencepiece's protobuf clashes with libtorch's), so
// what differs between the two addons comes in through Traits.
//
// Progress events and the final result travel through one ThreadSafeFunction queue, in order, so the
// promise settles only after every progress callback has been delivered (a plain AsyncWorker plus a
// ThreadSafeFunction can settle first). A JS progress callback that returns false or throws sets the
// abort flag, which the work sees as its progress function returning false at its next report, where it
// stops; a throw becomes the rejection. abort() from JS sets the same flag.
//
// Traits supplies:
//   using Event = ...;                      the progress event the work reports
//   static constexpr const char* kResourceName;   names the ThreadSafeFunction (diagnostics)
//   static void OnThreadStart();            runs first on the job's thread
//   static void OnThreadEnd();              runs on the job's thread after the work (success or failure),
//                                           before the result is handed over; the work's temporaries are
//                                           freed by then, its captures and result not yet
//   static Napi::Value EventToJs(Napi::Env, const Event&);
//   static std::optional<JobFailure> Describe(std::exception_ptr);   the addon's own exception types as
//                                           (code, message); nullopt for the rest (common/JsError.h)
#pragma once
#include <napi.h>

#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <thread>

#include "common/JsError.h"

namespace lep_node {

// Jobs of this addon started and not yet settled (each .node has its own count). lep.node exports it:
// lep starts child processes only while it is 0, because Node forks to start them and OpenBLAS's
// pre-fork handler shuts its thread pool down, so a job inside a multithreaded BLAS call at that
// moment waits forever for work the pool lost (ts/binding/forkWhenIdle.ts).
inline std::atomic<int>& running_jobs() {
  static std::atomic<int> n{0};
  return n;
}

template <class R, class Traits>
class NodeJob {
 public:
  using Event = typename Traits::Event;
  // Reports progress; returns false once the caller asked to stop.
  using ProgressFn = std::function<bool(const Event&)>;
  using Work = std::function<R(const ProgressFn&)>;
  using Convert = std::function<Napi::Value(Napi::Env, R&)>;

  static Napi::Value Start(Napi::Env env, Napi::Value on_progress, Work work, Convert convert) {
    auto* job = new NodeJob(env, on_progress, std::move(work), std::move(convert));
    ++running_jobs();  // down again when the promise settles, on this (the main) thread
    Napi::Object handle = Napi::Object::New(env);
    handle.Set("promise", job->deferred_.Promise());
    auto abort = job->abort_;
    handle.Set("abort", Napi::Function::New(env, [abort](const Napi::CallbackInfo&) { *abort = true; }));
    try {
      std::thread([job] { job->Run(); }).detach();
    } catch (const std::system_error& e) {
      // No thread for the job (memory for its stack, or the thread limit): undo Start, say so; the JS
      // caller gets this as a LepError (binding/runJob.ts) instead of a job that never settles.
      --running_jobs();
      job->tsfn_.Release();
      delete job;
      throw MakeError(env, "LEP_OUT_OF_MEMORY", std::string("cannot start a thread for the job (") + e.what() +
                                                    "; a memory limit, or the thread limit `ulimit -u`)\n" + lep::out_of_memory_hint());
    }
    return handle;
  }

 private:
  struct Item {
    enum Kind { kProgress, kDone, kFail } kind;
    Event event;
    std::string code, message;
  };

  NodeJob(Napi::Env env, Napi::Value on_progress, Work work, Convert convert)
      : deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)), convert_(std::move(convert)) {
    if (on_progress.IsFunction()) on_progress_ = Napi::Persistent(on_progress.As<Napi::Function>());
    tsfn_ = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                          Traits::kResourceName, 0, 1);
  }

  void Run() {
    Traits::OnThreadStart();
    Item* final_item = new Item{Item::kDone, {}, "", ""};
    try {
      result_.emplace(work_([this](const Event& ev) {
        if (!on_progress_.IsEmpty()) tsfn_.BlockingCall(new Item{Item::kProgress, ev, "", ""}, Deliver(this));
        return !abort_->load();
      }));
    } catch (...) {
      JobFailure f = lep_node::Describe<Traits>(std::current_exception());
      *final_item = Item{Item::kFail, {}, std::move(f.code), std::move(f.message)};
    }
    Traits::OnThreadEnd();
    // The main thread deletes the job when it handles the final item, possibly before BlockingCall
    // returns here: touch only a local copy of the handle from now on.
    Napi::ThreadSafeFunction tsfn = tsfn_;
    tsfn.BlockingCall(final_item, Deliver(this));
    tsfn.Release();
  }

  static auto Deliver(NodeJob* job) {
    return [job](Napi::Env env, Napi::Function, Item* item) {
      std::unique_ptr<Item> own(item);
      job->OnItem(env, *item);
    };
  }

  void OnItem(Napi::Env env, const Item& item) {
    Napi::HandleScope scope(env);
    if (item.kind == Item::kProgress) {
      if (callback_error_) return;
      try {
        Napi::Value ret = on_progress_.Call({Traits::EventToJs(env, item.event)});
        if (ret.IsBoolean() && !ret.As<Napi::Boolean>().Value()) *abort_ = true;
      } catch (const Napi::Error& e) {  // the user's callback threw: stop the job, reject with that error
        *abort_ = true;
        callback_error_ = Napi::Persistent(e.Value());
      }
      return;
    }
    if (callback_error_) {
      deferred_.Reject(callback_error_.Value());
    } else if (item.kind == Item::kFail) {
      deferred_.Reject(MakeError(env, item.code, item.message).Value());
    } else {
      try {
        deferred_.Resolve(convert_(env, *result_));
      } catch (const Napi::Error& e) {
        deferred_.Reject(e.Value());
      } catch (...) {
        const JobFailure f = lep_node::Describe<Traits>(std::current_exception());
        deferred_.Reject(MakeError(env, f.code, f.message).Value());
      }
    }
    --running_jobs();  // after settling: code awaiting the promise sees the job over, then 0 here
    delete this;  // last item: the thread has finished with the job
  }

  Napi::Promise::Deferred deferred_;
  Work work_;
  Convert convert_;
  Napi::FunctionReference on_progress_;
  Napi::ObjectReference callback_error_;
  Napi::ThreadSafeFunction tsfn_;
  std::shared_ptr<std::atomic<bool>> abort_ = std::make_shared<std::atomic<bool>>(false);
  std::optional<R> result_;
};

}  // namespace lep_node
