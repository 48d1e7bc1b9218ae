// Float32 matrix products and the row softmax through oneDNN, for CPU training and inference.
//
// Why: OpenBLAS (what libtorch's float32 matmul calls) runs the small products of a training step well
// below oneDNN's JIT kernels on AVX-512 and AVX2 CPUs, and runs a batched product as one BLAS call per
// matrix, each threaded on its own. On a 2-core AVX-512 Xeon, oneDNN 2.6 against OpenBLAS 0.3.21, both on
// 2 threads: the attention products (64 matrices of 256×32 · 32×128) 182-224 against 75-83 GFLOP/s,
// the MLP and projection products (2048×256 · 256×704 and the like) 225-275 against 185-237 GFLOP/s;
// the LM head's made a step faster at C = 96 and 256 (onednn_product_pays), and ~1B and 8B layers'
// products were even or a little slower (bench/README.md, "oneDNN for float32 training products").
// libtorch 1.13 and 2.6 send float32 products only to the BLAS, so lep calls the oneDNN library libtorch
// itself links (Debian's libdnnl) directly. The loss's softmax over (rows, V) logits is oneDNN's too:
// 0.73-0.76x libtorch 1.13's time at V = 32000.
//
// oneDNN threads with the calling thread's OpenMP pool, so jobs use these only where they give that pool
// the threads (training, and products of several rows in inference, with short thread waits;
// compute_threads.h), and only where oneDNN runs AVX2 or AVX-512 kernels (onednn_fits_cpu); LEP_F32_PRODUCTS=blas turns them
// off, =onednn forces them (the rule: runtime.h, float32_products). Without oneDNN in the build (cmake
// -DLEP_ONEDNN=OFF) every function here declines and the caller uses libtorch.
#pragma once
#include <torch/torch.h>

#include <string>

namespace lep {

// "oneDNN 2.6.3" when lep was built with oneDNN, else empty.
std::string onednn_version();
// Built with oneDNN, which runs AVX2 kernels or better here (AVX2 + FMA; AVX-512: dnnl_get_effective_cpu_isa,
// so ONEDNN_MAX_CPU_ISA caps it), where its edge over the BLAS was measured: with AVX-512 on an Intel Xeon
// with AMX and on an AMD EPYC with AVX-512 BF16 (training steps 1.1-1.2x, prompts 1.35x there), and with
// AVX2 kernels on both sides (ONEDNN_MAX_CPU_ISA=AVX2 against OpenBLAS's Haswell core, on that AMD EPYC,
// whose AVX2 and AVX-512 run at one rate: training 1.09-1.11x, prompts 1.44x, scoring 1.21x, batches
// 1.58x; bench/README.md, "oneDNN with AVX2 kernels"). With SSE4.1 or AVX only, unmeasured: the BLAS stays.
bool onednn_fits_cpu();

// out = a · b, or out += a · b with `accumulate`. a (…, M, K), b (…, K, N), out (…, M, N): float32 CPU
// tensors with the same leading dims, any strides (transposed views included). Returns false, having
// written nothing, when oneDNN is not built in or has no fast kernel for these operands; the caller then
// uses libtorch. Primitives are cached per shape, strides, thread count and `accumulate`.
bool onednn_matmul_out(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& out, bool accumulate = false);
// out = a · b (or += with `accumulate`) through onednn_matmul_out when `onednn`, and by libtorch where
// that declines or `onednn` is false (at::matmul_out; addmm_ to accumulate, 2-D operands only). `out` is
// a handle: the product lands in its storage (a view's too).
void product_out(const torch::Tensor& a, const torch::Tensor& b, torch::Tensor out, bool onednn, bool accumulate = false);

// x = softmax(x) over each row, in place: x (rows, V) float32, contiguous, on the CPU. Returns false,
// having written nothing, for any other x, when oneDNN is not built in or has only its reference kernel
// (the caller then uses libtorch's softmax).
bool onednn_softmax_rows_(const torch::Tensor& x);

// Whether a float32 product of this many multiply-adds goes to oneDNN rather than the BLAS, where a job
// sends its products to oneDNN at all. On 2 AVX-512 cores, both on 2 threads, oneDNN against OpenBLAS
// by multiply-adds per product, alone: 2048·256·704 (0.37 G) 1.1-1.4x, 2048·2048·256 (1.1 G) 1.2x,
// 2048³ (8.6 G) 0.9-1.0x, 2048·2048·5632 (24 G) 0.87-0.97x, 1024·4096·14336 (60 G) 0.95x. The LM head's
// three products (32000 tokens) within a training step: in chunks of 1048 rows, at C 96 (3.2 G) the step
// 12-15 % faster and at C 256 (8.6 G) 2-3 %; in chunks of 524 rows at C 256 (4.3 G) 3-5 % faster; alone
// at C 2048 and at LLaMa-3-8B's shape (34 G, 134 G) 3-4 % slower (bench/README.md, "oneDNN for float32
// training products" and "oneDNN for the LM head"). So products from 6e9 multiply-adds stay in the BLAS
// (until 2026-12-05 the bound was 4e9; no product measured here lies between the two).
bool onednn_product_pays(double multiply_adds);

// Differentiable products whose forward and backward run through onednn_matmul_out (libtorch where it
// declines): x (…, in) · wᵀ for w (out, in), giving w a gradient of w's own layout, in the BLAS when
// the layer is large (onednn_product_pays); and
// a (…, M, K) · b (…, K, N) for activations (attention scores and their weighted values).
torch::Tensor onednn_linear(const torch::Tensor& x, const torch::Tensor& w);
torch::Tensor onednn_matmul(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace lep
