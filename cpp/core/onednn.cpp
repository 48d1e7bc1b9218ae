#include "core/onednn.h"

#include <functional>
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

// A built primitive (a product or a softmax) and the scratchpad it asks for.
struct Kernel {
  // null: oneDNN has no fast kernel for these operands. A shared_ptr made from the derived type, as
  // dnnl::primitive has no virtual destructor.
  std::shared_ptr<const dnnl::primitive> primitive;
  dnnl::memory::desc scratchpad;
};

// The shapes and strides of `tensors`, as part of a cache key.
std::string layout_key(std::initializer_list<const torch::Tensor*> tensors) {
  std::string key;
  for (const auto* t : tensors) {
    for (auto s : t->sizes()) key += std::to_string(s) + ",";
    key += ":";
    for (auto s : t->strides()) key += std::to_string(s) + ",";
    key += ";";
  }
  return key;
}

// Building a primitive JIT-compiles its kernel (tenths of a millisecond to milliseconds), so each one is
// kept, keyed by what it computes, its operands' shapes and strides and the thread count it was built
// for. A training job meets a few dozen keys; the bound only guards a process that sees many shapes.
// `build` returns the primitive's descriptor, or throws dnnl::error for operands oneDNN does not take.
template <typename PrimitiveDesc, typename Primitive>
std::shared_ptr<const Kernel> kernel_for(const std::string& what, const std::function<PrimitiveDesc(const dnnl::primitive_attr&)>& build) {
  static std::mutex mutex;
  static std::unordered_map<std::string, std::shared_ptr<const Kernel>> cache;
  const std::string key = std::to_string(at::get_num_threads()) + ";" + what;
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
  }
  auto made = std::make_shared<Kernel>();
  try {
    dnnl::primitive_attr attr;
    // The scratchpad comes from libtorch's allocator per call, so concurrent jobs never share one.
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
#if DNNL_VERSION_MAJOR >= 3
    // float32 arithmetic whatever ONEDNN_DEFAULT_FPMATH_MODE says (bf16 would change the numerics).
    attr.set_fpmath_mode(dnnl::fpmath_mode::strict);
#endif
    const PrimitiveDesc pd = build(attr);
    // oneDNN's reference kernels (operands it has no fast kernel for) would be far slower than libtorch.
    if (std::string(pd.impl_info_str()).rfind("ref", 0) != 0) {
      made->scratchpad = pd.scratchpad_desc();
      made->primitive = std::make_shared<const Primitive>(pd);
    }
  } catch (const dnnl::error&) {
    made->primitive.reset();  // unsupported strides or shapes: libtorch does this one
  }
  std::lock_guard<std::mutex> lock(mutex);
  if (cache.size() >= 1024) cache.clear();
  return cache.emplace(key, std::move(made)).first->second;
}

// Runs `kernel` on `args` plus a scratchpad from libtorch's allocator.
void run(const Kernel& kernel, std::unordered_map<int, dnnl::memory> args) {
  auto& engine = cpu_engine();
  // oneDNN's CPU stream is synchronous; one per thread, as a stream is not to be shared between threads.
  thread_local dnnl::stream stream(engine);
  const auto scratch = torch::empty({static_cast<int64_t>(kernel.scratchpad.get_size())}, torch::kUInt8);
  args.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(kernel.scratchpad, engine, scratch.data_ptr()));
  kernel.primitive->execute(stream, args);
  stream.wait();
}

}  // namespace

std::string onednn_version() {
  const auto* v = dnnl::version();
  return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
}

bool onednn_fits_cpu() {
  // The instruction set oneDNN itself runs here (the CPU's, capped by ONEDNN_MAX_CPU_ISA where set): its
  // values nest bit by bit (avx2 0x7 holds avx 0x3 and sse41 0x1; every AVX-512 and AMX level holds avx2),
  // in oneDNN 2.6 and 3.x alike.
  const auto isa = static_cast<unsigned>(dnnl_get_effective_cpu_isa());
  return (isa & dnnl_cpu_isa_avx2) == dnnl_cpu_isa_avx2;
}

