#include "core/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/finite_check.h"
#include "core/fork_gate.h"

namespace lep {

class MappedFile {
 public:
  MappedFile(const std::string& path, bool writable) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error("LEP_FILE_NOT_FOUND", "cannot open " + path + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      throw Error("LEP_IO", "cannot stat " + path + ": " + std::strerror(errno));
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {
      // Writable (a model's parameters, llama_model.cpp load_weights): private, so a write copies the
      // pages written and never reaches the file; MAP_NORESERVE, so an untouched 16 GB mapping is not
      // charged against the commit limit where the kernel overcommits. Under vm.overcommit_memory=2 (or a
      // data ulimit) it is charged: once the model, as a copy is (the model allocates no parameter it
      // would replace by the mapping; llama_model.cpp). Every other reader maps read-only: a stray
      // write there faults instead of changing what later reads see.
      data_ = writable ? ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0)
                       : ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (data_ == MAP_FAILED) {
        const int err = errno;
        ::close(fd);
        // ENOMEM: the mapping would pass a limit (an address-space or data ulimit, the commit limit).
        if (err == ENOMEM)
          throw Error("LEP_OUT_OF_MEMORY", "cannot map " + path + " (" + std::to_string(size_) + " bytes) into memory: " +
                                               std::strerror(err) + "\n" + out_of_memory_hint());
        throw Error("LEP_IO", "cannot mmap " + path + ": " + std::strerror(err));
      }
      // A model's parameters over this mapping: the pages a write copies (an optimizer step, a LoRA
      // merge; llama_model.cpp) are anonymous, and a child process (Node forks for every spawn) would
      // get their page tables copied, the job a fault on each page it writes next (cpu_allocator.h).
      // No child touches them before it execs.
      if (writable) ::madvise(data_, size_, MADV_DONTFORK);
    }
    ::close(fd);
  }
  ~MappedFile() {
    if (data_ && data_ != MAP_FAILED) ::munmap(data_, size_);
  }
  const uint8_t* data() const { return static_cast<const uint8_t*>(data_); }
  size_t size() const { return size_; }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

namespace {

struct DtypeEntry {
  const char* name;
  torch::ScalarType type;
};
const DtypeEntry kDtypes[] = {
    {"F64", torch::kFloat64}, {"F32", torch::kFloat32}, {"F16", torch::kFloat16}, {"BF16", torch::kBFloat16},
    {"I64", torch::kInt64},   {"I32", torch::kInt32},   {"I16", torch::kInt16},   {"I8", torch::kInt8},
    {"U8", torch::kUInt8},    {"BOOL", torch::kBool},
};

}  // namespace

torch::ScalarType dtype_from_safetensors(const std::string& dtype) {
  for (const auto& e : kDtypes)
    if (dtype == e.name) return e.type;
  throw Error("LEP_BAD_DTYPE", "unsupported safetensors dtype '" + dtype + "'");
}

int64_t dtype_size(const std::string& dtype) {
  if (int64_t n = safetensors_dtype_size(dtype)) return n;
  throw Error("LEP_BAD_DTYPE", "unsupported safetensors dtype '" + dtype + "'");
}

std::string dtype_to_safetensors(torch::ScalarType t) {
  for (const auto& e : kDtypes)
    if (t == e.type) return e.name;
  throw Error("LEP_BAD_DTYPE", std::string("cannot store tensors of dtype ") + c10::toString(t) + " in safetensors");
}

SafetensorsFile::SafetensorsFile(const std::string& path, bool writable) : path_(path), map_(std::make_shared<MappedFile>(path, writable)) {
  SafetensorsHeader h = parse_safetensors_header(map_->data(), map_->size(), path);
  data_start_ = h.data_start;
  infos_ = std::move(h.tensors);
  metadata_ = std::move(h.metadata);
  for (size_t i = 0; i < infos_.size(); ++i) index_[infos_[i].name] = i;
}

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) throw Error("LEP_MISSING_TENSOR", path_ + " has no tensor '" + name + "'");
  return infos_[it->second];
}

torch::Tensor SafetensorsFile::tensor(const std::string& name) const {
  const TensorInfo& i = info(name);
  auto keep = map_;  // the deleter owns a reference to the mapping
  void* ptr = const_cast<uint8_t*>(map_->data() + data_start_ + i.begin);
  auto opts = torch::TensorOptions().dtype(dtype_from_safetensors(i.dtype));
  if (i.end == i.begin) return torch::empty(i.shape, opts);
  return torch::from_blob(ptr, i.shape, [keep](void*) mutable { keep.reset(); }, opts);
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata, std::optional<torch::ScalarType> float_dtype) {
  // What one tensor is stored as: on the CPU, contiguous, in the stored dtype (a no-op for a contiguous
  // CPU tensor of that dtype; otherwise one tensor's copy, made when it is needed and dropped after).
  const auto dtype_of = [&](const torch::Tensor& t) { return float_dtype && t.is_floating_point() ? *float_dtype : t.scalar_type(); };
  const auto stored = [&](const torch::Tensor& t) { return t.detach().to(torch::kCPU, dtype_of(t)).contiguous(); };
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    fork_safe_point();
    if (!names.insert(name).second) throw Error("LEP_DUPLICATE_TENSOR", "tensor '" + name + "' given twice");
    const auto dtype = dtype_of(t);
    check_finite(path, name, stored(t));  // before the file exists: a non-finite model is never begun
    const uint64_t bytes = t.numel() * c10::elementSize(dtype);
    header[name] = {{"dtype", dtype_to_safetensors(dtype)}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // pad so the data section is 8-byte aligned, as the reference writer does
  AtomicFile out(path);
  uint64_t len = h.size();
  out.write(&len, 8);
  out.write(h.data(), h.size());
  for (const auto& [name, t] : tensors) {
    fork_safe_point();  // a GPU tensor's copy or a conversion runs between the writes
    const auto c = stored(t);
    // Only a file write here, no BLAS call (core/fork_gate.h).
    ForkSafeRegion writing;
    out.write(c.data_ptr(), c.numel() * c.element_size());
  }
  // The flush to disk and the rename: a large model's take minutes, most of it in commit's fsync.
  ForkSafeRegion committing;
  out.commit();
}

}  // namespace lep
