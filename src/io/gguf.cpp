#include "io/gguf.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <set>
#include <unordered_map>

#include "core/error.h"

namespace qs {

namespace {

using formats::GgmlType;

constexpr uint32_t kMaxDims = 4;       // GGML_MAX_DIMS
constexpr size_t kMaxNameBytes = 63;   // GGML_MAX_NAME is 64 with the terminator
constexpr uint64_t kDefaultAlignment = 32;

size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::U8: case GgufType::I8: case GgufType::Bool: return 1;
    case GgufType::U16: case GgufType::I16: return 2;
    case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
    case GgufType::U64: case GgufType::I64: case GgufType::F64: return 8;
    default: return 0;  // string, array
  }
}

bool valid_type_id(uint32_t id) { return id <= static_cast<uint32_t>(GgufType::F64); }

template <class T>
T load_le(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));  // the host is little-endian (x86-64, aarch64)
  return v;
}

template <class T>
void append_le(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(b, sizeof(T));
}

void append_string(std::string& out, std::string_view s) {
  append_le<uint64_t>(out, s.size());
  out.append(s);
}

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

std::string printable_magic(const uint8_t* p, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += (p[i] >= 0x20 && p[i] < 0x7f) ? static_cast<char>(p[i]) : '?';
  return s;
}

}  // namespace

std::string_view gguf_type_name(GgufType t) {
  static constexpr const char* kNames[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                           "bool", "str", "arr", "u64", "i64", "f64"};
  const auto i = static_cast<uint32_t>(t);
  return i < std::size(kNames) ? kNames[i] : "?";
}

// ---- GgufValue -----------------------------------------------------------------------------

namespace {
template <class T>
GgufValue make_scalar(GgufType t, T v) {
  std::vector<uint8_t> b(sizeof(T));
  std::memcpy(b.data(), &v, sizeof(T));
  return GgufValue::scalar_array(t, std::move(b), 1);
}
}  // namespace

GgufValue GgufValue::scalar_array(GgufType element, std::vector<uint8_t> bytes, uint64_t count) {
  GgufValue v;
  v.element_ = element;
  v.count_ = count;
  v.bytes_ = std::move(bytes);
  v.type_ = GgufType::Array;
  return v;
}

#define QS_GGUF_SCALAR(fn, T, tag)                 \
  GgufValue GgufValue::fn(T x) {                   \
    GgufValue v = make_scalar(GgufType::tag, x);   \
    v.type_ = GgufType::tag;                       \
    v.element_ = GgufType::tag;                    \
    return v;                                      \
  }
QS_GGUF_SCALAR(u8, uint8_t, U8)
QS_GGUF_SCALAR(i8, int8_t, I8)
QS_GGUF_SCALAR(u16, uint16_t, U16)
QS_GGUF_SCALAR(i16, int16_t, I16)
QS_GGUF_SCALAR(u32, uint32_t, U32)
QS_GGUF_SCALAR(i32, int32_t, I32)
QS_GGUF_SCALAR(u64, uint64_t, U64)
QS_GGUF_SCALAR(i64, int64_t, I64)
QS_GGUF_SCALAR(f32, float, F32)
QS_GGUF_SCALAR(f64, double, F64)
#undef QS_GGUF_SCALAR

GgufValue GgufValue::boolean(bool x) {
  GgufValue v = make_scalar<uint8_t>(GgufType::Bool, x ? 1 : 0);
  v.type_ = v.element_ = GgufType::Bool;
  return v;
}

GgufValue GgufValue::string(std::string s) {
  GgufValue v;
  v.type_ = v.element_ = GgufType::String;
  v.strings_.push_back(std::move(s));
  return v;
}

GgufValue GgufValue::strings(std::vector<std::string> list) {
  GgufValue v;
  v.type_ = GgufType::Array;
  v.element_ = GgufType::String;
  v.count_ = list.size();
  v.strings_ = std::move(list);
  return v;
}

GgufValue GgufValue::f32_array(std::span<const float> x) {
  std::vector<uint8_t> b(x.size_bytes());
  if (!x.empty()) std::memcpy(b.data(), x.data(), b.size());
  return scalar_array(GgufType::F32, std::move(b), x.size());
}

