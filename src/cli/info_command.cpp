// qstudy info: what a model is (architecture, shapes, formats, sizes) and what this machine can do.
#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/model_args.h"
#include "core/cpu.h"
#include "core/progress.h"
#include "core/sysinfo.h"
#include "core/thread_pool.h"

namespace qs::cli {

namespace {
struct InfoArgs {
  ModelArgs model;
  bool json = false;
};
}  // namespace

void add_info_command(CLI::App& app) {
  auto a = std::make_shared<InfoArgs>();
  auto* cmd = app.add_subcommand("info", "Describe a model (architecture, shapes, weight formats) and this machine");
  add_model_options(cmd, a->model, false);
  cmd->add_flag("--json", a->json, "Print one JSON object");
  cmd->callback([a] {
    nlohmann::json j;
    j["machine"] = {{"cpu", cpu_summary()},
                    {"threads", hardware_threads()},
                    {"memory_bytes", total_memory_bytes()},
                    {"avx512_bf16", cpu_features().avx512bf16},
                    {"avx512_vnni", cpu_features().avx512vnni}};
    if (!a->model.model.empty()) {
      LoadedModel m = load_model_and_tokenizer(a->model);
      const ModelConfig& c = m.model->config();
      std::map<std::string, int64_t> formats;  // format -> bytes of linear weights
      for (auto& layer : m.model->weights().layers)
        for (auto& [role, lin] : layer.linears()) formats[(*lin)->format()] += (*lin)->weight_bytes();
      j["model"] = {{"source", m.model->source()},
                    {"model_type", c.model_type},
                    {"parameters", c.parameter_count()},
                    {"vocab_size", c.vocab_size},
                    {"hidden_size", c.hidden_size},
                    {"intermediate_size", c.intermediate_size},
                    {"layers", c.num_hidden_layers},
                    {"heads", c.num_attention_heads},
                    {"kv_heads", c.num_key_value_heads},
                    {"head_dim", c.head_dim},
                    {"context", c.max_position_embeddings},
                    {"tied_embeddings", c.tie_word_embeddings},
                    {"weight_bytes", m.model->weight_bytes()},
                    {"decode_bytes_per_token", m.model->decode_bytes_per_token()},
                    {"linear_formats", formats},
                    {"load_seconds", m.load_seconds}};
      j["tokenizer"] = {{"vocab_size", m.tokenizer->vocab_size()},
                        {"bos_id", m.tokenizer->bos_id() ? nlohmann::json(*m.tokenizer->bos_id()) : nlohmann::json()},
                        {"eos_ids", m.tokenizer->eos_ids()},
                        {"adds_bos", m.tokenizer->adds_bos()},
                        {"has_chat_template", !m.tokenizer->chat_template().empty()}};
    }
    if (a->json) {
      std::printf("%s\n", j.dump(2).c_str());
      return;
    }
    std::printf("machine: %s, %d threads, %s RAM\n", cpu_summary().c_str(), hardware_threads(),
                format_bytes(static_cast<double>(total_memory_bytes())).c_str());
    if (j.contains("model")) {
      const auto& mj = j["model"];
      std::printf("model: %s (%s), %.1fM parameters, %d layers, hidden %lld, heads %d/%d x %d, vocab %lld, context %lld\n",
                  mj["source"].get<std::string>().c_str(), mj["model_type"].get<std::string>().c_str(),
                  mj["parameters"].get<double>() / 1e6, mj["layers"].get<int>(), mj["hidden_size"].get<long long>(),
                  mj["heads"].get<int>(), mj["kv_heads"].get<int>(), mj["head_dim"].get<int>(),
                  mj["vocab_size"].get<long long>(), mj["context"].get<long long>());
      std::printf("weights: %s in all, %s read per decoded token\n",
                  format_bytes(mj["weight_bytes"].get<double>()).c_str(),
                  format_bytes(mj["decode_bytes_per_token"].get<double>()).c_str());
      for (auto& [f, b] : mj["linear_formats"].items())
        std::printf("  linear layers in %s: %s\n", f.c_str(), format_bytes(b.get<double>()).c_str());
      std::printf("tokenizer: %d tokens\n", j["tokenizer"]["vocab_size"].get<int>());
    }
  });
}

}  // namespace qs::cli
