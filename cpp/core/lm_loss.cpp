#include "core/lm_loss.h"

#include <algorithm>

#include "core/cpu_allocator.h"
#include "core/fork_gate.h"
#include "core/onednn.h"

namespace lep {
namespace {
// The workspace's (rows, V) buffer of `dtype`, made anew when missing or too small for this call.
torch::Tensor chunk_buffer(torch::Tensor& slot, int64_t rows, int64_t V, torch::ScalarType dtype, torch::Device device) {
  if (!slot.defined() || slot.scalar_type() != dtype || slot.size(1) != V || slot.size(0) < rows || slot.device() != device)
    slot = torch::empty({rows, V}, torch::TensorOptions().dtype(dtype).device(device));
  return slot;
}
}  // namespace

LmLossResult lm_loss_chunked(const torch::Tensor& hidden_in, const torch::Tensor& head, const torch::Tensor& targets,
                             const torch::Tensor& mask, LmLossGrads grads, double grad_scale, int64_t chunk_rows,
                             const torch::Tensor& head_rows, LmLossWorkspace* ws, bool onednn) {
  torch::NoGradGuard no_grad;
  const auto hidden = hidden_in.detach();
  const int64_t N = hidden.size(0);
  LmLossResult r;
  const auto compute = hidden.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  const bool with_grad = grads != LmLossGrads::kNone, head_grad = grads == LmLossGrads::kHiddenAndHead;
  if (chunk_rows <= 0) {
    const int64_t bytes_per_row = head.size(0) * static_cast<int64_t>(c10::elementSize(compute));
    chunk_rows = std::clamp<int64_t>(kLmLossChunkBytes / std::max<int64_t>(1, bytes_per_row), kLmLossMinChunkRows, 4096);
  }
  chunk_rows = std::max<int64_t>(1, std::min(chunk_rows, N));
  r.chunk_rows = chunk_rows;
  if (with_grad) r.grad_hidden = torch::empty_like(hidden);  // every chunk writes its rows
  const bool some_rows = head_grad && head_rows.defined();
  if (head_grad) r.grad_head = some_rows ? torch::zeros({head_rows.size(0), head.size(1)}, head.options().dtype(compute))
                                         : torch::zeros(head.sizes(), head.options().dtype(compute));
  auto w = head.detach();
  const bool cpu = hidden.device().is_cpu();
  // A bf16 model keeps the two gradient products in bf16 too, like the logits' (mixed precision, as
  // torch.autocast does): d is rounded to bf16 for them, and everything accumulated (the softmax, the loss,
  // the head gradient across chunks) stays float32. oneDNN runs bf16 products on AMX or AVX-512 BF16 where
  // the CPU has them, several times its float32 rate (bench/README.md); a GPU runs them on its tensor cores,
  // where float32 products (TF32 off) run at a small fraction of that, on a float32 copy of W made every
  // call (2 GB for LLaMa-3-8B's head). The GPU side is not measured yet (docs/testing.md, "On a GPU": the
  // device check compares these gradients with the CPU's). Not for f16 (its range flushes small
  // probabilities to zero): that takes float32 products on a float32 copy of W.
  const bool reduced = w.scalar_type() == torch::kBFloat16;
  // The head gradient's bf16 product writes a (rows, C) temporary per chunk, added into the float32
  // gradient. On the CPU only while that stays small enough to be reused (cpu_allocator.h, kReusedBelow):
  // above it (LLaMa-3 shapes: 1.4 GB) fresh pages every chunk would cost more than the float32 product
  // saves. A GPU's caching allocator hands the same block back every chunk.
  const int64_t grad_rows = some_rows ? head_rows.size(0) : head.size(0);
  r.head_grad_rows = head_grad ? grad_rows : 0;
  const bool reduced_head = reduced && (!cpu || grad_rows * head.size(1) * 2 <= static_cast<int64_t>(kReusedBelow));
  auto w_compute = with_grad && !reduced ? w.to(compute) : w;  // converted once, not per chunk
  // On the CPU each chunk is written into the same buffers: the probabilities' (and a bf16 model's logits
  // and rounded d) for every chunk, so the products write into memory that is already mapped.
  LmLossWorkspace local;
  LmLossWorkspace& buffers = ws ? *ws : local;
  torch::Tensor probs_buf, reduced_buf;
  if (cpu) {
    probs_buf = chunk_buffer(buffers.probs, chunk_rows, head.size(0), compute, hidden.device());
    if (reduced) reduced_buf = chunk_buffer(buffers.reduced, chunk_rows, head.size(0), w.scalar_type(), hidden.device());
  }
  // The head's three products per chunk (n·V·C multiply-adds each) go to oneDNN where the job chose it
  // and they are small enough to gain (onednn_product_pays); the softmax wherever the job chose it.
  const bool onednn_head = onednn && onednn_product_pays(static_cast<double>(chunk_rows) * static_cast<double>(head.size(0)) *
                                                         static_cast<double>(head.size(1)));
  auto loss_acc = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(hidden.device()));
  auto count_acc = torch::zeros({}, torch::TensorOptions().dtype(torch::kInt64).device(hidden.device()));
  const double tiny = compute == torch::kFloat64 ? 1e-280 : 1e-30;
  for (int64_t start = 0; start < N; start += chunk_rows) {
    fork_safe_point();  // between two chunks no BLAS call is under way; at 8B shapes a step has seconds of them
    const int64_t n = std::min(chunk_rows, N - start);
    auto h = hidden.narrow(0, start, n);                      // (n, C)
    auto t = targets.narrow(0, start, n).unsqueeze(-1);       // (n, 1)
    const bool masked = mask.defined();
    auto m = masked ? mask.narrow(0, start, n) : torch::Tensor();
    torch::Tensor p, tok_loss;                                // (n, V) probabilities, (n) token losses
    if (cpu) {
      // The logits, (n, V), land in the probabilities' buffer (a bf16 model's via its bf16 buffer) and
      // become the probabilities there in place: a softmax into a fresh (n, V) tensor took 2.5x as long
      // (8.5 against 3.4 ms for 196 x 32000, PyTorch 1.13, 2 threads). One softmax kernel over each row
      // (max, sum of exp, write), and the token losses from its target entries, -log p_t: log-softmax
      // followed by exp over the whole (n, V) chunk took 3.8x as long in PyTorch 1.13 on the CPU (17.6
      // against 4.6 ms for 196 x 32000), and the softmax is the gradient's start anyway. -log p_t is exact
      // to rounding unless p_t underflows (a token loss above ~69 nats in float32); those rows, rare, take
      // the log-softmax of their logits. Knowing whether there are any reads a value back per chunk, which
      // is free on the CPU; on a GPU it would stall the queue.
      p = probs_buf.narrow(0, 0, n);
      if (reduced) {
        auto logits = reduced_buf.narrow(0, 0, n);
        p.copy_(at::mm_out(logits, h, w.t()));
      } else if (w.scalar_type() == compute && h.scalar_type() == compute) {
        product_out(h, w.t(), p, onednn_head);
      } else {
        p.copy_(torch::matmul(h, w.t()));
      }
      if (!(onednn && onednn_softmax_rows_(p))) at::_softmax_out(p, p, -1, false);
      auto p_t = p.gather(-1, t).squeeze(-1);
      tok_loss = -p_t.log();
      auto small = masked ? (p_t < tiny).logical_and_(m) : p_t < tiny;
      if (small.any().item<bool>()) {
        auto rows = small.nonzero().squeeze(-1);
        auto row_logits = torch::matmul(h.index_select(0, rows), w.t());  // again: overwritten above
        tok_loss.index_copy_(0, rows, -row_logits.to(compute).log_softmax(-1).gather(-1, t.index_select(0, rows)).squeeze(-1));
      }
    } else {
      // One fused log-softmax kernel, exact for any loss, and no device sync.
      auto logp = torch::matmul(h, w.t()).to(compute).log_softmax(-1);
      tok_loss = -logp.gather(-1, t).squeeze(-1);
      if (with_grad) p = logp.exp_();  // in place: the log-probabilities are not read again
    }
    loss_acc += (masked ? tok_loss.masked_fill(m.logical_not(), 0) : tok_loss).sum().to(torch::kFloat64);
    count_acc += masked ? m.sum() : torch::full({}, n, count_acc.options());
    if (with_grad) {
      // d(sum loss)/d logits = softmax - onehot(target). The row weights (mask x grad_scale, so zero on
      // masked-out rows) scale the two (n, C)-sized products below rather than the (n, V) chunk itself.
      auto d = p;  // in place: the probabilities are not read again
      d.scatter_add_(-1, t, -torch::ones({n, 1}, d.options()));
      auto weight = masked ? (m.to(compute) * grad_scale).unsqueeze(-1) : torch::full({n, 1}, grad_scale, d.options());
      auto dw = !reduced ? d : cpu ? reduced_buf.narrow(0, 0, n).copy_(d) : d.to(w.scalar_type());  // (n, V) in the products' dtype
      auto gh = r.grad_hidden.narrow(0, start, n);
      // Straight into its rows when all three share the compute dtype; a bf16 or f16 model's gradient is
      // converted on the way in.
      if (gh.scalar_type() == compute && dw.scalar_type() == compute && w_compute.scalar_type() == compute) {
        product_out(dw, w_compute, gh, onednn_head);
        gh.mul_(weight);
      } else {
        gh.copy_(torch::matmul(dw, w_compute).to(compute).mul_(weight));
      }
      if (head_grad) {
        auto hw = h.to(compute) * weight;  // (n, C)
        if (reduced_head) {
          r.grad_head.add_(torch::matmul((some_rows ? dw.index_select(1, head_rows) : dw).t(), hw.to(w.scalar_type())));
        } else {
          product_out((some_rows ? d.index_select(1, head_rows) : d).t(), hw, r.grad_head, onednn_head, /*accumulate=*/true);
        }
      }
    }
  }
  r.loss_sum = loss_acc.item<double>();  // one device sync per call (and on the CPU one per chunk, above)
  r.tokens = count_acc.item<int64_t>();
  return r;
}

}  // namespace lep
