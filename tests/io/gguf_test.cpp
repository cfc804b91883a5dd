// The GGUF container: round trips through the writer and reader, agreement with an independent
// Python reader/writer (tests/io/ref/gguf_ref.py) in both directions, and one test per kind of
// malformed file, each a one-line qs::Error naming the file and the key or tensor.
#include "io/gguf.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "testing/testing.h"

namespace qs {
namespace {

using formats::GgmlType;

// ---- A byte-level builder for hand-made (and broken) files --------------------------------

struct Bytes {
  std::string s;
  Bytes& u32(uint32_t v) { return raw(&v, 4); }
  Bytes& u64(uint64_t v) { return raw(&v, 8); }
  Bytes& f32(float v) { return raw(&v, 4); }
  Bytes& str(std::string_view v) {
    u64(v.size());
    s.append(v);
    return *this;
  }
  Bytes& raw(const void* p, size_t n) {
    s.append(static_cast<const char*>(p), n);
    return *this;
  }
  Bytes& add(const Bytes& b) {
    s += b.s;
    return *this;
  }
};

Bytes kv_string(std::string_view key, std::string_view value) { return Bytes().str(key).u32(8).str(value); }
Bytes kv_u32(std::string_view key, uint32_t v) { return Bytes().str(key).u32(4).u32(v); }
Bytes tensor_info(std::string_view name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
  Bytes b;
  b.str(name).u32(static_cast<uint32_t>(ne.size()));
  for (uint64_t d : ne) b.u64(d);
  return b.u32(type).u64(offset);
}

// magic, version, counts, kvs, infos, padding to 32, data.
std::string assemble(const std::vector<Bytes>& kvs, const std::vector<Bytes>& infos, const std::string& data,
                     uint32_t version = 3, int64_t n_tensors = -1, int64_t n_kv = -1) {
  Bytes b;
  b.raw("GGUF", 4).u32(version);
  b.u64(n_tensors >= 0 ? static_cast<uint64_t>(n_tensors) : infos.size());
  b.u64(n_kv >= 0 ? static_cast<uint64_t>(n_kv) : kvs.size());
  for (const auto& k : kvs) b.add(k);
  for (const auto& t : infos) b.add(t);
  while (b.s.size() % 32) b.s.push_back('\0');
  b.s += data;
  return b.s;
}

std::string valid_file() {
  return assemble({kv_string("general.architecture", "llama")}, {tensor_info("a", {4}, 0, 0)}, std::string(16, '\1'));
}

GgufFile parse(const std::string& bytes) {
  return parse_gguf(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "m.gguf");
}

// Expects a one-line qs::Error mentioning the file and every one of `needles`.
void expect_error(const std::string& bytes, std::vector<std::string> needles) {
  try {
    parse(bytes);
    ADD_FAILURE() << "no error; expected one mentioning " << needles[0];
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_EQ(msg.rfind("m.gguf: ", 0), 0u) << msg;
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
  }
}

TEST(GgufRead, HandMadeFile) {
  GgufFile f = parse(valid_file());
  EXPECT_EQ(f.version, 3u);
  EXPECT_EQ(f.alignment, 32u);
  ASSERT_EQ(f.tensors.size(), 1u);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.tensors[0].nbytes, 16u);
  EXPECT_EQ(f.data_offset % 32, 0u);
  EXPECT_EQ(f.tensors[0].data[0], 1);
  // Version 2 files have the same layout.
  EXPECT_NO_THROW(parse(assemble({}, {}, "", 2)));
  // A file with no tensors needs no data section.
  EXPECT_TRUE(parse(assemble({kv_u32("x", 1)}, {}, "")).tensors.empty());
}

TEST(GgufRead, RefusesBadHeaders) {
  std::string bad = valid_file();
  bad[0] = 'X';
  expect_error(bad, {"not a GGUF file", "XGUF"});
  expect_error("GGU", {"not a GGUF file"});
  expect_error(std::string("GGUF\3\0", 6), {"truncated", "version"});
  expect_error(assemble({}, {}, "", 1), {"version 1", "expected 2 or 3"});
  expect_error(assemble({}, {}, "", 4), {"version 4"});
  expect_error(assemble({}, {}, "", 0x03000000), {"byte-swapped", "big-endian"});
  expect_error(assemble({kv_u32("x", 1)}, {}, "", 3, -1, 1000000), {"1000000 metadata entries"});
  expect_error(assemble({}, {}, "", 3, 1ll << 40, -1), {"tensors, more than"});
}

TEST(GgufRead, RefusesBadMetadata) {
  // A string whose length runs past the end.
  expect_error(assemble({Bytes().str("general.name").u32(8).u64(1000)}, {}, ""), {"general.name", "past the end"});
  // A key whose own length runs past the end.
  expect_error(assemble({Bytes().u64(1ull << 40)}, {}, std::string(64, '\0')), {"key #0", "past the end"});
  expect_error(assemble({Bytes().str("k").u32(13).u32(0)}, {}, ""), {"'k'", "unknown value type 13"});
  expect_error(assemble({Bytes().str("k").u32(9).u32(9).u64(1)}, {}, ""), {"'k'", "nested arrays"});
  expect_error(assemble({Bytes().str("k").u32(9).u32(20).u64(1)}, {}, ""), {"'k'", "unknown array element type 20"});
  expect_error(assemble({Bytes().str("scores").u32(9).u32(6).u64(1ull << 60)}, {}, ""), {"scores", "past the end"});
  expect_error(assemble({Bytes().str("tokens").u32(9).u32(8).u64(1ull << 62)}, {}, ""), {"tokens", "strings runs past"});
  expect_error(assemble({Bytes().str("tokens").u32(9).u32(8).u64(2).str("a").u64(99)}, {}, ""),
               {"tokens", "[1]", "past the end"});
  expect_error(assemble({Bytes().str("").u32(4).u32(1)}, {}, ""), {"key #0 is empty"});
  expect_error(assemble({kv_u32("a.b", 1), kv_u32("a.b", 2)}, {}, ""), {"'a.b'", "twice"});
  expect_error(assemble({Bytes().str("general.alignment").u32(5).u32(64)}, {}, ""),
               {"general.alignment", "expected u32"});
  expect_error(assemble({kv_u32("general.alignment", 48)}, {}, ""), {"general.alignment", "power of two"});
  expect_error(assemble({Bytes().str("k").u32(4).u32(7)}, {}, "").substr(0, 40), {"truncated"});
}

TEST(GgufRead, RefusesBadTensorInfos) {
  const std::string data(4096, '\0');
  expect_error(assemble({}, {tensor_info("w", {2, 2, 2, 2, 2}, 0, 0)}, data), {"'w'", "5 dimensions"});
  expect_error(assemble({}, {tensor_info("w", {32}, 31, 0)}, data), {"'w'", "unknown ggml type 31"});
  expect_error(assemble({}, {tensor_info("w", {40, 2}, 8, 0)}, data), {"'w'", "40 values", "Q8_0 blocks of 32"});
  expect_error(assemble({}, {tensor_info("w", {4}, 0, 8)}, data), {"'w'", "offset 8", "alignment 32"});
  expect_error(assemble({}, {tensor_info("w", {4}, 0, 8192)}, data), {"'w'", "past the end of the data"});
  expect_error(assemble({}, {tensor_info("w", {2048}, 0, 0)}, data), {"'w'", "past the end of the data"});
  expect_error(assemble({}, {tensor_info("a", {16}, 0, 0), tensor_info("b", {4}, 0, 32)}, data),
               {"'a'", "'b'", "overlap"});
  expect_error(assemble({}, {tensor_info("a", {4}, 0, 0), tensor_info("a", {4}, 0, 32)}, data), {"'a'", "twice"});
  expect_error(assemble({}, {tensor_info(std::string(64, 'n'), {4}, 0, 0)}, data), {"longer than ggml's limit"});
  expect_error(assemble({}, {tensor_info("big", {1ull << 32, 1ull << 32}, 0, 0)}, data), {"'big'", "int64"});
  expect_error(assemble({}, {tensor_info("neg", {1ull << 63}, 0, 0)}, data), {"'neg'", "negative"});
  expect_error(assemble({}, {tensor_info("t", {4}, 0, 0)}, "", 3, 2, -1), {"tensor"});
}

TEST(GgufWrite, RoundTripOfEveryValueTypeAndTensors) {
  const std::string dir = testing::make_temp_dir("gguf-rt");
  const std::string path = dir + "/rt.gguf";
  std::vector<GgufKV> kv = {
      {"general.architecture", GgufValue::string("llama")},
      {"u8", GgufValue::u8(200)},
      {"i8", GgufValue::i8(-5)},
      {"u16", GgufValue::u16(60000)},
      {"i16", GgufValue::i16(-30000)},
      {"u32", GgufValue::u32(4000000000u)},
      {"i32", GgufValue::i32(-7)},
      {"u64", GgufValue::u64(1ull << 40)},
      {"i64", GgufValue::i64(-(1ll << 40))},
      {"f32", GgufValue::f32(1e-5f)},
      {"f64", GgufValue::f64(0.1)},
      {"bool", GgufValue::boolean(true)},
      {"empty", GgufValue::string("")},
      {"tokens", GgufValue::strings({"\xE2\x96\x81the", "", "<0x0A>", "\xC4\xA0"})},
      {"scores", GgufValue::f32_array(std::vector<float>{-1.5f, 0.0f, 2.25f})},
      {"types", GgufValue::i32_array(std::vector<int32_t>{1, 3, 6})},
      {"none", GgufValue::i32_array(std::vector<int32_t>{})},
  };
  std::vector<float> a(15);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i) * 0.5f;
  std::vector<uint8_t> q(2 * 2 * 34), b(7 * 2);
  for (size_t i = 0; i < q.size(); ++i) q[i] = static_cast<uint8_t>(i * 7);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(255 - i);
  {
    GgufWriter w(path,kv,
                 {{"a", GgmlType::F32, {5, 3}}, {"empty", GgmlType::F32, {0, 4}}, {"q", GgmlType::Q8_0, {64, 2}},
                  {"b", GgmlType::BF16, {7}}},
                 64);
    w.write(a.data(), 20);  // in two pieces
    w.write(a.data() + 5, 40);
    w.write(q.data(), q.size());
    w.write(b.data(), b.size());
    w.finish();
  }
  GgufFile f = read_gguf(path);
  EXPECT_EQ(f.alignment, 64u);
  EXPECT_EQ(f.data_offset % 64, 0u);
  ASSERT_EQ(f.metadata.size(), kv.size() + 1);  // + general.alignment
  for (size_t i = 0; i < kv.size(); ++i) EXPECT_EQ(f.metadata[i].key, kv[i].key);
  EXPECT_EQ(f.get_int("u8"), 200);
  EXPECT_EQ(f.get_int("i8"), -5);
  EXPECT_EQ(f.get_int("u16"), 60000);
  EXPECT_EQ(f.get_int("i16"), -30000);
  EXPECT_EQ(f.get_int("u32"), 4000000000ll);
  EXPECT_EQ(f.get_int("i32"), -7);
  EXPECT_EQ(f.get_int("u64"), 1ll << 40);
  EXPECT_EQ(f.get_int("i64"), -(1ll << 40));
  EXPECT_EQ(static_cast<float>(f.get_float("f32")), 1e-5f);
  EXPECT_EQ(f.get_float("f64"), 0.1);
  EXPECT_EQ(f.opt_bool("bool"), true);
  EXPECT_EQ(f.get_string("empty"), "");
  EXPECT_EQ(*f.find("tokens")->as_strings(), (std::vector<std::string>{"\xE2\x96\x81the", "", "<0x0A>", "\xC4\xA0"}));
  EXPECT_EQ(*f.find("scores")->as_floats(), (std::vector<float>{-1.5f, 0.0f, 2.25f}));
  EXPECT_EQ(*f.find("types")->as_ints(), (std::vector<int64_t>{1, 3, 6}));
  EXPECT_EQ(f.find("none")->size(), 0u);
  EXPECT_EQ(f.find("u32")->describe(), "u32 4000000000");
  EXPECT_EQ(f.find("tokens")->describe(), "arr[str] of 4");
  ASSERT_EQ(f.tensors.size(), 4u);
  EXPECT_EQ(f.tensors[0].shape_str(), "[3, 5]");
  EXPECT_EQ(f.tensors[0].nbytes, 60u);
  EXPECT_EQ(std::memcmp(f.tensors[0].data, a.data(), 60), 0);
  EXPECT_EQ(f.tensors[1].nbytes, 0u);
  EXPECT_EQ(f.tensors[2].type, GgmlType::Q8_0);
  EXPECT_EQ(std::memcmp(f.tensors[2].data, q.data(), q.size()), 0);
  EXPECT_EQ(std::memcmp(f.tensors[3].data, b.data(), b.size()), 0);
  for (const auto& t : f.tensors) EXPECT_EQ(t.offset % 64, 0u) << t.name;
  // Typed access errors name the key.
  try {
    f.get_string("u8");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'u8': expected a string, got u8 200"), std::string::npos) << e.what();
  }
  EXPECT_THROW(f.get_int("missing.key"), Error);
}

