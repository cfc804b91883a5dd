#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/tensor_store.h"
#include "testing/testing.h"

namespace qs {
namespace {

// A safetensors image from a header JSON string and a data buffer.
std::string image(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(n >> (8 * i));
  return out + header + data;
}

std::string parse_error(const std::string& bytes) {
  try {
    parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "x.safetensors");
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << "multi-line error: " << m;
    EXPECT_EQ(m.rfind("x.safetensors: ", 0), 0u) << "error does not name the file: " << m;
    return m;
  }
  ADD_FAILURE() << "no error";
  return "";
}

const std::string kData(24, 'a');  // room for 6 floats

TEST(Safetensors, ParsesValidHeader) {
  auto img = image(R"({"__metadata__":{"format":"pt"},"b":{"dtype":"BF16","shape":[2,2],"data_offsets":[16,24]},)"
                   R"("a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
                   kData);
  auto f = parse_safetensors(reinterpret_cast<const uint8_t*>(img.data()), img.size(), "x");
  ASSERT_EQ(f.tensors.size(), 2u);
  EXPECT_EQ(f.tensors[0].name, "a");  // data order
  EXPECT_EQ(f.tensors[1].dtype, DType::BF16);
  EXPECT_EQ(f.tensors[1].shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(f.metadata.at("format"), "pt");
}

TEST(Safetensors, MalformedInputsAreOneLineErrors) {
  struct Case {
    std::string bytes, expect;
  };
  const std::vector<Case> cases = {
      {"abc", "too short"},
      {std::string("\xff\xff\x00\x00\x00\x00\x00\x00", 8) + "{}", "runs past the end"},
      {std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8), "exceeds the 100 MiB limit"},
      {image("{\"a\": ", kData), "not valid JSON"},
      {image("[1,2]", kData), "must be a JSON object"},
      {image(R"({"a":{"dtype":"F32","shape":[4]}})", kData), "'data_offsets' must be [begin, end]"},
      {image(R"({"a":{"dtype":"Q4_K","shape":[4],"data_offsets":[0,16]}})", kData), "unknown dtype 'Q4_K'"},
      {image(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,400]}})", kData), "run past the end of the data"},
      {image(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[16,0]}})", kData), "reversed"},
      {image(R"({"a":{"dtype":"F32","shape":[5],"data_offsets":[0,16]}})", kData), "needs 20"},
      {image(R"({"a":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})", kData), "negative dimension"},
      {image(R"({"a":{"dtype":"F32","shape":["4"],"data_offsets":[0,16]}})", kData), "shape entries must be integers"},
      {image(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[-1,15]}})", kData), "non-negative integers"},
      {image(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", kData),
       "overlap"},
      {image(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})", kData),
       "overlap"},
      {image(R"({"__metadata__":{"k":1}})", kData), "must be a string"},
      {image(R"({"a":[1]})", kData), "entry must be an object"},
      {image(R"({"a":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,16]}})", kData), "too many elements"},
  };
  for (const auto& c : cases) {
    std::string m = parse_error(c.bytes);
    EXPECT_NE(m.find(c.expect), std::string::npos) << "expected '" << c.expect << "' in: " << m;
  }
}

TEST(Safetensors, WriteReadRoundTrip) {
  const std::string dir = testing::make_temp_dir("st");
  std::vector<float> a = {1, 2, 3, 4, 5, 6};
  std::vector<uint16_t> b = {0x3f80, 0x4000, 0xbf80};
  std::vector<int8_t> c = {-1, 2, -3};
  Tensor ta{"layer.a", DType::F32, {2, 3}, a.data(), 24, nullptr};
  Tensor tb{"b", DType::BF16, {3}, b.data(), 6, nullptr};
  Tensor tc{"c", DType::I8, {3, 1}, c.data(), 3, nullptr};
  write_safetensors(dir + "/m.safetensors", {ta, tb, tc}, {{"format", "pt"}});
  auto f = read_safetensors(dir + "/m.safetensors");
  ASSERT_EQ(f.tensors.size(), 3u);
  for (const auto* want : {&ta, &tb, &tc}) {
    auto it = std::find_if(f.tensors.begin(), f.tensors.end(), [&](const Tensor& t) { return t.name == want->name; });
    ASSERT_NE(it, f.tensors.end());
    EXPECT_EQ(it->dtype, want->dtype);
    EXPECT_EQ(it->shape, want->shape);
    ASSERT_EQ(it->nbytes, want->nbytes);
    EXPECT_EQ(std::memcmp(it->data, want->data, want->nbytes), 0);
  }
  EXPECT_EQ(f.metadata.at("format"), "pt");
  // Header is padded so data starts 8-byte aligned.
  EXPECT_EQ((reinterpret_cast<const uint8_t*>(f.tensors[0].data) - f.file->data()) % 8, 0);
}

TEST(Safetensors, ShardedDirectoryAndItsErrors) {
  const std::string dir = testing::make_temp_dir("shards");
  std::vector<float> a = {1, 2}, b = {3};
  write_safetensors(dir + "/model-00001-of-00002.safetensors", {{"a", DType::F32, {2}, a.data(), 8, nullptr}});
  write_safetensors(dir + "/model-00002-of-00002.safetensors", {{"b", DType::F32, {1}, b.data(), 4, nullptr}});
  auto write_index = [&](nlohmann::json map) {
    std::ofstream(dir + "/model.safetensors.index.json") << nlohmann::json{{"metadata", {}}, {"weight_map", map}}.dump();
  };
  write_index({{"a", "model-00001-of-00002.safetensors"}, {"b", "model-00002-of-00002.safetensors"}});
  auto store = load_safetensors_dir(dir);
  EXPECT_EQ(store.size(), 2u);
  EXPECT_EQ(store.get("b").as<float>()[0], 3.0f);
  try {
    store.get("c");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing tensor 'c'"), std::string::npos);
  }
  write_index({{"a", "model-00002-of-00002.safetensors"}, {"b", "model-00002-of-00002.safetensors"}});
  EXPECT_THROW(load_safetensors_dir(dir), Error);  // a is not in that shard
  write_index({{"a", "model-00003-of-00002.safetensors"}});
  EXPECT_THROW(load_safetensors_dir(dir), Error);  // shard missing
  write_index({{"a", "../escape.safetensors"}});
  EXPECT_THROW(load_safetensors_dir(dir), Error);
  std::ofstream(dir + "/model.safetensors.index.json") << "{\"weight_map\": 5}";
  EXPECT_THROW(load_safetensors_dir(dir), Error);
  EXPECT_THROW(load_safetensors_dir(testing::make_temp_dir("empty")), Error);
}

TEST(Safetensors, TruncatedFileOnDisk) {
  const std::string dir = testing::make_temp_dir("trunc");
  std::vector<float> a(100, 1.0f);
  write_safetensors(dir + "/m.safetensors", {{"a", DType::F32, {100}, a.data(), 400, nullptr}});
  std::string bytes = testing::run_command("cat " + dir + "/m.safetensors").out;
  std::ofstream(dir + "/t.safetensors", std::ios::binary) << bytes.substr(0, bytes.size() - 10);
  try {
    read_safetensors(dir + "/t.safetensors");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("t.safetensors: tensor 'a'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace qs
