#include "core/onednn_matmul.h"

#include <memory>
#include <mutex>
#include <unordered_map>

#if LEP_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace lep {

#if LEP_HAVE_ONEDNN
namespace {

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// Operands oneDNN is given as they are: float32 on the CPU, matching shapes, no zero (broadcast) strides.
bool takes(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& out) {
  const int64_t n = a.dim();
  if (n < 2 || b.dim() != n || out.dim() != n) return false;
  for (const auto* t : {&a, &b, &out}) {
    if (!t->device().is_cpu() || t->scalar_type() != torch::kFloat32 || t->numel() == 0) return false;
    for (int64_t d = 0; d < n; ++d)
      if (t->size(d) > 1 && t->stride(d) < 1) return false;
  }
  for (int64_t d = 0; d + 2 < n; ++d)
    if (a.size(d) != b.size(d) || a.size(d) != out.size(d)) return false;
  return a.size(-1) == b.size(-2) && out.size(-2) == a.size(-2) && out.size(-1) == b.size(-1);
}

dnnl::memory::desc desc_of(const torch::Tensor& t) {
  return dnnl::memory::desc(dnnl::memory::dims(t.sizes().begin(), t.sizes().end()), dnnl::memory::data_type::f32,
                            dnnl::memory::dims(t.strides().begin(), t.strides().end()));
}

struct Product {
  std::unique_ptr<dnnl::matmul> primitive;  // null: oneDNN has no kernel for these operands
  dnnl::memory::desc scratchpad;
};

std::mutex cache_mutex;
std::unordered_map<std::string, std::shared_ptr<const Product>> cache;

std::shared_ptr<const Product> remember(const std::string& key, std::shared_ptr<const Product> product) {
  std::lock_guard<std::mutex> lock(cache_mutex);
  if (cache.size() >= 1024) cache.clear();
  return cache.emplace(key, std::move(product)).first->second;
}

// Building a primitive JIT-compiles its kernel (tenths of a millisecond to milliseconds), so each one is
// kept, keyed by the operands' shapes and strides and the thread count it was built
// for. A training job meets a few dozen keys; the bound only guards a process that sees many shapes.
std::shared_ptr<const Product> product_for(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& out) {
  std::string key = std::to_string(at::get_num_threads()) + ";";
  for (const auto* t : {&a, &b, &out}) {
    for (auto s : t->sizes()) key += std::to_string(s) + ",";
    key += ":";
    for (auto s : t->strides()) key += std::to_string(s) + ",";
    key += ";";
  }
  {
    std::lock_guard<std::mutex> lock(cache_mutex);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
  }
  auto made = std::make_shared<Product>();
  try {
    dnnl::primitive_attr attr;
    // The scratchpad comes from libtorch's allocator per call, so concurrent jobs never share one.
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
#if DNNL_VERSION_MAJOR >= 3
    // float32 arithmetic whatever ONEDNN_DEFAULT_FPMATH_MODE says (bf16 would change the numerics).
    attr.set_fpmath_mode(dnnl::fpmath_mode::strict);
#endif
#if DNNL_VERSION_MAJOR >= 3
    dnnl::matmul::primitive_desc pd(cpu_engine(), desc_of(a), desc_of(b), desc_of(out), attr);
#else
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(desc_of(a), desc_of(b), desc_of(out)), attr, cpu_engine());
#endif
    // oneDNN's reference kernel (operands it has no fast kernel for) would be far slower than the BLAS.
    const std::string impl = pd.impl_info_str();
    if (impl.rfind("ref", 0) == 0) return remember(key, std::move(made));
    made->scratchpad = pd.scratchpad_desc();
    made->primitive = std::make_unique<dnnl::matmul>(pd);
  } catch (const dnnl::error&) {
    made->primitive.reset();  // unsupported strides or shapes: libtorch does this one
  }
  return remember(key, std::move(made));
}

}  // namespace

std::string onednn_version() {
  const auto* v = dnnl::version();
  return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
}

bool onednn_fits_cpu() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512dq");
}