TEST(GgufWrite, IndependentPythonReaderAgrees) {
  const std::string dir = testing::make_temp_dir("gguf-py");
  const std::string path = dir + "/ours.gguf";
  std::vector<uint8_t> q4(18 * 4);
  for (size_t i = 0; i < q4.size(); ++i) q4[i] = static_cast<uint8_t>(i * 13 + 1);
  std::vector<float> x = {1.0f, -2.0f, 3.5f};
  {
    GgufWriter w(path,
                 {{"general.architecture", GgufValue::string("qwen3")},
                  {"qwen3.block_count", GgufValue::u32(28)},
                  {"tokenizer.ggml.tokens", GgufValue::strings({"a", "\xC4\xA0" "b", "<|im_end|>"})},
                  {"tokenizer.ggml.scores", GgufValue::f32_array(std::vector<float>{0.5f, -1.0f})},
                  {"general.flag", GgufValue::boolean(false)}},
                 {{"blk.0.attn_q.weight", GgmlType::Q4_0, {64, 2}}, {"output_norm.weight", GgmlType::F32, {3}}});
    w.write(q4.data(), q4.size());
    w.write(x.data(), 12);
    w.finish();
  }
  auto r = testing::run_command(testing::python() + " " + testing::source_dir() + "/tests/io/ref/gguf_ref.py dump " +
                                path + " " + dir + "/dump.json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json d = read_json_file(dir + "/dump.json");
  EXPECT_EQ(d["alignment"], 32);
  EXPECT_EQ(d["metadata"]["general.architecture"], nlohmann::json({"str", "qwen3"}));
  EXPECT_EQ(d["metadata"]["qwen3.block_count"], nlohmann::json({"u32", 28}));
  EXPECT_EQ(d["metadata"]["tokenizer.ggml.tokens"],
            nlohmann::json({"arr", "str", {"a", "\xC4\xA0" "b", "<|im_end|>"}}));
  EXPECT_EQ(d["metadata"]["tokenizer.ggml.scores"], nlohmann::json({"arr", "f32", {0.5, -1.0}}));
  EXPECT_EQ(d["metadata"]["general.flag"], nlohmann::json({"bool", false}));
  ASSERT_EQ(d["tensors"].size(), 2u);
  EXPECT_EQ(d["tensors"][0]["ne"], nlohmann::json({64, 2}));
  EXPECT_EQ(d["tensors"][0]["type"], 2);
  EXPECT_EQ(d["tensors"][1]["offset"], 96);  // 72 bytes padded to 32
  EXPECT_EQ(d["tensors"][1]["nbytes"], 12);

  // And the other way: a file the Python writer makes (alignment 16, a string array, a
  // K-quant tensor) reads back as described.
  nlohmann::json spec = {
      {"alignment", 16},
      {"metadata", {{"general.architecture", "str", "llama"}, {"llama.rope.freq_base", "f32", 500000.0},
                    {"tokenizer.ggml.token_type", "arr", "i32", {1, 3, 6}}, {"general.alignment", "u32", 16}}},
      {"tensors", {{{"name", "token_embd.weight"}, {"type", 14}, {"ne", {256, 1}}, {"data_hex", std::string(420, 'a')}},
                   {{"name", "x"}, {"type", 0}, {"ne", {1}}, {"data_hex", "0000803f"}}}}};
  testing::write_text(dir + "/spec.json", spec.dump());
  r = testing::run_command(testing::python() + " " + testing::source_dir() + "/tests/io/ref/gguf_ref.py write " + dir +
                           "/spec.json " + dir + "/theirs.gguf");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  GgufFile f = read_gguf(dir + "/theirs.gguf");
  EXPECT_EQ(f.alignment, 16u);
  EXPECT_EQ(f.get_float("llama.rope.freq_base"), 500000.0);
  EXPECT_EQ(*f.find("tokenizer.ggml.token_type")->as_ints(), (std::vector<int64_t>{1, 3, 6}));
  ASSERT_EQ(f.tensors.size(), 2u);
  EXPECT_EQ(f.tensors[0].type, GgmlType::Q6_K);
  EXPECT_EQ(f.tensors[0].nbytes, 210u);
  EXPECT_EQ(f.tensors[0].data[209], 0xaa);
  EXPECT_EQ(f.tensors[1].offset, 224u);
  float one;
  std::memcpy(&one, f.tensors[1].data, 4);
  EXPECT_EQ(one, 1.0f);
}

TEST(GgufWrite, RefusesInconsistentUse) {
  const std::string dir = testing::make_temp_dir("gguf-w");
  const std::string path = dir + "/w.gguf";
  EXPECT_THROW(GgufWriter(path, {{"k", GgufValue::u8(1)}, {"k", GgufValue::u8(2)}}, {}), Error);
  EXPECT_THROW(GgufWriter(path, {}, {{"a", GgmlType::F32, {1}}, {"a", GgmlType::F32, {1}}}), Error);
  EXPECT_THROW(GgufWriter(path, {}, {{"q", GgmlType::Q4_0, {40}}}), Error);
  EXPECT_THROW(GgufWriter(path, {}, {{std::string(64, 'x'), GgmlType::F32, {1}}}), Error);
  {
    GgufWriter w(path, {}, {{"a", GgmlType::F32, {2}}});
    float v[3] = {1, 2, 3};
    EXPECT_THROW(w.write(v, 12), Error);
    w.write(v, 4);
    EXPECT_THROW(w.finish(), Error);  // half of "a" missing
  }
  EXPECT_FALSE(std::filesystem::exists(path));  // nothing appears without a finished write
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

}  // namespace
}  // namespace qs

namespace qs {
namespace {

// The fuzz seeds (fuzz/io/make_gguf_seeds.py) are what they say they are.
TEST(GgufRead, FuzzSeeds) {
  const std::string dir = testing::source_dir() + "/fuzz/corpus/gguf/";
  GgufFile f = read_gguf(dir + "valid.gguf");
  EXPECT_EQ(f.tensors.size(), 6u);
  EXPECT_EQ(f.metadata.size(), 9u);
  EXPECT_EQ(read_gguf(dir + "aligned64.gguf").alignment, 64u);
  for (const char* bad : {"truncated.gguf", "version1.gguf", "big_endian.gguf", "huge_counts.gguf", "overlap.gguf",
                          "unaligned.gguf"})
    EXPECT_THROW(read_gguf(dir + bad), Error) << bad;
}

}  // namespace
}  // namespace qs
