// Progress reporting from long jobs. The callback runs on the job's thread; returning false asks the
// job to stop at the next step boundary (the caller's abort).
#pragma once
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

}  // namespace lep
