#include "io/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace qs {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // the reference implementation's limit

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

int64_t checked_numel(const std::vector<int64_t>& shape, const std::string& where) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) fail(where, ": negative dimension in shape");
    if (d != 0 && n > (int64_t{1} << 50) / d) fail(where, ": shape has too many elements");
    n *= d;
  }
  return n;
}

}  // namespace

SafetensorsFile parse_safetensors(const uint8_t* bytes, size_t size, const std::string& name) {
  SafetensorsFile out;
  out.path = name;
  if (size < 8) fail(name, ": file is ", size, " bytes, too short for a safetensors header (expected at least 8)");
  const uint64_t header_len = read_u64_le(bytes);
  if (header_len > kMaxHeaderBytes) fail(name, ": header length ", header_len, " exceeds the 100 MiB limit");
  if (header_len > size - 8)
    fail(name, ": header length ", header_len, " runs past the end of the file (", size, " bytes)");
  const char* hdr = reinterpret_cast<const char*>(bytes + 8);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(hdr, hdr + header_len);
  } catch (const nlohmann::json::parse_error& e) {
    fail(name, ": header is not valid JSON (error at byte ", e.byte, ")");
  } catch (const nlohmann::json::out_of_range&) {  // a number beyond double/int64 range
    fail(name, ": invalid JSON: a number is out of range");
  }
  if (!header.is_object()) fail(name, ": header must be a JSON object");

  const uint8_t* data = bytes + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;
  struct Span {
    uint64_t begin, end;
    size_t index;
  };
  std::vector<Span> spans;

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& key = it.key();
    if (key == "__metadata__") {
      if (!it->is_object()) fail(name, ": __metadata__ must be an object of strings");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) fail(name, ": __metadata__ value ", quote(m.key()), " must be a string");
        out.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    const std::string where = cat(name, ": tensor ", quote(key));
    const auto& info = *it;
    if (!info.is_object()) fail(where, ": entry must be an object with dtype, shape, data_offsets");
    auto dt = info.find("dtype");
    auto sh = info.find("shape");
    auto off = info.find("data_offsets");
    if (dt == info.end() || !dt->is_string()) fail(where, ": missing or non-string 'dtype'");
    if (sh == info.end() || !sh->is_array()) fail(where, ": missing or non-array 'shape'");
    if (off == info.end() || !off->is_array() || off->size() != 2) fail(where, ": 'data_offsets' must be [begin, end]");
    auto dtype = parse_dtype(dt->get<std::string>());
    if (!dtype) fail(where, ": unknown dtype ", quote(dt->get<std::string>()));
    Tensor t;
    t.name = key;
    t.dtype = *dtype;
    for (const auto& d : *sh) {
      if (!d.is_number_integer()) fail(where, ": shape entries must be integers");
      t.shape.push_back(d.get<int64_t>());
    }
    const int64_t numel = checked_numel(t.shape, where);
    for (const auto& o : *off)
      if (!o.is_number_unsigned()) fail(where, ": data_offsets must be non-negative integers");
    const uint64_t begin = (*off)[0].get<uint64_t>(), end = (*off)[1].get<uint64_t>();
    if (begin > end) fail(where, ": data_offsets [", begin, ", ", end, "] are reversed");
    if (end > data_size)
      fail(where, ": data_offsets [", begin, ", ", end, "] run past the end of the data (", data_size, " bytes)");
    const uint64_t expected = static_cast<uint64_t>(numel) * dtype_size(t.dtype);
    if (end - begin != expected)
      fail(where, ": holds ", end - begin, " bytes but shape ", t.shape_str(), " of ", dtype_name(t.dtype), " needs ",
           expected);
    t.data = data + begin;
    t.nbytes = end - begin;
    spans.push_back({begin, end, out.tensors.size()});
    out.tensors.push_back(std::move(t));
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  const Span* widest = nullptr;  // the non-empty span reaching furthest so far
  for (const auto& s : spans) {
    if (s.begin == s.end) continue;  // empty tensors occupy no bytes
    if (widest && s.begin < widest->end)
      fail(name, ": tensors ", quote(out.tensors[widest->index].name), " and ", quote(out.tensors[s.index].name),
           " overlap in the data buffer");
    if (!widest || s.end > widest->end) widest = &s;
  }
  // Keep file order of data: readers stream better.
  std::vector<Tensor> ordered;
  ordered.reserve(spans.size());
  for (const auto& s : spans) ordered.push_back(std::move(out.tensors[s.index]));
  out.tensors = std::move(ordered);
  return out;
}

