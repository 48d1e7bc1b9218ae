// G += AᵀA for a float64 row chunk A (c, d), upper triangle only (G is symmetric; the caller mirrors it).
// The normal equations of propagation spend a third of their time here (streaming_lstsq.h).
//
// libtorch has no syrk, but the BLAS it calls for gemm usually exports one: Debian's libtorch links
// OpenBLAS through libblas.so.3, whose dsyrk_ does the rank-k update in half of gemm's flops with a kernel
// tuned for it. Measured per 4096-row chunk at d = 4096 (float64, 2 threads, OpenBLAS SkylakeX core,
// loaded machine): full gemm 6.0 s, 256-row blocked gemm 4.5 s, dsyrk 3.2 s (bench/README.md).
//
// Paths:
//  - kSyrk: that BLAS's dsyrk_, found among the libraries already loaded into the process (never loads
//    one: it must be the BLAS libtorch uses, with its threads). Used only after a one-time check against
//    addmm on a small matrix passes (a BLAS computing wrong results on some core falls back).
//  - kBlocked: one addmm per 256-row block of G from the diagonal on (53% of the full product's work at
//    d = 4096); any device, any libtorch.
//  - kFull: the whole AᵀA by one addmm: the original accumulation, kept as a baseline for benches.
// LEP_PROPAGATE_GRAM=syrk|blocked|full picks one (syrk falls back to blocked where it is unavailable);
// unset, syrk where available, else blocked. The paths agree to float64 rounding, not bit for bit.
#pragma once
#include <torch/torch.h>

#include <string>

namespace lep {

enum class GramPath { kSyrk, kBlocked, kFull };

const char* gram_path_name(GramPath p);  // "syrk" | "blocked" | "full"

// The path for G on `device`: LEP_PROPAGATE_GRAM if set (an unknown value throws lep::Error), else the
// fastest available. kSyrk only on CPU and only when the BLAS routine was found and passed its check.
GramPath choose_gram_path(const torch::Device& device);

// g: (d, d) float64, contiguous; a: (c, d) float64 with unit column stride, on g's device. Returns the
// path that ran: kBlocked where kSyrk was asked but dsyrk cannot take these tensors (not on the CPU, or
// sizes beyond its 32-bit integers), so a report never names a path that did not run.
GramPath gram_update(GramPath path, torch::Tensor& g, const torch::Tensor& a);

}  // namespace lep
