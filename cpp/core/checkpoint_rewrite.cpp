#include "core/checkpoint_rewrite.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/checkpoint.h"
#include "core/error.h"
#include "core/finite_check.h"
#include "core/safetensors.h"

namespace lep {

namespace {

// One tensor of the output: either bytes at [offset, offset + bytes) of a source file, or a tensor.
struct Entry {
  std::string name, dtype;
  std::vector<int64_t> shape;
  uint64_t bytes = 0;
  std::string file;      // source file (empty for a replacement)
  uint64_t offset = 0;   // absolute byte offset in `file`
  torch::Tensor tensor;  // replacement, contiguous on CPU
};

uint64_t data_start(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("LEP_FILE_NOT_FOUND", "cannot open " + path + ": " + std::strerror(errno));
  uint64_t len = 0;
  const ssize_t n = ::pread(fd, &len, 8, 0);
  ::close(fd);
  if (n != 8) throw Error("LEP_IO", "cannot read the header length of " + path);
  return 8 + len;
}

class Copier {
 public:
  explicit Copier(const ProgressFn& progress, uint64_t total) : progress_(progress), total_(total), buf_(16 << 20) {}

  // Copies one tensor into `out` (the file `path`), checking that every value is finite on the way.
  void copy(const Entry& e, AtomicFile& out, const std::string& path) {
    if (e.file.empty()) {
      check_finite(path, e.name, e.tensor);
      const auto* p = static_cast<const char*>(e.tensor.data_ptr());
      for (uint64_t at = 0; at < e.bytes; at += buf_.size()) {
        const uint64_t n = std::min<uint64_t>(buf_.size(), e.bytes - at);
        out.write(p + at, n);
        advance(n);
      }
      return;
    }
    if (e.file != open_name_) {
      close();
      fd_ = ::open(e.file.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd_ < 0) throw Error("LEP_FILE_NOT_FOUND", "cannot open " + e.file + ": " + std::strerror(errno));
      open_name_ = e.file;
    }
    const int64_t elem = dtype_size(e.dtype);
    int64_t row_length = 1;
    for (size_t d = 1; d < e.shape.size(); ++d) row_length *= e.shape[d];
    // The buffer is a whole number of elements and is filled completely before the check.
    for (uint64_t at = 0; at < e.bytes;) {
      const uint64_t want = std::min<uint64_t>(buf_.size(), e.bytes - at);
      for (uint64_t got = 0; got < want;) {
        const ssize_t n = ::pread(fd_, buf_.data() + got, want - got, static_cast<off_t>(e.offset + at + got));
        if (n <= 0) throw Error("LEP_IO", "cannot read tensor '" + e.name + "' from " + e.file + ": " +
                                              (n == 0 ? std::string("file ends early") : std::strerror(errno)));
        got += static_cast<uint64_t>(n);
      }
      check_finite(path, e.name, e.dtype, buf_.data(), static_cast<int64_t>(want) / elem, static_cast<int64_t>(at) / elem,
                   row_length);
      out.write(buf_.data(), want);
      at += want;
      advance(want);
    }
  }
  ~Copier() { close(); }

 private:
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    open_name_.clear();
  }
  void advance(uint64_t n) {
    done_ += n;
    // One event per 256 MB keeps the JS side quiet on big models.
    if (done_ - reported_ >= (256ull << 20) || done_ == total_) {
      reported_ = done_;
      if (progress_ && !progress_(ProgressEvent{"write", static_cast<int64_t>(done_), static_cast<int64_t>(total_), {}}))
        throw Error("LEP_ABORTED", "writing the checkpoint was aborted");
    }
  }
  const ProgressFn& progress_;
  uint64_t total_, done_ = 0, reported_ = 0;
  std::vector<char> buf_;
  int fd_ = -1;
  std::string open_name_;
};

void write_file(const std::string& path, const std::vector<const Entry*>& entries, Copier& copier) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  header["__metadata__"] = {{"format", "pt"}};
  uint64_t offset = 0;
  for (const Entry* e : entries) {
    header[e->name] = {{"dtype", e->dtype}, {"shape", e->shape}, {"data_offsets", {offset, offset + e->bytes}}};
    offset += e->bytes;
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // 8-byte aligned data section, as the reference writer does
  AtomicFile out(path);
  const uint64_t len = h.size();
  out.write(&len, 8);
  out.write(h.data(), h.size());
  for (const Entry* e : entries) copier.copy(*e, out, path);
  out.commit();
}

}  // namespace

std::vector<std::string> rewrite_checkpoint(const std::vector<std::string>& source_files,
                                            const std::map<std::string, torch::Tensor>& replace,
                                            const std::string& dir, uint64_t max_shard_bytes,
                                            const ProgressFn& progress) {
  std::map<std::string, Entry> entries;
  for (const auto& f : source_files) {
    const SafetensorsFile st(f);  // validates the header; the mapping is dropped at the end of this scope
    const uint64_t start = data_start(f);
    for (const auto& info : st.tensors()) {
      if (entries.count(info.name))
        throw Error("LEP_DUPLICATE_TENSOR", "tensor '" + info.name + "' is in both " + entries[info.name].file + " and " + f);
      entries[info.name] = Entry{info.name, info.dtype, info.shape, info.end - info.begin, f, start + info.begin, {}};
    }
  }
  for (const auto& [name, t] : replace) {
    auto c = t.detach().to(torch::kCPU).contiguous();
    entries[name] = Entry{name, dtype_to_safetensors(c.scalar_type()), c.sizes().vec(),
                          static_cast<uint64_t>(c.numel() * c.element_size()), "", 0, c};
  }
  std::vector<const Entry*> order;
  std::vector<ShardItem> items;
  uint64_t total = 0;
  for (const auto& [name, e] : entries) {
    order.push_back(&e);
    items.push_back({name, e.bytes});
    total += e.bytes;
  }
  Copier copier(progress, total);
  return write_shards(dir, items, max_shard_bytes, [&](const std::string& path, const std::vector<size_t>& idx) {
    std::vector<const Entry*> shard;
    for (size_t k : idx) shard.push_back(order[k]);
    write_file(path, shard, copier);
  });
}

}  // namespace lep