GgufValue GgufValue::i32_array(std::span<const int32_t> x) {
  std::vector<uint8_t> b(x.size_bytes());
  if (!x.empty()) std::memcpy(b.data(), x.data(), b.size());
  return scalar_array(GgufType::I32, std::move(b), x.size());
}

namespace {
// Element i of little-endian scalars of type t as int64 (nullopt: not an integer or too big).
std::optional<int64_t> int_at(GgufType t, const uint8_t* p) {
  switch (t) {
    case GgufType::U8: return load_le<uint8_t>(p);
    case GgufType::I8: return load_le<int8_t>(p);
    case GgufType::U16: return load_le<uint16_t>(p);
    case GgufType::I16: return load_le<int16_t>(p);
    case GgufType::U32: return load_le<uint32_t>(p);
    case GgufType::I32: return load_le<int32_t>(p);
    case GgufType::I64: return load_le<int64_t>(p);
    case GgufType::U64: {
      const auto v = load_le<uint64_t>(p);
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
      return static_cast<int64_t>(v);
    }
    default: return std::nullopt;
  }
}
}  // namespace

std::optional<int64_t> GgufValue::as_int() const {
  if (type_ == GgufType::Array || type_ == GgufType::String) return std::nullopt;
  return int_at(type_, bytes_.data());
}

std::optional<double> GgufValue::as_float() const {
  if (type_ == GgufType::F32) return load_le<float>(bytes_.data());
  if (type_ == GgufType::F64) return load_le<double>(bytes_.data());
  if (auto i = as_int()) return static_cast<double>(*i);
  return std::nullopt;
}

std::optional<bool> GgufValue::as_bool() const {
  if (type_ != GgufType::Bool) return std::nullopt;
  return bytes_[0] != 0;  // ggml reads any non-zero byte as true
}

const std::string* GgufValue::as_string() const {
  return type_ == GgufType::String ? &strings_[0] : nullptr;
}

const std::vector<std::string>* GgufValue::as_strings() const {
  return type_ == GgufType::Array && element_ == GgufType::String ? &strings_ : nullptr;
}

std::optional<std::vector<int64_t>> GgufValue::as_ints() const {
  if (type_ != GgufType::Array || element_ == GgufType::String) return std::nullopt;
  const size_t sz = scalar_size(element_);
  std::vector<int64_t> out(count_);
  for (uint64_t i = 0; i < count_; ++i) {
    auto v = int_at(element_, bytes_.data() + i * sz);
    if (!v) return std::nullopt;
    out[i] = *v;
  }
  return out;
}

std::optional<std::vector<float>> GgufValue::as_floats() const {
  if (type_ != GgufType::Array) return std::nullopt;
  std::vector<float> out(count_);
  if (element_ == GgufType::F32) {
    if (count_) std::memcpy(out.data(), bytes_.data(), count_ * 4);
  } else if (element_ == GgufType::F64) {
    for (uint64_t i = 0; i < count_; ++i) out[i] = static_cast<float>(load_le<double>(bytes_.data() + 8 * i));
  } else {
    return std::nullopt;
  }
  return out;
}

std::string GgufValue::describe() const {
  if (type_ == GgufType::Array) return cat("arr[", gguf_type_name(element_), "] of ", count_);
  if (type_ == GgufType::String) return cat("str ", quote(strings_[0]));
  if (type_ == GgufType::Bool) return cat("bool ", bytes_[0] ? "true" : "false");
  if (type_ == GgufType::F32 || type_ == GgufType::F64) return cat(gguf_type_name(type_), " ", *as_float());
  if (auto i = as_int()) return cat(gguf_type_name(type_), " ", *i);
  return cat(gguf_type_name(type_), " ", load_le<uint64_t>(bytes_.data()));
}

void GgufValue::append_payload(std::string& out) const {
  if (type_ == GgufType::String) {
    append_string(out, strings_[0]);
  } else if (type_ == GgufType::Array) {
    append_le<uint32_t>(out, static_cast<uint32_t>(element_));
    append_le<uint64_t>(out, count_);
    if (element_ == GgufType::String) {
      for (const auto& s : strings_) append_string(out, s);
    } else {
      out.append(reinterpret_cast<const char*>(bytes_.data()), bytes_.size());
    }
  } else {
    out.append(reinterpret_cast<const char*>(bytes_.data()), bytes_.size());
  }
}

