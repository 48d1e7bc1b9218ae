#include "core/generate.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include "core/compute_threads.h"
#include "core/error.h"

namespace lep {

namespace {

// Picks one token per row from float32 logits (B, V) on CPU. Order as in HF: repetition penalty,
// temperature, top-k, top-p.
// Row b of `logits` is prompt rows[b].
std::vector<int64_t> pick(torch::Tensor logits, const std::vector<std::vector<int64_t>>& seen, const std::vector<int64_t>& rows,
                          const GenerateOptions& o, at::Generator& gen) {
  const int64_t B = logits.size(0);
  if (o.repetition_penalty != 1.0) {
    auto acc = logits.accessor<float, 2>();
    for (int64_t b = 0; b < B; ++b) {
      std::set<int64_t> uniq(seen[rows[b]].begin(), seen[rows[b]].end());
      for (int64_t t : uniq) {
        float& l = acc[b][t];
        l = l < 0 ? l * static_cast<float>(o.repetition_penalty) : l / static_cast<float>(o.repetition_penalty);
      }
    }
  }
  std::vector<int64_t> out(B);
  if (o.temperature <= 0.0) {
    auto best = logits.argmax(-1);
    for (int64_t b = 0; b < B; ++b) out[b] = best[b].item<int64_t>();
    return out;
  }
  logits = logits / o.temperature;
  if (o.top_k > 0 && o.top_k < logits.size(1)) {
    auto kth = std::get<0>(logits.topk(o.top_k, -1)).select(-1, o.top_k - 1).unsqueeze(-1);
    logits = logits.masked_fill(logits < kth, -std::numeric_limits<float>::infinity());
  }
  if (o.top_p < 1.0) {
    auto [sorted, idx] = logits.sort(-1, true);
    auto cum = sorted.softmax(-1).cumsum(-1);
    // Drop tokens once the mass before them already reaches top_p (the first token always stays).
    auto drop_sorted = (cum - sorted.softmax(-1)) >= o.top_p;
    auto drop = torch::zeros_like(drop_sorted).scatter(-1, idx, drop_sorted);
    logits = logits.masked_fill(drop, -std::numeric_limits<float>::infinity());
  }
  auto probs = logits.softmax(-1);
  auto drawn = torch::multinomial(probs, 1, false, gen);
  for (int64_t b = 0; b < B; ++b) out[b] = drawn[b][0].item<int64_t>();
  return out;
}

}  // namespace

void validate(const GenerateOptions& o) {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw Error("LEP_BAD_OPTION", "generate option " + what);
  };
  need(o.max_new_tokens >= 1, "maxNewTokens must be at least 1, got " + std::to_string(o.max_new_tokens));
  need(std::isfinite(o.temperature) && o.temperature >= 0, "temperature must be a finite number >= 0, got " + std::to_string(o.temperature));
  need(o.top_k >= 0, "topK must be >= 0, got " + std::to_string(o.top_k));
  need(o.top_p > 0 && o.top_p <= 1, "topP must be in (0, 1], got " + std::to_string(o.top_p));
  need(std::isfinite(o.repetition_penalty) && o.repetition_penalty > 0,
       "repetitionPenalty must be a finite number > 0, got " + std::to_string(o.repetition_penalty));
}