bool onednn_matmul_out(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& out) {
  if (!takes(a, b, out)) return false;
  const auto product = product_for(a, b, out);
  if (!product->primitive) return false;
  auto& engine = cpu_engine();
  // oneDNN's CPU stream is synchronous; one per thread, as a stream is not to be shared between threads.
  thread_local dnnl::stream stream(engine);
  const auto scratch = torch::empty({static_cast<int64_t>(product->scratchpad.get_size())}, torch::kUInt8);
  product->primitive->execute(stream, {{DNNL_ARG_SRC, dnnl::memory(desc_of(a), engine, a.data_ptr())},
                                       {DNNL_ARG_WEIGHTS, dnnl::memory(desc_of(b), engine, b.data_ptr())},
                                       {DNNL_ARG_DST, dnnl::memory(desc_of(out), engine, out.data_ptr())},
                                       {DNNL_ARG_SCRATCHPAD, dnnl::memory(product->scratchpad, engine, scratch.data_ptr())}});
  stream.wait();
  return true;
}
#else
std::string onednn_version() { return ""; }
bool onednn_fits_cpu() { return false; }
bool onednn_matmul_out(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&) { return false; }
#endif

namespace {

// a · b into a fresh tensor, by oneDNN (`onednn`, unless it declines) or by libtorch.
torch::Tensor product(const torch::Tensor& a, const torch::Tensor& b, bool onednn = true) {
  TORCH_CHECK(a.dim() == b.dim() && a.sizes().slice(0, a.dim() - 2) == b.sizes().slice(0, b.dim() - 2),
              "onednn products take operands with the same batch dims, not broadcast ones");
  auto shape = a.sizes().vec();
  shape.back() = b.size(-1);
  auto out = torch::empty(shape, a.options());
  if (!onednn || !onednn_matmul_out(a, b, out)) at::matmul_out(out, a, b);
  return out;
}

// Whether a linear layer's products (rows × in · in × out, and its two gradients, the same count of
// multiply-adds) go to oneDNN. On 2 AVX-512 cores, both on 2 threads, oneDNN against OpenBLAS by
// multiply-adds per product: 2048·256·704 (0.37 G) 1.1-1.4x, 2048·2048·256 (1.1 G) 1.2x, 2048³ (8.6 G)
// 1.0x, 2048·2048·5632 (24 G) 0.87-0.97x, 1024·4096·14336 (60 G) 0.95x (bench/README.md, "oneDNN for
// float32 training products"): large products stay in the BLAS.
bool linear_in_onednn(int64_t rows, const torch::Tensor& w) {
  constexpr double kMaxMultiplyAdds = 4e9;
  return static_cast<double>(rows) * static_cast<double>(w.size(0)) * static_cast<double>(w.size(1)) < kMaxMultiplyAdds;
}

// y = x · wᵀ over x's rows. w's gradient is computed as gᵀ·x, a contiguous (out, in) tensor like w
// itself (autograd would otherwise hand AdamW and the gradient sync a transposed one).
struct LinearNode : torch::autograd::Function<LinearNode> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w) {
    ctx->save_for_backward({x, w});
    auto shape = x.sizes().vec();
    shape.back() = w.size(0);
    const auto rows = x.reshape({-1, w.size(1)});
    return product(rows, w.t(), linear_in_onednn(rows.size(0), w)).view(shape);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &w = saved[1];
    const auto g = grads[0].reshape({-1, w.size(0)});
    const bool onednn = linear_in_onednn(g.size(0), w);
    torch::Tensor gx, gw;
    if (ctx->needs_input_grad(0)) gx = product(g, w, onednn).view(x.sizes());
    if (ctx->needs_input_grad(1)) gw = product(g.t(), x.reshape({-1, w.size(1)}), onednn);
    return {gx, gw};
  }
};

struct MatmulNode : torch::autograd::Function<MatmulNode> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& a, const torch::Tensor& b) {
    ctx->save_for_backward({a, b});
    return product(a, b);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &a = saved[0], &b = saved[1];
    const auto& g = grads[0];
    torch::Tensor ga, gb;
    if (ctx->needs_input_grad(0)) ga = product(g, b.transpose(-2, -1));
    if (ctx->needs_input_grad(1)) gb = product(a.transpose(-2, -1), g);
    return {ga, gb};
  }
};

}  // namespace

torch::Tensor onednn_linear(const torch::Tensor& x, const torch::Tensor& w) { return LinearNode::apply(x, w); }

torch::Tensor onednn_matmul(const torch::Tensor& a, const torch::Tensor& b) { return MatmulNode::apply(a, b); }

}  // namespace lep
