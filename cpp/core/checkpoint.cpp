#include "core/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/fork_gate.h"
#include "core/safetensors.h"

namespace lep {

namespace {
// Calls fn(file, info) for every tensor of every file; a name found in two files is an error.
void for_each_tensor(const std::vector<std::string>& files, const std::function<void(const SafetensorsFile&, const TensorInfo&)>& fn,
                     bool writable = false) {
  std::map<std::string, std::string> where;
  for (const auto& f : files) {
    SafetensorsFile st(f, writable);
    for (const auto& info : st.tensors()) {
      if (where.count(info.name))
        throw Error("LEP_DUPLICATE_TENSOR", "tensor '" + info.name + "' is in both " + where[info.name] + " and " + f);
      where[info.name] = f;
      fn(st, info);
    }
  }
}
}  // namespace

std::map<std::string, torch::Tensor> read_checkpoint(const std::vector<std::string>& files, bool writable) {
  std::map<std::string, torch::Tensor> out;
  for_each_tensor(files, [&](const SafetensorsFile& st, const TensorInfo& info) { out[info.name] = st.tensor(info.name); }, writable);
  return out;
}

std::map<std::string, TensorShape> checkpoint_shapes(const std::vector<std::string>& files) {
  std::map<std::string, TensorShape> out;
  for_each_tensor(files, [&](const SafetensorsFile&, const TensorInfo& info) { out[info.name] = TensorShape{info.dtype, info.shape}; });
  return out;
}

std::vector<std::string> write_shards(const std::string& dir, const std::vector<ShardItem>& items, uint64_t max_shard_bytes,
                                      const std::function<void(const std::string&, const std::vector<size_t>&)>& write_shard) {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  std::vector<std::vector<size_t>> shards(1);
  uint64_t shard_bytes = 0, total = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    if (max_shard_bytes && shard_bytes > 0 && shard_bytes + items[i].bytes > max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(i);
    shard_bytes += items[i].bytes;
    total += items[i].bytes;
  }
  std::vector<std::string> written;
  const fs::path index_path = fs::path(dir) / "model.safetensors.index.json";
  if (shards.size() == 1) {
    write_shard((fs::path(dir) / "model.safetensors").string(), shards[0]);
    written.push_back("model.safetensors");
    fs::remove(index_path);
  } else {
    nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
    for (size_t i = 0; i < shards.size(); ++i) {
      std::ostringstream name;
      name << "model-" << std::setw(5) << std::setfill('0') << (i + 1) << "-of-" << std::setw(5) << std::setfill('0')
           << shards.size() << ".safetensors";
      write_shard((fs::path(dir) / name.str()).string(), shards[i]);
      written.push_back(name.str());
      for (size_t k : shards[i]) weight_map[items[k].name] = name.str();
    }
    nlohmann::ordered_json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    const std::string text = index.dump(2) + "\n";
    AtomicFile f(index_path.string());
    f.write(text.data(), text.size());
    f.commit();
    written.push_back("model.safetensors.index.json");
    fs::remove(fs::path(dir) / "model.safetensors");
  }
  // Remove shards left from an earlier write with a different shard count.
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string n = entry.path().filename().string();
    if (n.rfind("model-", 0) == 0 && n.size() > 12 && n.substr(n.size() - 12) == ".safetensors" &&
        std::find(written.begin(), written.end(), n) == written.end())
      fs::remove(entry.path());
  }
  return written;
}

std::vector<std::string> write_checkpoint(const std::string& dir, const std::map<std::string, torch::Tensor>& tensors,
                                          uint64_t max_shard_bytes, torch::ScalarType dtype) {
  // Floating tensors are stored in `dtype`; integer tensors keep theirs. write_safetensors converts them
  // one at a time as it writes (converted here up front, a float32 model stored as bf16 was held 1.5 times).
  std::vector<std::pair<std::string, torch::Tensor>> named(tensors.begin(), tensors.end());
  std::vector<ShardItem> items;
  for (const auto& [name, t] : named)
    items.push_back({name, static_cast<uint64_t>(t.numel()) * c10::elementSize(t.is_floating_point() ? dtype : t.scalar_type())});
  return write_shards(dir, items, max_shard_bytes, [&](const std::string& path, const std::vector<size_t>& idx) {
    std::vector<std::pair<std::string, torch::Tensor>> shard;
    for (size_t k : idx) shard.push_back(named[k]);
    write_safetensors(path, shard, {{"format", "pt"}}, dtype);
  });
}

}  // namespace lep
