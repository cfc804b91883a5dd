// GGUF: the file format of llama.cpp / ggml (ggml docs/gguf.md, versions 2 and 3, little-endian).
// Layout:
//   "GGUF", u32 version, u64 tensor_count, u64 kv_count,
//   kv_count x { string key, u32 value_type, value },
//   tensor_count x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset },
//   padding to general.alignment (u32, default 32), then the data section; each tensor's offset
//   is relative to it and a multiple of the alignment.
// A string is u64 length + UTF-8 bytes (no terminator); an array value is u32 element type,
// u64 count, elements. ne[0] is the fastest-varying dimension: a PyTorch [out, in] weight has
// ne = [in, out].
//
// Reading maps the file; tensor data is read in place. Every structural problem is a one-line
// qs::Error naming the file, the key or tensor and what was expected: bad magic or version
// (v1, big-endian files), counts or strings running past the end, unknown value or ggml types,
// nested arrays, duplicate keys or tensor names, more than 4 dimensions, element counts that
// overflow, rows that are not whole blocks, offsets not aligned, out of range or overlapping.
// The writer streams: header, metadata and tensor infos first, then each tensor's bytes padded
// to the alignment (the layout ggml's gguf_write and gguf-py's GGUFWriter produce).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/mapped_file.h"
#include "formats/ggml_quants.h"

namespace qs {

enum class GgufType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};
std::string_view gguf_type_name(GgufType t);  // "u32", "f32", "str", "arr", ...

// One metadata value: a scalar, a string, or an array of scalars or strings.
class GgufValue {
 public:
  GgufValue() = default;
  static GgufValue u8(uint8_t v);
  static GgufValue i8(int8_t v);
  static GgufValue u16(uint16_t v);
  static GgufValue i16(int16_t v);
  static GgufValue u32(uint32_t v);
  static GgufValue i32(int32_t v);
  static GgufValue u64(uint64_t v);
  static GgufValue i64(int64_t v);
  static GgufValue f32(float v);
  static GgufValue f64(double v);
  static GgufValue boolean(bool v);
  static GgufValue string(std::string v);
  static GgufValue strings(std::vector<std::string> v);
  static GgufValue f32_array(std::span<const float> v);
  static GgufValue i32_array(std::span<const int32_t> v);
  // An array of `count` scalars of `element` type from little-endian bytes (count * size).
  static GgufValue scalar_array(GgufType element, std::vector<uint8_t> bytes, uint64_t count);

  GgufType type() const { return type_; }
  bool is_array() const { return type_ == GgufType::Array; }
  GgufType element_type() const { return element_; }  // arrays only
  uint64_t size() const { return count_; }             // array length (1 for a scalar)

  // Typed views; nullopt / nullptr when the value is of another kind.
  std::optional<int64_t> as_int() const;      // any integer scalar that fits int64
  std::optional<double> as_float() const;     // f32 / f64 scalars (and integers)
  std::optional<bool> as_bool() const;
  const std::string* as_string() const;
  const std::vector<std::string>* as_strings() const;  // array of strings
  std::optional<std::vector<int64_t>> as_ints() const;   // array of integers
  std::optional<std::vector<float>> as_floats() const;   // array of f32 (or f64, rounded)
  // "u32 4096", "str 'llama'", "arr[str] of 32000", for messages and `info`.
  std::string describe() const;

  // Serialized value (without the type tag) as the file stores it.
  void append_payload(std::string& out) const;

 private:
  GgufType type_ = GgufType::U8;
  GgufType element_ = GgufType::U8;
  uint64_t count_ = 1;
  std::vector<uint8_t> bytes_ = {0};   // scalars and scalar arrays, little-endian (a default value is u8 0)
  std::vector<std::string> strings_;   // string or string array
  friend struct GgufParser;
};

struct GgufKV {
  std::string key;
  GgufValue value;
};

struct GgufTensorInfo {
  std::string name;
  formats::GgmlType type = formats::GgmlType::F32;
  std::vector<int64_t> ne;  // ggml order: ne[0] varies fastest
  uint64_t offset = 0;      // from the start of the data section
  uint64_t nbytes = 0;
  const uint8_t* data = nullptr;  // into the mapped file (or the parsed buffer)

  int64_t numel() const;
  // [ne[n-1], ..., ne[0]]: the PyTorch / safetensors shape.
  std::vector<int64_t> torch_shape() const;
  std::string shape_str() const;  // the torch shape, "[4096, 11008]"
};

class GgufFile {
 public:
  std::string path;  // for messages
  uint32_t version = 3;
  uint64_t alignment = 32;
  uint64_t data_offset = 0;  // file offset of the data section
  std::vector<GgufKV> metadata;      // in file order
  std::vector<GgufTensorInfo> tensors;  // in file order
  std::shared_ptr<MappedFile> file;  // keeps tensor data alive (null when parsed from memory)

  const GgufValue* find(std::string_view key) const;
  const GgufTensorInfo* find_tensor(std::string_view name) const;

  // Typed access with one-line errors "PATH: metadata key 'K': ...".
  [[noreturn]] void bad_key(std::string_view key, const std::string& what) const;
  int64_t get_int(std::string_view key) const;  // missing -> error
  std::optional<int64_t> opt_int(std::string_view key) const;
  double get_float(std::string_view key) const;
  std::optional<double> opt_float(std::string_view key) const;
  std::string get_string(std::string_view key) const;
  std::optional<std::string> opt_string(std::string_view key) const;
  std::optional<bool> opt_bool(std::string_view key) const;
};

// Parses a GGUF image in memory; `name` stands for the file in messages, tensors point into
// `bytes`.
GgufFile parse_gguf(const uint8_t* bytes, size_t size, const std::string& name);
// Maps and parses a file.
GgufFile read_gguf(const std::string& path);

// Streams a GGUF file whose metadata and tensor list are known up front: the header is
// written by the constructor, then each tensor's bytes in the declared order. The file
// appears under `path` only when finish() succeeds (written to a temporary name, renamed).
class GgufWriter {
 public:
  struct Entry {
    std::string name;
    formats::GgmlType type;
    std::vector<int64_t> ne;  // ggml order
  };
  // `alignment` != 32 is recorded as general.alignment (u32), as ggml requires.
  GgufWriter(std::string path, std::vector<GgufKV> metadata, std::vector<Entry> tensors, uint32_t alignment = 32);
  ~GgufWriter();
  GgufWriter(const GgufWriter&) = delete;
  GgufWriter& operator=(const GgufWriter&) = delete;
  // The next tensor's bytes, exactly its size; may be given in several pieces (append).
  void write(const void* data, size_t nbytes);
  void finish();

 private:
  void flush_padding();
  std::string path_, tmp_;
  std::vector<Entry> entries_;
  std::vector<uint64_t> sizes_;
  uint64_t alignment_;
  size_t next_ = 0;          // tensor being written
  uint64_t written_ = 0;     // bytes of it written so far
  void* file_ = nullptr;     // FILE*
};

// Bytes of a tensor of ggml type `t` and shape `ne`; errors name `what` when the row is not a
// whole number of blocks.
uint64_t ggml_nbytes(formats::GgmlType t, std::span<const int64_t> ne, const std::string& what);

}  // namespace qs
