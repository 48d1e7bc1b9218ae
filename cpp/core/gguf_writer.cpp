#include "core/gguf_writer.h"

#include <cmath>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/finite_check.h"

namespace lep {

namespace {

class Out {
 public:
  explicit Out(AtomicFile& f) : f_(f) {}
  template <class T>
  void pod(T v) { f_.write(&v, sizeof(T)); }
  void str(const std::string& s) {
    pod<uint64_t>(s.size());
    f_.write(s.data(), s.size());
  }
  void pad() {
    static const char zeros[kGgufAlignment] = {};
    const uint64_t rem = f_.tell() % kGgufAlignment;
    if (rem) f_.write(zeros, kGgufAlignment - rem);
  }
  void bytes(const void* p, size_t n) { f_.write(p, n); }

 private:
  AtomicFile& f_;
};

// The value must be representable in the key's type: a config value narrowed to uint32 (intermediate_size
// 2^40 became 0) gives a file llama.cpp aborts on.
void check_range(const std::string& key, GgufType t, double v) {
  auto in = [&](double lo, double hi) { return v >= lo && v <= hi && v == std::floor(v); };
  bool ok = true;
  switch (t) {
    case GgufType::UINT8: ok = in(0, 255); break;
    case GgufType::INT8: ok = in(-128, 127); break;
    case GgufType::UINT16: ok = in(0, 65535); break;
    case GgufType::INT16: ok = in(-32768, 32767); break;
    case GgufType::UINT32: ok = in(0, 4294967295.0); break;
    case GgufType::INT32: ok = in(-2147483648.0, 2147483647.0); break;
    case GgufType::UINT64: ok = in(0, 18446744073709549568.0); break;
    case GgufType::INT64: ok = in(-9223372036854775808.0, 9223372036854774784.0); break;
    case GgufType::FLOAT32: ok = std::isfinite(v) && std::fabs(v) <= 3.4028234663852886e38; break;
    case GgufType::FLOAT64: ok = std::isfinite(v); break;
    default: break;
  }
  if (!ok)
    throw Error("LEP_BAD_GGUF", "GGUF key '" + key + "': the value " + std::to_string(v) + " does not fit its type (" +
                                    std::to_string(static_cast<uint32_t>(t)) + ")");
}

void write_number(Out& out, GgufType t, double v) {
  switch (t) {
    case GgufType::UINT8: out.pod<uint8_t>(static_cast<uint8_t>(v)); break;
    case GgufType::INT8: out.pod<int8_t>(static_cast<int8_t>(v)); break;
    case GgufType::UINT16: out.pod<uint16_t>(static_cast<uint16_t>(v)); break;
    case GgufType::INT16: out.pod<int16_t>(static_cast<int16_t>(v)); break;
    case GgufType::UINT32: out.pod<uint32_t>(static_cast<uint32_t>(v)); break;
    case GgufType::INT32: out.pod<int32_t>(static_cast<int32_t>(v)); break;
    case GgufType::FLOAT32: out.pod<float>(static_cast<float>(v)); break;
    case GgufType::BOOL: out.pod<uint8_t>(v != 0 ? 1 : 0); break;
    case GgufType::UINT64: out.pod<uint64_t>(static_cast<uint64_t>(v)); break;
    case GgufType::INT64: out.pod<int64_t>(static_cast<int64_t>(v)); break;
    case GgufType::FLOAT64: out.pod<double>(v); break;
    default: throw Error("LEP_BAD_GGUF", "not a numeric GGUF type");
  }
}

torch::ScalarType torch_type(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return torch::kFloat32;
    case GgmlType::F16: return torch::kFloat16;
    case GgmlType::BF16: return torch::kBFloat16;
  }
  throw Error("LEP_BAD_GGUF", "unknown ggml type");
}

uint64_t padded(uint64_t n) { return (n + kGgufAlignment - 1) / kGgufAlignment * kGgufAlignment; }

}  // namespace

