// Model weights in Hugging Face layout: one model.safetensors, or shards plus model.safetensors.index.json.
// TS resolves which files make up a checkpoint; the core maps them and writes them.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/model_tensors.h"

namespace lep {

// Zero-copy views of every tensor in the given safetensors files (the mappings stay alive with the
// tensors; read-only, or private copy-on-write with `writable`: see SafetensorsFile). A tensor name
// found in two files is an error.
std::map<std::string, torch::Tensor> read_checkpoint(const std::vector<std::string>& files, bool writable = false);

// Dtype and shape of every tensor in the given files, from their headers only (validated; nothing is
// read or allocated). A tensor name found in two files is an error.
std::map<std::string, TensorShape> checkpoint_shapes(const std::vector<std::string>& files);

// Write `tensors` (sorted by name) into `dir`: model.safetensors when everything fits in
// `max_shard_bytes` (0 = no limit), else model-0000i-of-0000n.safetensors plus model.safetensors.index.json.
// Stale files of the other layout are removed afterwards. Returns the files written.
std::vector<std::string> write_checkpoint(const std::string& dir, const std::map<std::string, torch::Tensor>& tensors,
                                          uint64_t max_shard_bytes, torch::ScalarType dtype = torch::kFloat32);

// The Hugging Face shard layout, shared by every checkpoint writer: items (name, bytes), in the order
// given, are grouped into shards of at most `max_shard_bytes` (0 = one file); `write_shard(path, items)`
// writes one safetensors file with the items at those indices. One shard is model.safetensors; more are
// model-0000i-of-0000n.safetensors plus model.safetensors.index.json. Files of the other layout or of an
// earlier shard count are removed afterwards. Returns the file names written.
struct ShardItem {
  std::string name;
  uint64_t bytes;
};
std::vector<std::string> write_shards(const std::string& dir, const std::vector<ShardItem>& items, uint64_t max_shard_bytes,
                                      const std::function<void(const std::string& path, const std::vector<size_t>& items)>& write_shard);

}  // namespace lep
