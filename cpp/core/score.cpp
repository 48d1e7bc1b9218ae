#include "core/score.h"

#include <algorithm>
#include <numeric>

#include "core/compute_threads.h"
#include "core/error.h"

namespace lep {

namespace {
// A sequence's LM head runs in row blocks of at most this many logits (256 MiB in float32): memory stays
// bounded for long sequences and wide vocabularies, and each block is still one large matmul.
constexpr int64_t kMaxLogitsPerBlock = int64_t(1) << 26;
// exp() of a logit more than 87 nats under its row's maximum is a denormal float, which x86 CPUs compute
// through a slow microcode path: on a peaked model that made the log-softmax cost 5x its normal time, as
// much as the head's matmul. Each such term is below 2^-125 and the row's sum is at least 1, so raising
// them to this floor cannot change the float sum.
constexpr double kExpFloor = -87.0;

// log Σ exp of each row of `logits` (rows, V), as (rows,); overwrites `logits`, so no second rows × V
// matrix is allocated: the log-probabilities needed are one gathered logit minus this, per row.
torch::Tensor logsumexp_rows_(torch::Tensor& logits) {
  auto m = logits.amax(-1, true);
  return logits.sub_(m).clamp_min_(kExpFloor).exp_().sum(-1).log_().add_(m.squeeze(-1));
}
}  // namespace

std::vector<ScoreResult> score(LlamaModel& model, const std::vector<std::vector<int64_t>>& seqs,
                               const ScoreOptions& o, const ProgressFn& progress) {
  torch::NoGradGuard no_grad;
  ComputeThreads threads(model, Work::kRows);
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
      if (n > 1) r.token_logprobs.resize(n - 1);
      const auto targets = ids[b].narrow(0, 1, n - 1).to(dev);
      const int64_t block = std::max<int64_t>(1, kMaxLogitsPerBlock / V);
      for (int64_t r0 = 0; r0 < n; r0 += block) {
        const int64_t rows = std::min(block, n - r0), scored = std::min(rows, n - 1 - r0);  // rows with a next token
        auto logits = model.logits(hidden[b].narrow(0, r0, rows));                          // (rows, V)
        torch::Tensor picked, last;
        if (scored > 0) picked = logits.narrow(0, 0, scored).gather(-1, targets.narrow(0, r0, scored).unsqueeze(-1)).squeeze(-1);
        if (o.last_logprobs && r0 + rows == n) last = logits[rows - 1].clone();
        const auto lse = logsumexp_rows_(logits);
        if (scored > 0) {
          auto got = (picked - lse.narrow(0, 0, scored)).to(torch::kCPU, torch::kFloat32).contiguous();
          std::copy(got.data_ptr<float>(), got.data_ptr<float>() + scored, r.token_logprobs.begin() + r0);
        }
        if (last.defined()) {
          last = last.sub_(lse[rows - 1]).to(torch::kCPU, torch::kFloat32).contiguous();
          r.last_logprobs.assign(last.data_ptr<float>(), last.data_ptr<float>() + V);
        }
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