bool onednn_matmul_out(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& out, bool accumulate) {
  if (!takes(a, b, out)) return false;
  using Desc = dnnl::matmul::primitive_desc;
  const auto kernel = kernel_for<Desc, dnnl::matmul>(
      (accumulate ? "matmul+=;" : "matmul;") + layout_key({&a, &b, &out}), [&](dnnl::primitive_attr attr) {
        if (accumulate) {  // out += a · b: oneDNN's sum post-op adds the product to what out holds
          dnnl::post_ops sum;
          sum.append_sum(1.f);
          attr.set_post_ops(sum);
        }
#if DNNL_VERSION_MAJOR >= 3
        return Desc(cpu_engine(), desc_of(a), desc_of(b), desc_of(out), attr);
#else
        return Desc(dnnl::matmul::desc(desc_of(a), desc_of(b), desc_of(out)), attr, cpu_engine());
#endif
      });
  if (!kernel->primitive) return false;
  auto& engine = cpu_engine();
  run(*kernel, {{DNNL_ARG_SRC, dnnl::memory(desc_of(a), engine, a.data_ptr())},
                {DNNL_ARG_WEIGHTS, dnnl::memory(desc_of(b), engine, b.data_ptr())},
                {DNNL_ARG_DST, dnnl::memory(desc_of(out), engine, out.data_ptr())}});
  return true;
}

bool onednn_softmax_rows_(const torch::Tensor& x) {
  if (x.dim() != 2 || !x.is_contiguous() || x.scalar_type() != torch::kFloat32 || !x.device().is_cpu() || x.numel() == 0)
    return false;
  using Desc = dnnl::softmax_forward::primitive_desc;
  const auto md = desc_of(x);
  const auto kernel = kernel_for<Desc, dnnl::softmax_forward>("softmax;" + layout_key({&x}), [&](const dnnl::primitive_attr& attr) {
#if DNNL_VERSION_MAJOR >= 3
    return Desc(cpu_engine(), dnnl::prop_kind::forward_inference, dnnl::algorithm::softmax_accurate, md, md, 1, attr);
#else
    return Desc(dnnl::softmax_forward::desc(dnnl::prop_kind::forward_inference, md, 1), attr, cpu_engine());
#endif
  });
  if (!kernel->primitive) return false;
  const dnnl::memory rows(md, cpu_engine(), x.data_ptr());
  run(*kernel, {{DNNL_ARG_SRC, rows}, {DNNL_ARG_DST, rows}});
  return true;
}
#else
std::string onednn_version() { return ""; }
bool onednn_fits_cpu() { return false; }
bool onednn_matmul_out(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, bool) { return false; }
bool onednn_softmax_rows_(const torch::Tensor&) { return false; }
#endif

void product_out(const torch::Tensor& a, const torch::Tensor& b, torch::Tensor out, bool onednn, bool accumulate) {
  if (onednn && onednn_matmul_out(a, b, out, accumulate)) return;
  if (!accumulate) {
    at::matmul_out(out, a, b);
    return;
  }
  TORCH_CHECK(a.dim() == 2 && b.dim() == 2, "product_out accumulates 2-D products only");
  out.addmm_(a, b);
}

bool onednn_product_pays(double multiply_adds) {
  // Between the small shape's head chunk (4.3e9: faster in oneDNN within a step) and 2048³ (8.6e9:
  // 0.9-1.0x alone); onednn.h has the measurements.
  constexpr double kMaxMultiplyAdds = 6e9;
  return multiply_adds < kMaxMultiplyAdds;
}

namespace {

// a · b into a fresh tensor, by oneDNN (`onednn`, unless it declines) or by libtorch.
torch::Tensor product(const torch::Tensor& a, const torch::Tensor& b, bool onednn = true) {
  TORCH_CHECK(a.dim() == b.dim() && a.sizes().slice(0, a.dim() - 2) == b.sizes().slice(0, b.dim() - 2),
              "onednn products take operands with the same batch dims, not broadcast ones");
  auto shape = a.sizes().vec();
  shape.back() = b.size(-1);
  auto out = torch::empty(shape, a.options());
  product_out(a, b, out, onednn);
  return out;
}

// Whether a linear layer's products (rows × in · in × out, and its two gradients, the same count of
// multiply-adds) go to oneDNN (onednn_product_pays).
bool linear_in_onednn(int64_t rows, const torch::Tensor& w) {
  return onednn_product_pays(static_cast<double>(rows) * static_cast<double>(w.size(0)) * static_cast<double>(w.size(1)));
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
