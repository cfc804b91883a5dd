#include "tokenizer/json_capture.h"

#include <algorithm>
#include <cstdint>

#include "core/error.h"

namespace qs::tok {

namespace {

using json = nlohmann::json;

class CaptureSax final : public nlohmann::json_sax<json> {
 public:
  explicit CaptureSax(TokenizerJson& out) : out_(out) {}
  const std::string& error() const { return error_; }

  bool null() override { return value(json(nullptr), "null"); }
  bool boolean(bool v) override { return value(json(v), "a boolean"); }
  bool number_integer(number_integer_t v) override {
    if (mode_ == Mode::kVocab) return vocab_id(v);
    return value(json(v), "a number");
  }
  bool number_unsigned(number_unsigned_t v) override {
    if (mode_ == Mode::kVocab) return vocab_id(static_cast<int64_t>(std::min<uint64_t>(v, INT64_MAX)));
    return value(json(v), "a number");
  }
  bool number_float(number_float_t v, const string_t&) override { return value(json(v), "a number"); }
  bool binary(binary_t&) override { return value(json(nullptr), "binary data"); }
  bool string(string_t& v) override {
    if (mode_ == Mode::kMerges) {
      size_t sp = v.find(' ');
      if (sp == std::string::npos || sp == 0 || sp + 1 == v.size() || v.find(' ', sp + 1) != std::string::npos)
        return abort(cat("model.merges[", out_.merges.size(), "]: expected \"left right\" (two tokens and one space), got ",
                         qs::quote(v)));
      out_.merges.emplace_back(v.substr(0, sp), v.substr(sp + 1));
      return true;
    }
    if (mode_ == Mode::kMergePair) {
      pair_.push_back(std::move(v));
      return true;
    }
    return value(json(std::move(v)), "a string");
  }
  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }
  bool start_object(std::size_t) override {
    if (mode_ != Mode::kDom) return value(json(), "an object");
    if (at_model_member("vocab")) {
      mode_ = Mode::kVocab;
      out_.vocab_captured = true;
      return true;
    }
    return open(json::object());
  }
  bool end_object() override {
    if (mode_ == Mode::kVocab) {
      mode_ = Mode::kDom;
      return true;
    }
    return close();
  }
  bool start_array(std::size_t) override {
    if (mode_ == Mode::kMerges) {
      mode_ = Mode::kMergePair;
      pair_.clear();
      return true;
    }
    if (mode_ != Mode::kDom) return value(json(), "an array");
    if (at_model_member("merges")) {
      mode_ = Mode::kMerges;
      out_.merges_captured = true;
      return true;
    }
    return open(json::array());
  }
  bool end_array() override {
    if (mode_ == Mode::kMergePair) {
      if (pair_.size() != 2)
        return abort(cat("model.merges[", out_.merges.size(), "]: expected [left, right], got ", pair_.size(), " strings"));
      out_.merges.emplace_back(std::move(pair_[0]), std::move(pair_[1]));
      mode_ = Mode::kMerges;
      return true;
    }
    if (mode_ == Mode::kMerges) {
      mode_ = Mode::kDom;
      return true;
    }
    return close();
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    if (error_.empty()) error_ = cat("invalid JSON: ", e.what());
    return false;
  }

 private:
  enum class Mode { kDom, kVocab, kMerges, kMergePair };

  // Is the container about to open the member `name` of the top-level "model" object?
  bool at_model_member(const char* name) const {
    return stack_.size() == 2 && stack_[0]->is_object() && stack_[1]->is_object() && keys_[1] == "model" && key_ == name;
  }
  bool vocab_id(int64_t id) {
    out_.vocab.emplace_back(std::move(key_), id);
    return true;
  }
  bool abort(std::string message) {
    error_ = std::move(message);
    return false;
  }
  // A value that is not part of a captured member goes into the DOM.
  bool value(json&& v, const char* what) {
    if (mode_ == Mode::kVocab) return abort(cat("model.vocab[", qs::quote(key_), "]: expected an integer id, got ", what));
    if (mode_ == Mode::kMerges || mode_ == Mode::kMergePair)
      return abort(cat("model.merges[", out_.merges.size(), "]: expected \"left right\" or [left, right], got ", what));
    insert(std::move(v));
    return true;
  }
  json* insert(json&& v) {
    if (stack_.empty()) {
      out_.rest = std::move(v);
      return &out_.rest;
    }
    json& top = *stack_.back();
    if (top.is_object()) {
      json& slot = top[key_];
      slot = std::move(v);
      return &slot;
    }
    top.push_back(std::move(v));
    return &top.back();
  }
  bool open(json&& container) {
    std::string key = stack_.empty() || stack_.back()->is_array() ? std::string() : key_;
    stack_.push_back(insert(std::move(container)));
    keys_.push_back(std::move(key));
    return true;
  }
  bool close() {
    stack_.pop_back();
    keys_.pop_back();
    return true;
  }

  TokenizerJson& out_;
  Mode mode_ = Mode::kDom;
  std::vector<json*> stack_;       // open containers (pointers stay valid while they are open)
  std::vector<std::string> keys_;  // the key each open container sits under
  std::string key_;
  std::vector<std::string> pair_;
  std::string error_;
};

}  // namespace

TokenizerJson parse_tokenizer_json(std::string_view text, const std::string& name) {
  TokenizerJson out;
  CaptureSax sax(out);
  bool ok = false;
  try {
    ok = json::sax_parse(text.begin(), text.end(), &sax);
  } catch (const json::exception& e) {
    fail(name, ": invalid JSON: ", e.what());
  }
  if (!ok) fail(name, ": ", sax.error().empty() ? std::string("invalid JSON") : sax.error());
  return out;
}

}  // namespace qs::tok
