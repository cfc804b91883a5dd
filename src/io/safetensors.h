// safetensors: the Hugging Face tensor file (https://huggingface.co/docs/safetensors).
// Layout: u64 little-endian header length N, N bytes of JSON header
//   {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {..}},
// then the data buffer; offsets are relative to its start. Reading maps the file and returns
// Tensors pointing into the map (no copy). Every structural problem is a one-line qs::Error naming
// the file and the tensor: header past the end, bad JSON, unknown dtype, offsets out of range or
// overlapping, byte count that disagrees with shape x dtype.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "core/tensor.h"

namespace qs {

struct SafetensorsFile {
  std::string path;
  std::shared_ptr<MappedFile> file;
  std::vector<Tensor> tensors;  // in file order of their data
  std::map<std::string, std::string> metadata;
};

// Parses an in-memory safetensors image (the fuzz target and read_safetensors share this).
// `name` is used in error messages; tensors point into `bytes`.
SafetensorsFile parse_safetensors(const uint8_t* bytes, size_t size, const std::string& name);
SafetensorsFile read_safetensors(const std::string& path);

// Writes tensors (any dtype, data from anywhere) with optional string metadata. Tensors are
// written in the order given; the header is padded to 8 bytes so data stays aligned.
void write_safetensors(const std::string& path, const std::vector<Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Streams a safetensors file whose tensor list is known up front: the header is written first,
// then each tensor's bytes in order, so a file larger than memory can be produced. The file
// appears under `path` only when finish() succeeds.
class SafetensorsWriter {
 public:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
  };
  SafetensorsWriter(std::string path, std::vector<Entry> entries, const std::map<std::string, std::string>& metadata = {});
  ~SafetensorsWriter();
  // Appends the next tensor's bytes (exactly its size).
  void write_next(const void* data, size_t nbytes);
  void finish();

 private:
  std::string path_, tmp_;
  std::vector<Entry> entries_;
  size_t next_ = 0;
  void* file_ = nullptr;  // FILE*
};

}  // namespace qs
