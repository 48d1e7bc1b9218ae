#include "core/safetensors_header.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "core/error.h"

namespace lep {

namespace {

Error bad(const std::string& path, const std::string& what) {
  return Error("LEP_BAD_SAFETENSORS", path + ": not a valid safetensors file: " + what +
                                          "\nHINT: the file is damaged or not safetensors; re-download or re-export it.");
}

std::string shape_text(const std::vector<uint64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

// SAX handler: the keys of the outermost object, and the first one seen twice.
struct TopLevelKeys : nlohmann::json_sax<nlohmann::json> {
  std::unordered_set<std::string> seen;
  std::string duplicate, error;
  int depth = 0;
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return ++depth, true; }
  bool end_object() override { return --depth, true; }
  bool start_array(std::size_t) override { return ++depth, true; }
  bool end_array() override { return --depth, true; }
  bool key(string_t& k) override {
    if (depth == 1 && !seen.insert(k).second && duplicate.empty()) duplicate = k;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    error = e.what();
    return false;
  }
};

}  // namespace

int64_t safetensors_dtype_size(const std::string& dtype) {
  static const std::map<std::string, int64_t> sizes = {{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
                                                       {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U8", 1},   {"BOOL", 1}};
  auto it = sizes.find(dtype);
  return it == sizes.end() ? 0 : it->second;
}

std::string exact_product(const std::vector<uint64_t>& factors) {
  std::vector<uint32_t> limbs{1};  // base 1e9, least significant first
  for (uint64_t f : factors) {
    unsigned __int128 carry = 0;
    for (auto& l : limbs) {
      const unsigned __int128 v = static_cast<unsigned __int128>(l) * f + carry;
      l = static_cast<uint32_t>(v % 1000000000u);
      carry = v / 1000000000u;
    }
    while (carry) {
      limbs.push_back(static_cast<uint32_t>(carry % 1000000000u));
      carry /= 1000000000u;
    }
    while (limbs.size() > 1 && limbs.back() == 0) limbs.pop_back();
  }
  std::string s = std::to_string(limbs.back());
  for (size_t i = limbs.size() - 1; i-- > 0;) {
    const std::string part = std::to_string(limbs[i]);
    s += std::string(9 - part.size(), '0') + part;
  }
  return s;
}

SafetensorsHeader parse_safetensors_header(const uint8_t* data, uint64_t size, const std::string& path) {
  if (size < 8) throw bad(path, "file is " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
  uint64_t header_len = 0;
  std::memcpy(&header_len, data, 8);  // little-endian on every platform we build for
  if (header_len > size - 8)
    throw bad(path, "header length " + std::to_string(header_len) + " runs past the end of the file (" +
                        std::to_string(size) + " bytes); the file is truncated");
  if (header_len > kMaxSafetensorsHeader)
    throw bad(path, "header length " + std::to_string(header_len) + " exceeds the 100 MB the safetensors library allows");
  SafetensorsHeader out;
  out.data_start = 8 + header_len;
  const char* text = reinterpret_cast<const char*>(data + 8);
  // Duplicate names: nlohmann keeps only the last of duplicate keys, so a first SAX pass collects the
  // top-level keys in a hash set. (nlohmann's callback parser would do it in one pass but rescans the
  // parent object after every child object: quadratic, 37 s for 40,000 tensors.)
  TopLevelKeys keys;
  nlohmann::json header;
  try {
    nlohmann::json::sax_parse(text, text + header_len, &keys);
    header = nlohmann::json::parse(text, text + header_len);
  } catch (const nlohmann::json::exception& e) {
    throw bad(path, std::string("header is not JSON (") + e.what() + ")");
  }
  if (!keys.error.empty()) throw bad(path, "header is not JSON (" + keys.error + ")");
  if (!header.is_object()) throw bad(path, "header is JSON but not an object");
  if (!keys.duplicate.empty()) throw bad(path, "header names the same tensor more than once ('" + keys.duplicate + "')");
  const uint64_t data_size = size - out.data_start;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) throw bad(path, "__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) throw bad(path, "__metadata__ value for '" + m.key() + "' is not a string");
        out.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
      throw bad(path, "tensor '" + name + "' lacks dtype, shape or data_offsets");
    if (!v["dtype"].is_string() || !v["shape"].is_array() || !v["data_offsets"].is_array() ||
        v["data_offsets"].size() != 2)
      throw bad(path, "tensor '" + name + "' has a malformed dtype, shape or data_offsets");
    TensorInfo info;
    info.name = name;
    info.dtype = v["dtype"].get<std::string>();
    const int64_t elem_size = safetensors_dtype_size(info.dtype);
    if (elem_size == 0) throw bad(path, "tensor '" + name + "' has unknown dtype '" + info.dtype + "'");
    std::vector<uint64_t> dims;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned()) throw bad(path, "tensor '" + name + "' has a negative or non-integer dimension");
      dims.push_back(d.get<uint64_t>());
      if (dims.back() > static_cast<uint64_t>(INT64_MAX))
        throw bad(path, "tensor '" + name + "' has dimension " + std::to_string(dims.back()) +
                            ", beyond the largest a tensor can have (2^63 - 1)");
    }
    // Element count and byte count with overflow checks (the library's ValidationOverflow): a product
    // that wraps modulo 2^64 could otherwise equal the real byte count.
    uint64_t numel = 1, nbytes = 0;
    bool overflow = false;
    for (uint64_t d : dims) overflow |= __builtin_mul_overflow(numel, d, &numel);
    overflow |= __builtin_mul_overflow(numel, static_cast<uint64_t>(elem_size), &nbytes) || nbytes > static_cast<uint64_t>(INT64_MAX);
    if (overflow) {
      std::vector<uint64_t> factors = dims;
      factors.push_back(static_cast<uint64_t>(elem_size));
      throw bad(path, "tensor '" + name + "' of shape " + shape_text(dims) + " and dtype " + info.dtype + " needs " +
                          exact_product(factors) + " bytes, which overflows a 64-bit size");
    }
    for (uint64_t d : dims) info.shape.push_back(static_cast<int64_t>(d));
    for (const auto& o : v["data_offsets"])
      if (!o.is_number_unsigned()) throw bad(path, "tensor '" + name + "' has a non-integer data offset");
    info.begin = v["data_offsets"][0].get<uint64_t>();
    info.end = v["data_offsets"][1].get<uint64_t>();
    if (info.end < info.begin) throw bad(path, "tensor '" + name + "' ends before it begins");
    if (info.end > data_size)
      throw bad(path, "tensor '" + name + "' data [" + std::to_string(info.begin) + ", " + std::to_string(info.end) +
                          ") lies outside the data section (" + std::to_string(data_size) + " bytes); the file is truncated");
    if (info.end - info.begin != nbytes)
      throw bad(path, "tensor '" + name + "' has " + std::to_string(info.end - info.begin) + " bytes but dtype " +
                          info.dtype + " x shape " + shape_text(dims) + " needs " + std::to_string(nbytes));
    out.tensors.push_back(std::move(info));
  }
  // File order (the JSON object's key order is lost by the parser); then, as the library requires, the
  // tensors must tile the data section exactly: each begins where the previous one ended.
  std::stable_sort(out.tensors.begin(), out.tensors.end(),
                   [](const TensorInfo& a, const TensorInfo& b) { return a.begin < b.begin || (a.begin == b.begin && a.end < b.end); });
  uint64_t at = 0;
  const TensorInfo* prev = nullptr;
  for (const auto& t : out.tensors) {
    if (t.begin < at)
      throw bad(path, "tensors '" + (prev ? prev->name : std::string()) + "' and '" + t.name + "' overlap");
    if (t.begin > at)
      throw bad(path, "gap in the data section: bytes [" + std::to_string(at) + ", " + std::to_string(t.begin) +
                          ") before tensor '" + t.name + "' belong to no tensor");
    at = t.end;
    prev = &t;
  }
  if (at != data_size)
    throw bad(path, "the tensors cover " + std::to_string(at) + " bytes of the " + std::to_string(data_size) +
                        "-byte data section; the rest belongs to no tensor");
  return out;
}

}  // namespace lep
