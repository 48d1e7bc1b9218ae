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
// A job outliving its JS environment crashed the process: a worker terminated mid-job left the thread to
// call a freed ThreadSafeFunction (SIGABRT), and process.exit() or an uncaught throw mid-job ran libtorch's
// and oneDNN's static destructors under the computing thread (SIGSEGV). So each job registers its life
// (JobLife): an environment cleanup hook (a worker's end) stops the job and waits for its thread, and
// the addons' `stopJobs`, called from lep's process 'exit' listener (ts/binding/loadNative.ts), stops the
// main environment's jobs before exit() runs the destructors.
//
// Traits supplies:
//   using Event = ...;                      the progress event the work reports
//   static constexpr const char* kResourceName;   names the ThreadSafeFunction (diagnostics)
//   static void OnThreadStart();            runs first on the job's thread
//   static void AtProgress();               runs on the job's thread at each progress report (a safe point)
//   static void OnThreadEnd();              runs on the job's thread after the work (success or failure),
//                                           before the result is handed over; the work's temporaries are
//                                           freed by then, its captures and result not yet
//   static Napi::Value EventToJs(Napi::Env, const Event&);
//   static JobFailure Describe(std::exception_ptr);   an exception as (code, message): core/failure.h's
//                                           describe_failure, or describe_torch_failure in lep.node
#pragma once
#include <fcntl.h>
#include <napi.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "common/JsError.h"
#include "core/progress.h"

namespace lep_node {

// Jobs of this addon started and not yet settled (each .node has its own count). lep.node exports it:
// lep starts child processes only while it is 0, because Node forks to start them and OpenBLAS's
// pre-fork handler shuts its thread pool down, so a job inside a multithreaded BLAS call at that
// moment waits forever for work the pool lost (ts/binding/forkWhenIdle.ts).
inline std::atomic<int>& running_jobs() {
  static std::atomic<int> n{0};
  return n;
}

// A job's stop flag and whether its thread has finished, shared by the job, its thread, the JS handle's
// abort() and the registry below; it outlives the job object, which the main thread deletes.
struct JobLife {
  explicit JobLife(napi_env e) : env(e) {}
  const napi_env env;
  std::atomic<bool> abort{false};
  std::mutex m;
  std::condition_variable cv;
  bool finished = false;  // the thread has run its last line (guarded by m)
  bool orphaned = false;  // its environment ended without waiting for it: no more calls into it (guarded by m)

  void Finish() {
    {
      std::lock_guard<std::mutex> lock(m);
      finished = true;
    }
    cv.notify_all();
  }
  bool WaitUntil(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(m);
    return cv.wait_until(lock, deadline, [this] { return finished; });
  }
};

// The jobs of this addon whose threads have not finished.
inline std::mutex& live_jobs_mutex() {
  static std::mutex m;
  return m;
}
inline std::vector<std::shared_ptr<JobLife>>& live_jobs() {
  static std::vector<std::shared_ptr<JobLife>> jobs;
  return jobs;
}

// Sets the stop flag of `env`'s live jobs, and of jobs orphaned by an ended worker (still computing,
// so exit() must not run the destructors under them either), and waits for their threads until
// `deadline`; true when all have finished. Each job stops at its next progress report.
inline bool StopJobs(napi_env env, std::chrono::steady_clock::time_point deadline) {
  std::vector<std::shared_ptr<JobLife>> mine;
  {
    std::lock_guard<std::mutex> lock(live_jobs_mutex());
    for (const auto& j : live_jobs()) {
      std::lock_guard<std::mutex> life(j->m);
      if (j->env == env || j->orphaned) mine.push_back(j);
    }
  }
  for (const auto& j : mine) j->abort = true;
  bool all = true;
  for (const auto& j : mine) all = j->WaitUntil(deadline) && all;
  return all;
}

// stopJobs(waitMs) -> boolean, from the main thread's process 'exit' listener (ts/binding/loadNative.ts):
// StopJobs for this environment; false when a job is still computing after waitMs (a long step between
// two progress reports), and the listener then ends the process with exitNow.
inline Napi::Value StopJobsJs(const Napi::CallbackInfo& info) {
  const auto wait = std::chrono::milliseconds(info[0].As<Napi::Number>().Int64Value());
  return Napi::Boolean::New(info.Env(), StopJobs(info.Env(), std::chrono::steady_clock::now() + wait));
}

// exitNow(code): ends the process without C++ static destructors (ts/cli/interrupt.ts, exitProcess, and
// the 'exit' listener above): exit() runs libtorch's and lep's (the dispatcher's tables, the oneDNN kernel
// cache) under a job thread still computing with them, which segfaulted on Ctrl-C, and OpenBLAS's, which
// joins its workers and waited forever on one stuck retrying an allocation under a memory limit. The
// caller has run its exit hooks. _Exit also skips Node's own atexit hook that gives stdin, stdout and
// stderr back their flags: Node makes a pipe or socket among them non-blocking, on the open file that the
// parent shares (a shell script, `| tee`, `/usr/bin/time`), whose writes after lep then failed with EAGAIN
// (GNU time's report cut short, exit 1). Such a pipe or terminal started blocking (a shell's, or one a
// parent's libuv made blocking for its child), so blocking is what this gives back.
inline Napi::Value ExitNow(const Napi::CallbackInfo& info) {
  std::fflush(nullptr);
  for (int fd = 0; fd <= 2; ++fd) {
    struct stat st {};
    const int flags = fcntl(fd, F_GETFL);
    if (flags >= 0 && (flags & O_NONBLOCK) && fstat(fd, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || isatty(fd)))
      fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  }
  std::_Exit(info[0].As<Napi::Number>().Int32Value());
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
    auto life = job->life_;
    handle.Set("abort", Napi::Function::New(env, [life](const Napi::CallbackInfo&) { life->abort = true; }));
    {
      std::lock_guard<std::mutex> lock(live_jobs_mutex());
      live_jobs().push_back(life);
    }
    try {
      std::thread([job] { job->Run(); }).detach();
    } catch (const std::system_error& e) {
      // No thread for the job (memory for its stack, or the thread limit): undo Start, say so; the JS
      // caller gets this as a LepError (binding/runJob.ts) instead of a job that never settles.
      --running_jobs();
      Forget(life);
      job->tsfn_.Release();
      delete job;
      throw MakeError(env, "LEP_OUT_OF_MEMORY", std::string("cannot start a thread for the job (") + e.what() +
                                                    "; a memory limit, or the thread limit `ulimit -u`)\n" + lep::out_of_memory_hint());
    }
    // Registered after the ThreadSafeFunction, so it runs before the function's own cleanup (hooks run
    // last-in first-out): the thread's last calls still find it.
    napi_add_env_cleanup_hook(env, &NodeJob::OnEnvCleanup, job);
    return handle;
  }

