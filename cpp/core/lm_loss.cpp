#include "core/lm_loss.h"

#include <algorithm>

namespace lep {

LmLossResult lm_loss_chunked(const torch::Tensor& hidden_in, const torch::Tensor& head, const torch::Tensor& targets,
                             const torch::Tensor& mask, LmLossGrads grads, double grad_scale, int64_t chunk_rows) {
  torch::NoGradGuard no_grad;
  const auto hidden = hidden_in.detach();
  const int64_t N = hidden.size(0);
  LmLossResult r;
  const auto compute = hidden.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  const bool with_grad = grads != LmLossGrads::kNone, head_grad = grads == LmLossGrads::kHiddenAndHead;
  if (chunk_rows <= 0) {
    const int64_t bytes_per_row = head.size(0) * static_cast<int64_t>(c10::elementSize(compute));
    chunk_rows = std::clamp<int64_t>((24 << 20) / std::max<int64_t>(1, bytes_per_row), 16, 1024);
  }
  if (with_grad) r.grad_hidden = torch::zeros_like(hidden);
  if (head_grad) r.grad_head = torch::zeros(head.sizes(), head.options().dtype(compute));
  auto w = head.detach();
  auto w_compute = with_grad ? w.to(compute) : w;  // converted once, not per chunk
  auto loss_acc = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(hidden.device()));
  auto count_acc = torch::zeros({}, torch::TensorOptions().dtype(torch::kInt64).device(hidden.device()));
  for (int64_t start = 0; start < N; start += chunk_rows) {
    const int64_t n = std::min(chunk_rows, N - start);
    auto h = hidden.narrow(0, start, n);                      // (n, C)
    auto t = targets.narrow(0, start, n);                     // (n)
    auto logits = torch::matmul(h, w.t()).to(compute);        // (n, V)
    auto lse = logits.logsumexp(-1);                          // (n)
    auto picked = logits.gather(-1, t.unsqueeze(-1)).squeeze(-1);
    auto tok_loss = lse - picked;                             // (n)
    auto m = mask.defined() ? mask.narrow(0, start, n) : torch::ones({n}, torch::TensorOptions().dtype(torch::kBool).device(h.device()));
    auto mf = m.to(compute);
    loss_acc += (tok_loss * mf).sum().to(torch::kFloat64);
    count_acc += m.sum();
    if (with_grad) {
      // d(sum loss)/d logits = softmax - onehot(target), zero on masked-out rows.
      auto d = logits.sub_(lse.unsqueeze(-1)).exp_();  // in place: the logits are not read again
      d.scatter_add_(-1, t.unsqueeze(-1), -torch::ones({n, 1}, d.options()));
      d.mul_(mf.unsqueeze(-1) * grad_scale);
      r.grad_hidden.narrow(0, start, n).copy_(torch::matmul(d, w_compute));
      if (head_grad) r.grad_head.addmm_(d.t(), h.to(compute));
    }
  }
  r.loss_sum = loss_acc.item<double>();  // one device sync per call
  r.tokens = count_acc.item<int64_t>();
  return r;
}

}  // namespace lep
