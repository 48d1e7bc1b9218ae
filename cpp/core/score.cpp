#include "core/score.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"

namespace lep {

std::vector<ScoreResult> score(LlamaModel& model, const std::vector<std::vector<int64_t>>& seqs,
                               const ScoreOptions& o, const ProgressFn& progress) {
  torch::NoGradGuard no_grad;
  const int64_t N = static_cast<int64_t>(seqs.size()), V = model.config().vocab_size;
  std::vector<ScoreResult> results(N);
  for (const auto& s : seqs) {
    if (s.empty()) throw Error("LEP_EMPTY_SEQUENCE", "a sequence to score has no tokens");
    // Positions past the context were never trained (and RoPE scaling is defined only up to it).
    if (static_cast<int64_t>(s.size()) > model.config().max_position_embeddings)
      throw Error("LEP_SEQUENCE_TOO_LONG", "a sequence to score has " + std::to_string(s.size()) +
                                               " tokens, more than the model's context (max_position_embeddings " +
                                               std::to_string(model.config().max_position_embeddings) +
                                               ")\nHINT: split the text into windows of at most the context length.");
    for (int64_t t : s)
      if (t < 0 || t >= V)
        throw Error("LEP_BAD_TOKEN", "token id " + std::to_string(t) + " is outside the vocabulary (size " +
                                         std::to_string(V) + ")");
  }
  // Longest first, so each batch pads little; right padding needs no mask under a causal model.
  std::vector<int64_t> order(N);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return seqs[a].size() > seqs[b].size(); });
  int64_t done = 0;
  for (int64_t start = 0; start < N;) {
    const int64_t T = seqs[order[start]].size();
    int64_t end = start + 1;
    while (end < N && (end - start + 1) * T <= o.max_batch_tokens) ++end;
    const int64_t B = end - start;
    auto ids = torch::zeros({B, T}, torch::kInt64);
    for (int64_t b = 0; b < B; ++b) {
      const auto& s = seqs[order[start + b]];
      ids[b].narrow(0, 0, s.size()).copy_(torch::tensor(s, torch::kInt64));
    }
    auto pos = torch::arange(T, torch::kInt64).unsqueeze(0).expand({B, T}).contiguous();
    const auto dev = model.device();
    auto hidden = model.forward_hidden(ids.to(dev), pos.to(dev), torch::Tensor(), nullptr);  // (B, T, C)
    for (int64_t b = 0; b < B; ++b) {
      const auto& s = seqs[order[start + b]];
      const int64_t n = s.size();
      auto& r = results[order[start + b]];
      // Logits for one sequence at a time bound memory at n x V floats.
      auto lp = torch::log_softmax(model.logits(hidden[b].narrow(0, 0, n)), -1);  // (n, V)
      if (n > 1) {
        auto target = ids[b].narrow(0, 1, n - 1).to(dev).unsqueeze(-1);
        auto got = lp.narrow(0, 0, n - 1).gather(-1, target).squeeze(-1).to(torch::kCPU).contiguous();
        r.token_logprobs.assign(got.data_ptr<float>(), got.data_ptr<float>() + n - 1);
      }
      if (o.last_logprobs) {
        auto last = lp[n - 1].to(torch::kCPU).contiguous();
        r.last_logprobs.assign(last.data_ptr<float>(), last.data_ptr<float>() + V);
      }
    }
    done += B;
    start = end;
    if (progress && !progress(ProgressEvent{"score", done, N, {}}))
      throw Error("LEP_ABORTED", "scoring aborted");
  }
  return results;
}

}  // namespace lep
