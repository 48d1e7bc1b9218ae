#include "core/finite_check.h"

#include <cstring>

#include "core/error.h"
#include "core/safetensors.h"

namespace lep {

namespace {

// An IEEE value is NaN or infinite exactly when all its exponent bits are set.
template <class U>
int64_t scan(const void* data, int64_t n, U exponent) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  constexpr int64_t kBlock = 4096;  // the inner loop has no early exit, so the compiler vectorises it
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    bool any = false;
    for (int64_t i = b; i < e; ++i) {
      U x;
      std::memcpy(&x, bytes + i * sizeof(U), sizeof(U));  // the data may be unaligned (an mmap'ed file)
      any |= (x & exponent) == exponent;
    }
    if (!any) continue;
    for (int64_t i = b; i < e; ++i) {
      U x;
      std::memcpy(&x, bytes + i * sizeof(U), sizeof(U));
      if ((x & exponent) == exponent) return i;
    }
  }
  return -1;
}

}  // namespace

int64_t first_non_finite(const void* data, int64_t n, const std::string& dtype) {
  if (dtype == "F32") return scan<uint32_t>(data, n, 0x7f800000u);
  if (dtype == "BF16") return scan<uint16_t>(data, n, 0x7f80u);
  if (dtype == "F16") return scan<uint16_t>(data, n, 0x7c00u);
  if (dtype == "F64") return scan<uint64_t>(data, n, 0x7ff0000000000000ull);
  return -1;
}

void check_finite(const std::string& file, const std::string& name, const std::string& dtype, const void* data, int64_t n,
                  int64_t first_element, int64_t row_length, const std::string& hint) {
  const int64_t i = first_non_finite(data, n, dtype);
  if (i < 0) return;
  const int64_t at = first_element + i, row = row_length > 0 ? at / row_length : 0;
  int64_t count = 0;
  for (int64_t k = i; k < n;) {  // how many, for the message (the error path only)
    ++count;
    const int64_t next = first_non_finite(static_cast<const char*>(data) + (k + 1) * safetensors_dtype_size(dtype), n - k - 1, dtype);
    if (next < 0) break;
    k += next + 1;
  }
  throw Error("LEP_NON_FINITE", file + ": tensor '" + name + "' holds a NaN or infinite value at row " + std::to_string(row) +
                                    " (element " + std::to_string(at - row * row_length) + "; " + std::to_string(count) +
                                    " non-finite values in all); refusing to write non-finite weights" +
                                    "\nHINT: " + (hint.empty() ? "the input weights or a training run diverged; start from a finite checkpoint (an earlier one, or a run with a lower learning rate)." : hint));
}

void check_finite(const std::string& file, const std::string& name, const torch::Tensor& t, const std::string& hint) {
  if (!t.is_floating_point()) return;
  const auto c = t.detach().to(torch::kCPU).contiguous();
  const int64_t row_length = c.dim() > 1 ? c.numel() / std::max<int64_t>(c.size(0), 1) : 1;
  check_finite(file, name, dtype_to_safetensors(c.scalar_type()), c.data_ptr(), c.numel(), 0, row_length, hint);
}

}  // namespace lep