// ---- Tensor infos --------------------------------------------------------------------------

int64_t GgufTensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

std::vector<int64_t> GgufTensorInfo::torch_shape() const { return {ne.rbegin(), ne.rend()}; }

std::string GgufTensorInfo::shape_str() const {
  std::string s = "[";
  const auto shape = torch_shape();
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

uint64_t ggml_nbytes(GgmlType t, std::span<const int64_t> ne_in, const std::string& what) {
  const std::vector<int64_t> ne = ne_in.empty() ? std::vector<int64_t>{1} : std::vector<int64_t>(ne_in.begin(), ne_in.end());
  const int64_t block = formats::ggml_block_size(t);
  if (ne[0] < 0) fail(what, ": negative dimension ", ne[0]);
  if (ne[0] % block != 0)
    fail(what, ": rows of ", ne[0], " values are not whole ", formats::ggml_type_name(t), " blocks of ", block);
  unsigned __int128 n = static_cast<uint64_t>(ne[0] / block) * formats::ggml_type_size(t);
  for (size_t i = 1; i < ne.size(); ++i) {
    if (ne[i] < 0) fail(what, ": negative dimension ", ne[i]);
    n *= static_cast<uint64_t>(ne[i]);
    if (n > std::numeric_limits<int64_t>::max()) fail(what, ": more than 2^63 bytes");
  }
  if (n > std::numeric_limits<int64_t>::max()) fail(what, ": more than 2^63 bytes");
  return static_cast<uint64_t>(n);
}

// ---- GgufFile ------------------------------------------------------------------------------

const GgufValue* GgufFile::find(std::string_view key) const {
  for (const auto& kv : metadata)
    if (kv.key == key) return &kv.value;
  return nullptr;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

void GgufFile::bad_key(std::string_view key, const std::string& what) const {
  fail(path, ": metadata key ", quote(key), ": ", what);
}

std::optional<int64_t> GgufFile::opt_int(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  auto i = v->as_int();
  if (!i) bad_key(key, cat("expected an integer, got ", v->describe()));
  return i;
}

int64_t GgufFile::get_int(std::string_view key) const {
  auto v = opt_int(key);
  if (!v) fail(path, ": missing metadata key ", quote(key), " (expected an integer)");
  return *v;
}

std::optional<double> GgufFile::opt_float(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  auto f = v->as_float();
  if (!f) bad_key(key, cat("expected a number, got ", v->describe()));
  return f;
}

double GgufFile::get_float(std::string_view key) const {
  auto v = opt_float(key);
  if (!v) fail(path, ": missing metadata key ", quote(key), " (expected a number)");
  return *v;
}

std::optional<std::string> GgufFile::opt_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  const std::string* s = v->as_string();
  if (!s) bad_key(key, cat("expected a string, got ", v->describe()));
  return *s;
}

std::string GgufFile::get_string(std::string_view key) const {
  auto v = opt_string(key);
  if (!v) fail(path, ": missing metadata key ", quote(key), " (expected a string)");
  return *v;
}

std::optional<bool> GgufFile::opt_bool(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  auto b = v->as_bool();
  if (!b) bad_key(key, cat("expected a bool, got ", v->describe()));
  return b;
}

// ---- Parsing -------------------------------------------------------------------------------

struct GgufParser {
  const uint8_t* base;
  size_t size;
  size_t pos = 0;
  const std::string& name;

  size_t left() const { return size - pos; }

  template <class T>
  T read(const char* what) {
    if (left() < sizeof(T))
      fail(name, ": truncated: ", what, " at byte ", pos, " needs ", sizeof(T), " bytes, only ", left(), " left");
    T v = load_le<T>(base + pos);
    pos += sizeof(T);
    return v;
  }

  std::string read_string(const std::string& what) {
    const uint64_t n = read<uint64_t>(what.c_str());
    if (n > left())
      fail(name, ": ", what, ": string length ", n, " runs past the end of the file (", left(), " bytes left)");
    std::string s(reinterpret_cast<const char*>(base + pos), static_cast<size_t>(n));
    pos += static_cast<size_t>(n);
    return s;
  }

  GgufValue read_value(GgufType type, const std::string& key) {
    const std::string where = cat("metadata key ", quote(key));
    if (type == GgufType::String) return GgufValue::string(read_string(where));
    if (type != GgufType::Array) {
      const size_t sz = scalar_size(type);
      if (left() < sz) fail(name, ": truncated: ", where, " needs ", sz, " bytes, only ", left(), " left");
      GgufValue v = GgufValue::scalar_array(type, std::vector<uint8_t>(base + pos, base + pos + sz), 1);
      v.type_ = v.element_ = type;
      pos += sz;
      return v;
    }
    const uint32_t elem_id = read<uint32_t>("array element type");
    if (!valid_type_id(elem_id))
      fail(name, ": ", where, ": unknown array element type ", elem_id, " (expected 0-12)");
    const auto elem = static_cast<GgufType>(elem_id);
    if (elem == GgufType::Array) fail(name, ": ", where, ": nested arrays are not supported");
    const uint64_t count = read<uint64_t>("array length");
    if (elem == GgufType::String) {
      // Each string needs at least its 8-byte length: refuse impossible counts before reserving.
      if (count > left() / 8)
        fail(name, ": ", where, ": array of ", count, " strings runs past the end of the file (", left(),
             " bytes left)");
      std::vector<std::string> list;
      list.reserve(static_cast<size_t>(count));
      for (uint64_t i = 0; i < count; ++i) list.push_back(read_string(cat(where, "[", i, "]")));
      return GgufValue::strings(std::move(list));
    }
    const size_t sz = scalar_size(elem);
    if (count > left() / sz)
      fail(name, ": ", where, ": array of ", count, " ", gguf_type_name(elem), " runs past the end of the file (",
           left(), " bytes left)");
    const size_t nbytes = static_cast<size_t>(count) * sz;
    GgufValue v = GgufValue::scalar_array(elem, std::vector<uint8_t>(base + pos, base + pos + nbytes), count);
    pos += nbytes;
    return v;
  }
};

GgufFile parse_gguf(const uint8_t* bytes, size_t size, const std::string& name) {
  GgufFile f;
  f.path = name;
  GgufParser p{bytes, size, 0, name};
  if (size < 4 || std::memcmp(bytes, "GGUF", 4) != 0)
    fail(name, ": not a GGUF file (starts with '", printable_magic(bytes, std::min<size_t>(size, 4)),
         "', expected 'GGUF')");
  p.pos = 4;
  f.version = p.read<uint32_t>("version");
  if ((f.version & 0xFFFF) == 0 && f.version != 0)
    fail(name, ": version field ", f.version, " looks byte-swapped: big-endian GGUF files are not supported");
  if (f.version < 2 || f.version > 3)
    fail(name, ": GGUF version ", f.version, " is not supported (expected 2 or 3)");
  const uint64_t n_tensors = p.read<uint64_t>("tensor count");
  const uint64_t n_kv = p.read<uint64_t>("metadata count");
  // Smallest possible entries: a key-value pair is 8 + 4 + 1 bytes, a tensor info 8 + 4 + 4 + 8.
  if (n_kv > p.left() / 13)
    fail(name, ": header says ", n_kv, " metadata entries, more than the ", p.left(), " bytes left can hold");
  if (n_tensors > p.left() / 24)
    fail(name, ": header says ", n_tensors, " tensors, more than the ", p.left(), " bytes left can hold");

  std::unordered_map<std::string, size_t> seen_keys;
  f.metadata.reserve(static_cast<size_t>(n_kv));
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = p.read_string(cat("metadata key #", i));
    if (key.empty()) fail(name, ": metadata key #", i, " is empty");
    if (!seen_keys.emplace(key, i).second) fail(name, ": metadata key ", quote(key), " appears twice");
    const uint32_t type_id = p.read<uint32_t>("value type");
    if (!valid_type_id(type_id))
      fail(name, ": metadata key ", quote(key), ": unknown value type ", type_id, " (expected 0-12)");
    GgufValue v = p.read_value(static_cast<GgufType>(type_id), key);
    f.metadata.push_back({std::move(key), std::move(v)});
  }
  if (const GgufValue* a = f.find("general.alignment")) {
    if (a->type() != GgufType::U32) f.bad_key("general.alignment", cat("expected u32, got ", a->describe()));
    const uint64_t al = static_cast<uint64_t>(*a->as_int());
    if (al == 0 || (al & (al - 1)) != 0) f.bad_key("general.alignment", cat(al, " is not a power of two"));
    f.alignment = al;
  }

  std::unordered_map<std::string, size_t> seen_tensors;
  f.tensors.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    t.name = p.read_string(cat("tensor name #", i));
    const std::string where = cat(name, ": tensor ", quote(t.name));
    if (t.name.size() > kMaxNameBytes)
      fail(where, ": name of ", t.name.size(), " bytes is longer than ggml's limit of ", kMaxNameBytes);
    if (!seen_tensors.emplace(t.name, i).second) fail(where, ": appears twice");
    const uint32_t n_dims = p.read<uint32_t>("tensor dimension count");
    if (n_dims > kMaxDims) fail(where, ": ", n_dims, " dimensions, ggml allows at most ", kMaxDims);
    bool zero = false;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne = p.read<uint64_t>("tensor dimension");
      if (ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail(where, ": dimension ", d, " = ", ne, " is negative as ggml's int64");
      t.ne.push_back(static_cast<int64_t>(ne));
      zero = zero || ne == 0;
    }
    if (!zero) {
      int64_t numel = 1;
      for (int64_t ne : t.ne) {
        if (numel > std::numeric_limits<int64_t>::max() / ne)
          fail(where, ": shape ", t.shape_str(), " has more elements than int64 can count");
        numel *= ne;
      }
    }
    const uint32_t type_id = p.read<uint32_t>("tensor type");
    auto type = formats::ggml_type_from_id(type_id);
    if (!type) fail(where, ": unknown ggml type ", type_id, " (retired, or newer than qstudy knows)");
    t.type = *type;
    t.nbytes = ggml_nbytes(t.type, t.ne, where);
    t.offset = p.read<uint64_t>("tensor offset");
    if (t.offset % f.alignment != 0)
      fail(where, ": data offset ", t.offset, " is not a multiple of the alignment ", f.alignment);
    f.tensors.push_back(std::move(t));
  }

  f.data_offset = align_up(p.pos, f.alignment);
  const uint64_t data_size = f.data_offset <= size ? size - f.data_offset : 0;
  if (!f.tensors.empty() && f.data_offset > size)
    fail(name, ": the data section would start at byte ", f.data_offset, ", past the end of the file (", size,
         " bytes)");
  std::vector<size_t> order(f.tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  for (auto& t : f.tensors) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      fail(name, ": tensor ", quote(t.name), ": data [", t.offset, ", ", t.offset + t.nbytes,
           ") runs past the end of the data section (", data_size, " bytes)");
    t.data = bytes + f.data_offset + t.offset;
  }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return f.tensors[a].offset < f.tensors[b].offset; });
  const GgufTensorInfo* reach = nullptr;  // the non-empty tensor reaching furthest so far
  for (size_t i : order) {
    const GgufTensorInfo& t = f.tensors[i];
    if (t.nbytes == 0) continue;
    if (reach && t.offset < reach->offset + reach->nbytes)
      fail(name, ": tensors ", quote(reach->name), " and ", quote(t.name), " overlap in the data section");
    if (!reach || t.offset + t.nbytes > reach->offset + reach->nbytes) reach = &t;
  }
  return f;
}

