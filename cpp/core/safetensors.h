// Safetensors (https://github.com/huggingface/safetensors) reader and writer.
// Hand-written: the format is small (8-byte header length, JSON header, raw little-endian bytes) and no
// C++ library is packaged for Debian; what matters here is strict validation and zero-copy mmap reads.
#pragma once
#include <torch/torch.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/safetensors_header.h"

namespace lep {

class MappedFile;  // an mmap'ed file; shared by every tensor viewing it

// An open safetensors file. Tensors returned by tensor() view the mapping (no copy) and keep it alive.
// The mapping is read-only, or with `writable` private copy-on-write: a write into a view then changes
// this process's copy of the pages written, never the file (what a model's parameters need).
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path, bool writable = false);
  const std::string& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return infos_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool has(const std::string& name) const { return index_.count(name) > 0; }
  const TensorInfo& info(const std::string& name) const;
  // Zero-copy view of the named tensor (read-only memory unless the file was opened writable).
  torch::Tensor tensor(const std::string& name) const;

 private:
  std::string path_;
  std::shared_ptr<MappedFile> map_;
  uint64_t data_start_ = 0;
  std::vector<TensorInfo> infos_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

torch::ScalarType dtype_from_safetensors(const std::string& dtype);  // throws lep::Error on unknown
std::string dtype_to_safetensors(torch::ScalarType t);
int64_t dtype_size(const std::string& dtype);

// Write tensors (in the given order) to `path` atomically: temporary file in the same directory,
// fsync, rename. Tensors are written contiguous, in their own dtype or, floating ones, in `float_dtype`.
// Each is copied to the CPU (or converted) only as it is checked and written, one at a time: a model on a
// GPU, or one stored in another dtype, is never held twice whole.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {},
                       std::optional<torch::ScalarType> float_dtype = std::nullopt);

}  // namespace lep
