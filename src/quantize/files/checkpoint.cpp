#include "quantize/files/checkpoint.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "model/loader.h"
#include "quantize/files/bitsandbytes_checkpoint.h"
#include "quantize/files/compressed_tensors.h"
#include "quantize/files/gguf_model.h"
#include "quantize/files/gptq_awq_checkpoint.h"
#include "quantize/files/qstudy_checkpoint.h"

namespace qs::quant {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {



bool same_directory(const std::string& a, const std::string& b) {
  std::error_code ec;
  return !a.empty() && !b.empty() && fs::exists(a, ec) && fs::exists(b, ec) && fs::equivalent(a, b, ec);
}

// The quantization_config of a checkpoint directory and the file it came from; null when none.
std::pair<json, std::string> quantization_config_of(const std::string& dir) {
  const std::string config_path = dir + "/config.json";
  const json config = read_json_file(config_path);
  if (config.is_object()) {
    auto it = config.find("quantization_config");
    if (it != config.end() && !it->is_null()) return {*it, config_path};
  }
  // AutoGPTQ wrote its settings beside config.json.
  const std::string gptq_path = dir + "/quantize_config.json";
  if (file_exists(gptq_path)) {
    json qc = read_json_file(gptq_path);
    if (qc.is_object() && !qc.contains("quant_method")) qc["quant_method"] = "gptq";
    return {qc, gptq_path};
  }
  return {json(), config_path};
}

}  // namespace

namespace files {

LinearFactory checkpoint_reader(const json& qc, const std::string& origin) {
  if (!qc.is_object()) fail(origin, ": quantization_config must be an object");
  auto m = qc.find("quant_method");
  if (m == qc.end() || !m->is_string())
    fail(origin, ": quantization_config.quant_method: missing (expected compressed-tensors, gptq, awq, bitsandbytes or qstudy)");
  const std::string method = m->get<std::string>();
  if (method == "compressed-tensors") return compressed_tensors_reader(qc, origin);
  if (method == "gptq") return gptq_reader(qc, origin);
  if (method == "awq") return awq_reader(qc, origin);
  if (method == "bitsandbytes") return bitsandbytes_reader(qc, origin);
  if (method == "qstudy") return qstudy_reader(qc, origin);
  fail(origin, ": quantization_config.quant_method ", quote(method),
       " is not supported (supported: compressed-tensors, gptq, awq, bitsandbytes, qstudy)");
}

}  // namespace files

CheckpointFormat parse_checkpoint_format(const std::string& name) {
  if (name == "compressed-tensors") return CheckpointFormat::CompressedTensors;
  if (name == "bitsandbytes") return CheckpointFormat::Bitsandbytes;
  if (name == "qstudy") return CheckpointFormat::Qstudy;
  if (name == "gguf") return CheckpointFormat::Gguf;
  fail("--format: unknown checkpoint format ", quote(name), " (valid: compressed-tensors, bitsandbytes, qstudy, gguf)");
}

std::string checkpoint_format_name(CheckpointFormat format) {
  switch (format) {
    case CheckpointFormat::CompressedTensors: return "compressed-tensors";
    case CheckpointFormat::Bitsandbytes: return "bitsandbytes";
    case CheckpointFormat::Qstudy: return "qstudy";
    case CheckpointFormat::Gguf: return "gguf";
  }
  return "?";
}

std::string checkpoint_format_problem(const Model& model, CheckpointFormat format) {
  const auto layers = files::model_linears(model);
  try {
    switch (format) {
      case CheckpointFormat::CompressedTensors: files::compressed_tensors_config(layers); break;
      case CheckpointFormat::Bitsandbytes: files::bitsandbytes_config(layers, files::model_dtype(model)); break;
      case CheckpointFormat::Qstudy: files::qstudy_config(layers); break;
      case CheckpointFormat::Gguf:
        for (const auto& l : layers)
          if (l.quant && !l.quant->storage().gguf_blocks)
            return cat("layer ", quote(l.name), " is ", l.linear->format(),
                       ", which GGUF cannot hold (supported: dense f32, f16, bf16 layers and the q8_0, q4_0 schemes)");
        break;
    }
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

CheckpointFormat default_checkpoint_format(const Model& model) {
  if (checkpoint_format_problem(model, CheckpointFormat::CompressedTensors).empty())
    return CheckpointFormat::CompressedTensors;
  if (checkpoint_format_problem(model, CheckpointFormat::Bitsandbytes).empty()) return CheckpointFormat::Bitsandbytes;
  return CheckpointFormat::Qstudy;
}

// One .gguf file: `out` is the file, or a directory that receives model.gguf.
static SavedCheckpoint save_gguf_checkpoint(const Model& model, const std::string& out, const SaveOptions& options) {
  require(!out.empty(), "--out: no output file given");
  require(options.tokenizer != nullptr, "--format gguf: no tokenizer to write into ", out);
  fs::path file(out);
  if (file.extension() != ".gguf") {
    std::error_code ec;
    fs::create_directories(file, ec);
    if (ec) fail(out, ": cannot create directory: ", ec.message());
    file /= "model.gguf";
  }
  save_gguf_model(model, *options.tokenizer, file.string());
  SavedCheckpoint saved;
  saved.path = file.string();
  saved.format = CheckpointFormat::Gguf;
  saved.files = {file.filename().string()};
  saved.bytes_on_disk = static_cast<int64_t>(fs::file_size(file));
  saved.tensor_bytes = saved.bytes_on_disk;
  return saved;
}

SavedCheckpoint save_quantized_model(const Model& model, const std::string& source_dir, const std::string& out_dir,
                                     CheckpointFormat format, const SaveOptions& options) {
  if (format == CheckpointFormat::Gguf) {
    return save_gguf_checkpoint(model, out_dir, options);
  }
  require(!out_dir.empty(), "--out: no output directory given");
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) fail(out_dir, ": cannot create directory: ", ec.message());
  const std::string model_dir = is_directory(model.source()) ? model.source() : fs::path(model.source()).parent_path().string();
  if (same_directory(out_dir, source_dir) || same_directory(out_dir, model_dir))
    fail(out_dir, ": is the directory the model was loaded from (its weights are mapped from there); choose another --out");

  const auto layers = files::model_linears(model);
  const DType dtype = files::model_dtype(model);
  json qc;
  std::function<std::vector<files::PlannedTensor>(const files::ModelLinear&)> quantized;
  switch (format) {
    case CheckpointFormat::CompressedTensors:
      qc = files::compressed_tensors_config(layers);
      quantized = [dtype](const files::ModelLinear& l) { return files::compressed_tensors_tensors(l, dtype); };
      break;
    case CheckpointFormat::Bitsandbytes:
      qc = files::bitsandbytes_config(layers, dtype);
      quantized = [dtype](const files::ModelLinear& l) { return files::bitsandbytes_tensors(l, dtype); };
      break;
    case CheckpointFormat::Qstudy:
      qc = files::qstudy_config(layers);
      quantized = [](const files::ModelLinear& l) { return files::qstudy_tensors(l); };
      break;
    case CheckpointFormat::Gguf: break;
  }
  const std::vector<files::PlannedTensor> tensors = files::plan_model_tensors(model, quantized);
  const files::WrittenShards shards = files::write_sharded_safetensors(out_dir, tensors, options.shard_bytes);
  files::write_config_json(model, source_dir, out_dir, qc);

  SavedCheckpoint saved;
  saved.path = out_dir;
  saved.format = format;
  saved.files = shards.files;
  saved.files.push_back("config.json");
  for (auto& f : files::copy_tokenizer_files(source_dir, out_dir)) saved.files.push_back(f);
  if (source_dir.empty() && options.tokenizer) {
    // No Hugging Face source (a llama2.c checkpoint): write its tokenizer as `convert` does.
    write_file_atomic(out_dir + "/tokenizer.json", options.tokenizer->to_hf_json().dump(2));
    write_file_atomic(out_dir + "/tokenizer_config.json", options.tokenizer->to_hf_config_json().dump(2));
    saved.files.push_back("tokenizer.json");
    saved.files.push_back("tokenizer_config.json");
  }
  saved.tensor_bytes = shards.tensor_bytes;
  for (const auto& f : saved.files) saved.bytes_on_disk += static_cast<int64_t>(fs::file_size(out_dir + "/" + f, ec));
  return saved;
}

bool is_quantized_checkpoint(const std::string& dir) {
  if (!is_directory(dir) || !file_exists(dir + "/config.json")) return false;
  try {
    return !quantization_config_of(dir).first.is_null();
  } catch (const Error&) {
    return false;  // a malformed config.json is reported by whichever loader reads it
  }
}

std::unique_ptr<Model> load_quantized_model(const std::string& dir) {
  const std::string config_path = dir + "/config.json";
  if (!file_exists(config_path)) fail(dir, ": no config.json (expected a Hugging Face checkpoint directory)");
  auto [qc, origin] = quantization_config_of(dir);
  if (qc.is_null())
    fail(config_path, ": no quantization_config (and no quantize_config.json): not a quantized checkpoint");
  LinearFactory factory = files::checkpoint_reader(qc, origin);
  ModelConfig config = read_model_config(config_path);
  TensorStore store = load_safetensors_dir(dir);
  return build_model(std::move(config), std::move(store), dir, factory);
}

std::unique_ptr<Model> load_model_any(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext == ".gguf") {
    return load_gguf_model(path);
  }
  const ModelLocation where = locate_model(path);
  if (where.format == ModelFormat::HuggingFace && is_quantized_checkpoint(where.weights))
    return load_quantized_model(where.weights);
  return load_model(where);
}


}  // namespace qs::quant