GgufFile read_gguf(const std::string& path) {
  auto file = MappedFile::open(path);
  GgufFile f = parse_gguf(file->data(), file->size(), path);
  f.file = std::move(file);
  return f;
}

// ---- Writing -------------------------------------------------------------------------------

GgufWriter::GgufWriter(std::string path, std::vector<GgufKV> metadata, std::vector<Entry> tensors, uint32_t alignment)
    : path_(std::move(path)), tmp_(path_ + ".tmp"), entries_(std::move(tensors)), alignment_(alignment) {
  require(alignment != 0 && (alignment & (alignment - 1)) == 0, path_, ": alignment ", alignment,
          " is not a power of two");
  std::set<std::string> keys;
  for (const auto& kv : metadata) {
    require(!kv.key.empty(), path_, ": empty metadata key");
    require(keys.insert(kv.key).second, path_, ": metadata key ", quote(kv.key), " given twice");
  }
  if (alignment != kDefaultAlignment && !keys.count("general.alignment"))
    metadata.push_back({"general.alignment", GgufValue::u32(alignment)});
  std::set<std::string> names;
  std::string header = "GGUF";
  append_le<uint32_t>(header, 3);
  append_le<uint64_t>(header, entries_.size());
  append_le<uint64_t>(header, metadata.size());
  for (const auto& kv : metadata) {
    append_string(header, kv.key);
    append_le<uint32_t>(header, static_cast<uint32_t>(kv.value.type()));
    kv.value.append_payload(header);
  }
  uint64_t offset = 0;
  for (const auto& e : entries_) {
    const std::string where = cat(path_, ": tensor ", quote(e.name));
    require(!e.name.empty() && e.name.size() <= kMaxNameBytes, where, ": names must have 1 to ", kMaxNameBytes,
            " bytes");
    require(names.insert(e.name).second, where, ": given twice");
    require(e.ne.size() <= kMaxDims, where, ": more than ", kMaxDims, " dimensions");
    const uint64_t n = ggml_nbytes(e.type, e.ne, where);
    append_string(header, e.name);
    append_le<uint32_t>(header, static_cast<uint32_t>(e.ne.size()));
    for (int64_t d : e.ne) append_le<uint64_t>(header, static_cast<uint64_t>(d));
    append_le<uint32_t>(header, static_cast<uint32_t>(e.type));
    append_le<uint64_t>(header, offset);
    sizes_.push_back(n);
    offset += align_up(n, alignment_);
  }
  header.resize(align_up(header.size(), alignment_), '\0');
  FILE* f = std::fopen(tmp_.c_str(), "wb");
  if (!f) fail(path_, ": cannot write: ", std::strerror(errno));
  file_ = f;
  if (std::fwrite(header.data(), 1, header.size(), f) != header.size()) fail(path_, ": write failed (disk full?)");
  flush_padding();  // tensors of zero bytes at the front
}

