// The safetensors header (8-byte little-endian length, JSON object) parsed and validated without libtorch,
// so the rules can be fuzzed on their own (fuzz/safetensors_header.cpp). The rules are the reference
// library's (safetensors/src/tensor.rs, `Metadata::validate`): header length in range, every tensor's
// element count and byte count computed with overflow checks (its ValidationOverflow), bytes equal to
// dtype size x element count, tensors contiguous from offset 0 with no gap or overlap, and the data
// section fully covered. Names must be unique.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lep {

struct TensorInfo {
  std::string name;
  std::string dtype;  // safetensors dtype string: F32, F16, BF16, I64, ...
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets relative to the start of the data section
  uint64_t end = 0;
};

struct SafetensorsHeader {
  uint64_t data_start = 0;          // 8 + header length
  std::vector<TensorInfo> tensors;  // in file order (by begin)
  std::map<std::string, std::string> metadata;
};

// The reference library refuses headers above 100 MB; so do we (bounds the JSON parse of a hostile file).
constexpr uint64_t kMaxSafetensorsHeader = 100'000'000;

// Element size in bytes of a safetensors dtype string, or 0 when lep does not know the dtype.
int64_t safetensors_dtype_size(const std::string& dtype);

// Parses the header of a whole file held in [data, data + size). `path` names the file in messages.
// Throws lep::Error(LEP_BAD_SAFETENSORS) with the rule that failed.
SafetensorsHeader parse_safetensors_header(const uint8_t* data, uint64_t size, const std::string& path);

// The exact decimal product of `factors` (no overflow at any size): error messages print true products.
std::string exact_product(const std::vector<uint64_t>& factors);

}  // namespace lep