torch::Tensor permute_for_llama_rope(const torch::Tensor& w, int64_t n_heads) {
  auto shape = w.sizes().vec();
  std::vector<int64_t> split = {n_heads, 2, shape[0] / n_heads / 2};
  split.insert(split.end(), shape.begin() + 1, shape.end());
  return w.reshape(split).transpose(1, 2).reshape(shape);
}

uint64_t write_gguf(const std::string& path, const std::vector<GgufKV>& kvs, const std::vector<GgufTensor>& tensors,
                    const ProgressFn& progress) {
  std::set<std::string> names;
  for (const auto& t : tensors) {
    if (!names.insert(t.name).second) throw Error("LEP_BAD_GGUF", "GGUF tensor '" + t.name + "' given twice");
    if (t.name.size() >= 64) throw Error("LEP_BAD_GGUF", "GGUF tensor name '" + t.name + "' is 64 bytes or longer");
    if (t.data.dim() < 1 || t.data.dim() > 4) throw Error("LEP_BAD_GGUF", "GGUF tensor '" + t.name + "' must have 1 to 4 dims");
  }
  for (const auto& kv : kvs) {
    if (kv.type == GgufType::ARRAY) {
      for (double v : kv.numbers) check_range(kv.key, kv.item_type, v);
    } else if (kv.type != GgufType::STRING) {
      check_range(kv.key, kv.type, kv.number);
    }
  }
  AtomicFile file(path);
  Out out(file);
  out.bytes("GGUF", 4);
  out.pod<uint32_t>(3);
  out.pod<uint64_t>(tensors.size());
  out.pod<uint64_t>(kvs.size());
  for (const auto& kv : kvs) {
    out.str(kv.key);
    out.pod<uint32_t>(static_cast<uint32_t>(kv.type));
    if (kv.type == GgufType::STRING) {
      out.str(kv.string);
    } else if (kv.type == GgufType::ARRAY) {
      out.pod<uint32_t>(static_cast<uint32_t>(kv.item_type));
      if (kv.item_type == GgufType::STRING) {
        out.pod<uint64_t>(kv.strings.size());
        for (const auto& s : kv.strings) out.str(s);
      } else {
        out.pod<uint64_t>(kv.numbers.size());
        for (double v : kv.numbers) write_number(out, kv.item_type, v);
      }
    } else {
      write_number(out, kv.type, kv.number);
    }
  }
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    out.str(t.name);
    out.pod<uint32_t>(static_cast<uint32_t>(t.data.dim()));
    for (int64_t d = t.data.dim() - 1; d >= 0; --d) out.pod<uint64_t>(t.data.size(d));  // ne[0] = innermost
    out.pod<uint32_t>(static_cast<uint32_t>(t.type));
    out.pod<uint64_t>(offset);
    offset += padded(t.data.numel() * c10::elementSize(torch_type(t.type)));
  }
  out.pad();
  int64_t i = 0;
  for (const auto& t : tensors) {
    torch::Tensor w = t.data;
    if (t.permute_heads > 0) w = permute_for_llama_rope(w, t.permute_heads);
    // bf16/f16 sources go through float32 so each conversion rounds once, to nearest even.
    w = w.to(torch::kCPU).to(torch::kFloat32).to(torch_type(t.type)).contiguous();
    // After the conversion: a finite f32 weight beyond f16's range (65504) becomes infinite here.
    check_finite(path, t.name, w,
                 t.type == GgmlType::F16 ? "the weights are not finite, or exceed f16's range (65504); if the source is finite, export with --outtype bf16 or f32."
                                         : "");
    out.bytes(w.data_ptr(), w.numel() * w.element_size());
    out.pad();
    if (progress && !progress(ProgressEvent{"gguf", ++i, static_cast<int64_t>(tensors.size()), {}}))
      throw Error("LEP_ABORTED", "GGUF export aborted");
  }
  const uint64_t bytes = file.tell();
  file.commit();
  return bytes;
}

}  // namespace lep