SafetensorsFile read_safetensors(const std::string& path) {
  auto file = MappedFile::open(path);
  SafetensorsFile st = parse_safetensors(file->data(), file->size(), path);
  st.file = file;
  std::shared_ptr<const void> owner(file, file->data());
  for (auto& t : st.tensors) t.owner = owner;
  return st;
}

SafetensorsWriter::SafetensorsWriter(std::string path, std::vector<Entry> entries,
                                     const std::map<std::string, std::string>& metadata)
    : path_(std::move(path)), tmp_(path_ + ".tmp"), entries_(std::move(entries)) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& e : entries_) {
    uint64_t n = dtype_size(e.dtype);
    for (int64_t d : e.shape) n *= static_cast<uint64_t>(d);
    header[e.name] = {{"dtype", dtype_name(e.dtype)}, {"shape", e.shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string h = header.dump();
  while ((8 + h.size()) % 8) h.push_back(' ');
  FILE* f = std::fopen(tmp_.c_str(), "wb");
  if (!f) fail(path_, ": cannot write: ", std::strerror(errno));
  file_ = f;
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(h.size()) >> (8 * i));
  if (std::fwrite(len, 1, 8, f) != 8 || std::fwrite(h.data(), 1, h.size(), f) != h.size())
    fail(path_, ": write failed (disk full?)");
}

SafetensorsWriter::~SafetensorsWriter() {
  if (file_) {
    std::fclose(static_cast<FILE*>(file_));
    std::remove(tmp_.c_str());
  }
}

void SafetensorsWriter::write_next(const void* data, size_t nbytes) {
  if (next_ >= entries_.size()) fail(path_, ": more tensors written than declared");
  const Entry& e = entries_[next_];
  size_t expected = dtype_size(e.dtype);
  for (int64_t d : e.shape) expected *= static_cast<size_t>(d);
  if (nbytes != expected)
    fail(path_, ": tensor ", quote(e.name), " has ", nbytes, " bytes, its shape and dtype need ", expected);
  if (std::fwrite(data, 1, nbytes, static_cast<FILE*>(file_)) != nbytes) fail(path_, ": write failed (disk full?)");
  ++next_;
}

void SafetensorsWriter::finish() {
  if (next_ != entries_.size())
    fail(path_, ": only ", next_, " of ", entries_.size(), " tensors were written");
  FILE* f = static_cast<FILE*>(file_);
  file_ = nullptr;
  if (std::fclose(f) != 0) {
    std::remove(tmp_.c_str());
    fail(path_, ": write failed (disk full?)");
  }
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) fail(path_, ": cannot rename temporary file");
}

void write_safetensors(const std::string& path, const std::vector<Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<SafetensorsWriter::Entry> entries;
  for (const auto& t : tensors) {
    if (t.nbytes != static_cast<size_t>(t.numel()) * dtype_size(t.dtype))
      fail(path, ": tensor ", quote(t.name), " has ", t.nbytes, " bytes, shape ", t.shape_str(), " needs ",
           t.numel() * dtype_size(t.dtype));
    entries.push_back({t.name, t.dtype, t.shape});
  }
  SafetensorsWriter w(path, std::move(entries), metadata);
  for (const auto& t : tensors) w.write_next(t.data, t.nbytes);
  w.finish();
}

}  // namespace qs