GgufWriter::~GgufWriter() {
  if (file_) {
    std::fclose(static_cast<FILE*>(file_));
    std::remove(tmp_.c_str());
  }
}

void GgufWriter::flush_padding() {
  // Completes the current tensor (padding its data to the alignment) and skips empty ones.
  static const char zeros[256] = {};
  while (next_ < entries_.size() && written_ == sizes_[next_]) {
    uint64_t pad = align_up(sizes_[next_], alignment_) - sizes_[next_];
    while (pad > 0) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(pad, sizeof(zeros)));
      if (std::fwrite(zeros, 1, n, static_cast<FILE*>(file_)) != n) fail(path_, ": write failed (disk full?)");
      pad -= n;
    }
    ++next_;
    written_ = 0;
  }
}

void GgufWriter::write(const void* data, size_t nbytes) {
  require(file_ != nullptr, path_, ": write after finish");
  require(next_ < entries_.size(), path_, ": more tensor data written than declared");
  const Entry& e = entries_[next_];
  require(written_ + nbytes <= sizes_[next_], path_, ": tensor ", quote(e.name), " takes ", sizes_[next_],
          " bytes, got ", written_ + nbytes);
  if (nbytes && std::fwrite(data, 1, nbytes, static_cast<FILE*>(file_)) != nbytes)
    fail(path_, ": write failed (disk full?)");
  written_ += nbytes;
  flush_padding();
}

void GgufWriter::finish() {
  require(file_ != nullptr, path_, ": finish called twice");
  if (next_ != entries_.size())
    fail(path_, ": tensor ", quote(entries_[next_].name), " was not written completely (", written_, " of ",
         sizes_[next_], " bytes)");
  FILE* f = static_cast<FILE*>(file_);
  file_ = nullptr;
  if (std::fclose(f) != 0) {
    std::remove(tmp_.c_str());
    fail(path_, ": write failed (disk full?)");
  }
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    std::remove(tmp_.c_str());
    fail(path_, ": cannot rename the temporary file: ", std::strerror(errno));
  }
}

}  // namespace qs
