// Progress reporting from long jobs. The callback runs on the job's thread; returning false asks the
// job to stop at the next step boundary (the caller's abort).
#pragma once
#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace lep {

struct ProgressEvent {
  // A constructor rather than aggregate initialisation: most events leave `values` and `tokens` empty,
  // which -Wextra would otherwise report at every call site.
  ProgressEvent() = default;
  ProgressEvent(std::string phase_, int64_t step_, int64_t total_, std::map<std::string, double> values_ = {},
                std::vector<int64_t> tokens_ = {})
      : phase(std::move(phase_)), step(step_), total(total_), values(std::move(values_)), tokens(std::move(tokens_)) {}
  std::string phase;  // "prefill", "generate", "score", ...
  int64_t step = 0;
  int64_t total = 0;
  std::map<std::string, double> values;  // phase-specific numbers (tokens, loss, ...)
  // "generate": the token each sequence got at this step, -1 for one that had already stopped, so that
  // callers can stream text as it comes (events arrive in order, none dropped: common/NodeJob.h).
  std::vector<int64_t> tokens;
};

using ProgressFn = std::function<bool(const ProgressEvent&)>;

// The stop flag of the job running on this thread (the caller's abort; set by the job runner,
// common/NodeJob.h; none on other threads). Progress reports return it too, but some work must learn of a
// stop between reports: a training step that is not reported (report_every), or a wait for another job
// on the model (addon/AddonModel.h).
inline const std::atomic<bool>*& current_job_stop() {
  static thread_local const std::atomic<bool>* flag = nullptr;
  return flag;
}
inline bool job_stop_requested() {
  const std::atomic<bool>* flag = current_job_stop();
  return flag != nullptr && flag->load();
}

}  // namespace lep