std::vector<GenerateResult> generate(LlamaModel& model, const std::vector<std::vector<int64_t>>& prompts,
                                     const GenerateOptions& o, const ProgressFn& progress) {
  torch::NoGradGuard no_grad;
  validate(o);
  const int64_t B = static_cast<int64_t>(prompts.size());
  std::vector<GenerateResult> results(B);
  if (B == 0) return results;
  int64_t max_len = 0;
  for (const auto& p : prompts) {
    if (p.empty()) throw Error("LEP_EMPTY_PROMPT", "a prompt has no tokens; give at least one (e.g. BOS)");
    max_len = std::max<int64_t>(max_len, p.size());
  }
  const int64_t V = model.config().vocab_size;
  for (const auto& p : prompts)
    for (int64_t t : p)
      if (t < 0 || t >= V)
        throw Error("LEP_BAD_TOKEN", "token id " + std::to_string(t) + " is outside the vocabulary (size " +
                                         std::to_string(V) + ")");
  const auto dev = model.device();
  // Left padding: every prompt ends at column max_len - 1, so new tokens share one column.
  auto ids = torch::zeros({B, max_len}, torch::kInt64);
  auto mask = torch::zeros({B, max_len + o.max_new_tokens}, torch::kBool);
  auto pos = torch::zeros({B, max_len}, torch::kInt64);
  std::vector<int64_t> next_pos(B);
  std::vector<std::vector<int64_t>> seen(prompts.begin(), prompts.end());
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = prompts[b].size(), pad = max_len - n;
    for (int64_t i = 0; i < n; ++i) {
      ids[b][pad + i] = prompts[b][i];
      pos[b][pad + i] = i;
    }
    mask[b].narrow(0, pad, n).fill_(true);
    next_pos[b] = n;
  }
  mask.narrow(1, max_len, o.max_new_tokens).fill_(true);  // generated columns are always attended
  KVCache cache = model.new_cache(B, max_len + o.max_new_tokens);
  auto gen = at::detail::createCPUGenerator(o.seed);
  std::vector<bool> done(B, false);
  auto dmask = mask.to(dev);
  // The threads and products of the work at hand (compute_threads.h): the prompts' rows, then each
  // decoding step's, which are one row once a single sequence is left.
  std::unique_ptr<ComputeThreads> threads;
  auto work_on = [&](int64_t rows) {
    const Work w = rows == 1 ? Work::kOneRow : Work::kRows;
    if (threads && threads->work() == w) return;
    threads.reset();  // scopes do not nest
    threads = std::make_unique<ComputeThreads>(model, w);
  };
  work_on(ids.numel());
  auto hidden = model.forward_hidden(ids.to(dev), pos.to(dev), dmask.narrow(1, 0, max_len), &cache);
  auto last = model.logits(hidden.select(1, max_len - 1)).to(torch::kCPU);  // (B, V); syncs the device
  // The batch rows still decoding, as prompt indices. Greedy decoding drops finished rows from the batch
  // (their cache rows too) once a quarter of it has finished: a step costs about what its row count
  // does (toy model, one thread: 4.7 ms at 1 row, 20 ms at 16), and a paragraph-copy batch otherwise
  // spent hundreds of steps at full cost on one unstopped row. Sampling keeps every row, so that its
  // random draws (one per batch row and step) stay those of the same seed.
  std::vector<int64_t> rows(B);
  for (int64_t b = 0; b < B; ++b) rows[b] = b;
  const bool compact = o.temperature <= 0.0;
  int64_t active = B;
  for (int64_t step = 0; step < o.max_new_tokens && active > 0; ++step) {
    auto picked = pick(last, seen, rows, o, gen);
    const int64_t R = static_cast<int64_t>(rows.size());
    auto step_ids = torch::zeros({R, 1}, torch::kInt64);
    auto step_pos = torch::zeros({R, 1}, torch::kInt64);
    std::vector<int64_t> step_tokens(B, -1);
    for (int64_t r = 0; r < R; ++r) {
      const int64_t b = rows[r];
      if (done[b]) continue;  // a finished row still in the batch decodes a masked dummy token
      step_tokens[b] = picked[r];
      results[b].tokens.push_back(picked[r]);
      seen[b].push_back(picked[r]);
      step_ids[r][0] = picked[r];
      step_pos[r][0] = next_pos[b]++;
      if (o.stop_tokens.count(picked[r])) {
        done[b] = true;
        results[b].finish_reason = "stop";
        --active;
      }
    }
    if (progress) {
      ProgressEvent ev{"generate", step + 1, o.max_new_tokens, {{"active", static_cast<double>(active)}}, std::move(step_tokens)};
      if (!progress(ev)) {
        for (int64_t b = 0; b < B; ++b)
          if (!done[b]) results[b].finish_reason = "aborted";
        return results;
      }
    }
    if (active == 0 || step + 1 == o.max_new_tokens) break;
    if (compact && 4 * (R - active) >= R) {
      std::vector<int64_t> keep, kept_rows;
      for (int64_t r = 0; r < R; ++r)
        if (!done[rows[r]]) keep.push_back(r), kept_rows.push_back(rows[r]);
      auto k_idx = torch::tensor(keep, torch::kInt64);
      auto idx = k_idx.to(dev);
      for (auto& t : cache.k) t = t.index_select(0, idx);
      for (auto& t : cache.v) t = t.index_select(0, idx);
      dmask = dmask.index_select(0, idx);
      step_ids = step_ids.index_select(0, k_idx);
      step_pos = step_pos.index_select(0, k_idx);
      rows = std::move(kept_rows);
    }
    work_on(step_ids.size(0));
    hidden = model.forward_hidden(step_ids.to(dev), step_pos.to(dev), dmask.narrow(1, 0, max_len + step + 1), &cache);
    last = model.logits(hidden.select(1, 0)).to(torch::kCPU);
  }
  for (auto& r : results)
    if (r.finish_reason.empty()) r.finish_reason = "length";
  return results;
}

}  // namespace lep
