// Every tensor lep writes must be finite: a NaN donor or a diverged run would otherwise give a model
// that is mostly NaN and a command that exits 0. The scan works on raw bytes (one pass over the bits of
// the exponent, no allocation), so writers can check a tensor or a streamed chunk of one as they write it.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace lep {

// Index of the first NaN or infinity among the `n` elements of safetensors dtype `dtype` at `data`, or -1.
// Integer and bool dtypes are always finite.
int64_t first_non_finite(const void* data, int64_t n, const std::string& dtype);

// Throws lep::Error(LEP_NON_FINITE) naming `file` (being written), the tensor and the row, when one of the
// `n` elements at `data` is not finite. They are elements [first_element, first_element + n) of the
// tensor, whose rows hold `row_length` elements. `hint` says how to fix the cause.
void check_finite(const std::string& file, const std::string& name, const std::string& dtype, const void* data, int64_t n,
                  int64_t first_element, int64_t row_length, const std::string& hint = "");

// The same for a whole tensor (any device; copied to the CPU only when it is not there already).
void check_finite(const std::string& file, const std::string& name, const torch::Tensor& t, const std::string& hint = "");

}  // namespace lep
