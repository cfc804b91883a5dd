#include "tokenizer/tokenizer.h"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "tokenizer/json_capture.h"
#include "tokenizer/loaders.h"

namespace qs {

namespace {

using json = nlohmann::json;

json parse_json_text(std::string_view text, const std::string& name) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    fail(name, ": invalid JSON: ", e.what());
  }
}

std::string sibling(const std::string& path, const char* name) {
  return (std::filesystem::path(path).parent_path() / name).string();
}

}  // namespace

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

std::unique_ptr<Tokenizer> Tokenizer::from_hf_json(const std::string& tokenizer_json_path,
                                                   const std::string& tokenizer_config_path) {
  std::string config_path = tokenizer_config_path;
  if (config_path.empty()) {
    std::string beside = sibling(tokenizer_json_path, "tokenizer_config.json");
    if (file_exists(beside)) config_path = beside;
  }
  std::string generation_path = sibling(tokenizer_json_path, "generation_config.json");
  if (!file_exists(generation_path)) generation_path.clear();

  tok::TokenizerJson tokenizer = tok::parse_tokenizer_json(read_file(tokenizer_json_path), tokenizer_json_path);
  json config, generation;
  if (!config_path.empty()) config = read_json_file(config_path);
  if (!generation_path.empty()) generation = read_json_file(generation_path);
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  t->core_ = tok::build_from_hf(tokenizer, config_path.empty() ? nullptr : &config,
                                generation_path.empty() ? nullptr : &generation,
                                {tokenizer_json_path, config_path, generation_path});
  t->hf_json_path_ = tokenizer_json_path;
  t->hf_config_path_ = config_path;
  return t;
}

std::unique_ptr<Tokenizer> Tokenizer::from_hf_json_text(std::string_view tokenizer_json, std::string_view config_json,
                                                        const std::string& source_name) {
  std::string config_name = source_name + " (tokenizer_config)";
  tok::TokenizerJson tokenizer = tok::parse_tokenizer_json(tokenizer_json, source_name);
  json config;
  if (!config_json.empty()) config = parse_json_text(config_json, config_name);
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  t->core_ = tok::build_from_hf(tokenizer, config_json.empty() ? nullptr : &config, nullptr,
                                {source_name, config_name, ""});
  t->hf_json_text_ = std::string(tokenizer_json);
  t->hf_config_text_ = std::string(config_json);
  return t;
}

std::unique_ptr<Tokenizer> Tokenizer::from_llama2c(const std::string& tokenizer_bin_path) {
  return from_llama2c_bytes(read_file(tokenizer_bin_path), tokenizer_bin_path);
}

std::unique_ptr<Tokenizer> Tokenizer::from_llama2c_bytes(std::string_view bytes, const std::string& source_name) {
  auto source = std::make_shared<tok::Llama2cSource>(tok::parse_llama2c(bytes, source_name));
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  t->core_ = tok::build_from_llama2c(*source);
  t->llama2c_ = std::move(source);
  return t;
}

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string& path) {
  if (is_directory(path)) {
    std::string json_path = (std::filesystem::path(path) / "tokenizer.json").string();
    if (file_exists(json_path)) return from_hf_json(json_path);
    std::string bin_path = (std::filesystem::path(path) / "tokenizer.bin").string();
    if (file_exists(bin_path)) return from_llama2c(bin_path);
    fail(path, ": no tokenizer.json or tokenizer.bin in this directory");
  }
  if (!file_exists(path)) fail(path, ": no such file (expected tokenizer.json, tokenizer.bin or a model directory)");
  if (std::filesystem::path(path).extension() == ".json") return from_hf_json(path);
  // Sniff: a JSON object starts with '{' (after white space); a GGUF file with its magic; a
  // tokenizer.bin with an int32.
  std::ifstream in(path, std::ios::binary);
  char head[256] = {};
  in.read(head, sizeof(head));
  std::string_view start(head, static_cast<size_t>(in.gcount()));
  if (start.substr(0, 4) == "GGUF") return from_gguf_file(path);
  size_t first = start.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && start[first] == '{') return from_hf_json(path);
  return from_llama2c(path);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special) const {
  return core_->encode(text, add_special);
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  return tok::to_valid_utf8(core_->decode_bytes(ids, skip_special));
}

int32_t Tokenizer::vocab_size() const { return core_->vocab_size(); }
std::optional<int32_t> Tokenizer::bos_id() const { return core_->bos_id; }
std::vector<int32_t> Tokenizer::eos_ids() const { return core_->eos_ids; }

bool Tokenizer::adds_bos() const {
  return core_->bos_id && !core_->prefix_ids.empty() && core_->prefix_ids.front() == *core_->bos_id;
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  int32_t id = core_->token_to_id.find(token);
  if (id < 0) return std::nullopt;
  return id;
}

std::string Tokenizer::id_to_token(int32_t id) const {
  core_->check_id(id, "id_to_token");
  return core_->id_to_token[static_cast<size_t>(id)];
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && core_->id_special[static_cast<size_t>(id)];
}

const std::string& Tokenizer::chat_template() const { return core_->chat_template; }

nlohmann::json Tokenizer::to_hf_json() const {
  if (llama2c_) return tok::llama2c_to_hf_json(*llama2c_);
  if (!hf_json_path_.empty()) return read_json_file(hf_json_path_);
  return parse_json_text(hf_json_text_, "tokenizer.json");
}

nlohmann::json Tokenizer::to_hf_config_json() const {
  if (llama2c_) return tok::llama2c_to_hf_config(*llama2c_);
  if (!hf_config_path_.empty()) return read_json_file(hf_config_path_);
  if (!hf_config_text_.empty()) return parse_json_text(hf_config_text_, "tokenizer_config.json");
  return json::object();
}

// ---------------------------------------------------------------------------------------------

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special)
    : tokenizer_(tokenizer), skip_special_(skip_special) {}

std::string StreamDecoder::push(int32_t id) {
  tokenizer_.core_->check_id(id, "StreamDecoder::push");
  ids_.push_back(id);
  std::span<const int32_t> all(ids_);
  // Decode from the start of the previous chunk, so that what depends on being the first token
  // (a stripped leading space) is the same in both decodes and cancels out of the difference.
  std::string before = tokenizer_.core_->decode_bytes(all.subspan(prefix_offset_, read_offset_ - prefix_offset_), skip_special_);
  std::string now = tokenizer_.core_->decode_bytes(all.subspan(prefix_offset_), skip_special_);
  if (now.size() <= before.size() || now.compare(0, before.size(), before) != 0) return "";
  std::string_view fresh = std::string_view(now).substr(before.size());
  if (tok::incomplete_utf8_tail(fresh) > 0) return "";  // wait for the rest of the character
  prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  return tok::to_valid_utf8(fresh);
}

std::string StreamDecoder::flush() {
  std::span<const int32_t> all(ids_);
  std::string before = tokenizer_.core_->decode_bytes(all.subspan(prefix_offset_, read_offset_ - prefix_offset_), skip_special_);
  std::string now = tokenizer_.core_->decode_bytes(all.subspan(prefix_offset_), skip_special_);
  std::string rest = now.size() > before.size() && now.compare(0, before.size(), before) == 0 ? now.substr(before.size()) : "";
  ids_.clear();
  prefix_offset_ = read_offset_ = 0;
  return tok::to_valid_utf8(rest);
}

}  // namespace qs