 private:
  struct Item {
    enum Kind { kProgress, kDone, kFail } kind;
    Event event;
    std::string code, message;
  };

  NodeJob(Napi::Env env, Napi::Value on_progress, Work work, Convert convert)
      : deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)), convert_(std::move(convert)), life_(std::make_shared<JobLife>(env)) {
    if (on_progress.IsFunction()) on_progress_ = Napi::Persistent(on_progress.As<Napi::Function>());
    tsfn_ = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                          Traits::kResourceName, 0, 1);
  }

  static void Forget(const std::shared_ptr<JobLife>& life) {
    std::lock_guard<std::mutex> lock(live_jobs_mutex());
    auto& jobs = live_jobs();
    jobs.erase(std::remove(jobs.begin(), jobs.end(), life), jobs.end());
  }

  // The environment is ending (a worker terminated, or the main thread's normal teardown) with the job
  // unsettled: stop it and wait for its thread. A job that does not stop within kEnvEndWait (SentencePiece
  // training cannot be stopped; a long training step) is orphaned instead: it computes on, never calling
  // into the environment again (Post), so the worker ends without hanging. The job object stays (its
  // references belong to the ending environment); its final item is never delivered.
  static void OnEnvCleanup(void* arg) {
    auto* job = static_cast<NodeJob*>(arg);
    const std::shared_ptr<JobLife> life = job->life_;
    life->abort = true;
    if (!life->WaitUntil(std::chrono::steady_clock::now() + kEnvEndWait)) {
      std::lock_guard<std::mutex> lock(life->m);
      life->orphaned = true;
    }
    --running_jobs();
  }

  static constexpr std::chrono::seconds kEnvEndWait{2};

  // Hands an item to the main thread unless the job was orphaned; under the lock, the environment cannot
  // be declared gone in the middle of the call (the queue is unbounded: BlockingCall never waits).
  static void Post(JobLife& life, Napi::ThreadSafeFunction& tsfn, Item* item, NodeJob* job) {
    std::lock_guard<std::mutex> lock(life.m);
    if (life.orphaned) {
      delete item;
      return;
    }
    tsfn.BlockingCall(item, Deliver(job));
  }

  void Run() {
    std::shared_ptr<JobLife> life = life_;  // `this` may be deleted by the main thread before the end
    lep::current_job_stop() = &life->abort;
    Traits::OnThreadStart();
    Item* final_item = new Item{Item::kDone, {}, "", ""};
    try {
      result_.emplace(work_([this](const Event& ev) {
        Traits::AtProgress();
        if (!on_progress_.IsEmpty()) Post(*life_, tsfn_, new Item{Item::kProgress, ev, "", ""}, this);
        return !life_->abort.load();
      }));
    } catch (...) {
      JobFailure f = Traits::Describe(std::current_exception());
      *final_item = Item{Item::kFail, {}, std::move(f.code), std::move(f.message)};
    }
    Traits::OnThreadEnd();
    lep::current_job_stop() = nullptr;
    // The main thread deletes the job when it handles the final item, possibly before BlockingCall
    // returns here: touch only a local copy of the handle from now on.
    Napi::ThreadSafeFunction tsfn = tsfn_;
    Post(*life, tsfn, final_item, this);
    {
      std::lock_guard<std::mutex> lock(life->m);
      if (!life->orphaned) tsfn.Release();
    }
    Forget(life);
    life->Finish();
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
        if (ret.IsBoolean() && !ret.As<Napi::Boolean>().Value()) life_->abort = true;
      } catch (const Napi::Error& e) {  // the user's callback threw: stop the job, reject with that error
        life_->abort = true;
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
        const JobFailure f = Traits::Describe(std::current_exception());
        deferred_.Reject(MakeError(env, f.code, f.message).Value());
      }
    }
    --running_jobs();  // after settling: code awaiting the promise sees the job over, then 0 here
    napi_remove_env_cleanup_hook(env, &NodeJob::OnEnvCleanup, this);
    delete this;  // last item: the thread has finished with the job
  }

  Napi::Promise::Deferred deferred_;
  Work work_;
  Convert convert_;
  Napi::FunctionReference on_progress_;
  Napi::ObjectReference callback_error_;
  Napi::ThreadSafeFunction tsfn_;
  std::shared_ptr<JobLife> life_;
  std::optional<R> result_;
};

}  // namespace lep_node
