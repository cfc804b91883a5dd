#include "cli/model_args.h"

#include <algorithm>

#include "core/error.h"
#include "core/timer.h"
#include "quantize/files/checkpoint.h"

namespace qs::cli {

void add_model_options(CLI::App* cmd, ModelArgs& args, bool required) {
  auto* opt = cmd->add_option("--model,-m", args.model,
                              "Model: Hugging Face directory, llama2.c .bin (or its directory)");
  if (required) opt->required();
  cmd->add_option("--tokenizer", args.tokenizer,
                  "Tokenizer file (tokenizer.json or llama2.c tokenizer.bin) if not beside the model");
}

std::unique_ptr<Tokenizer> load_tokenizer_for(const ModelArgs& args) {
  if (!args.tokenizer.empty()) return Tokenizer::load(args.tokenizer);
  const ModelLocation where = locate_model(args.model);
  if (where.tokenizer.empty())
    fail(args.model, ": no tokenizer found beside the model (expected tokenizer.json or tokenizer.bin; pass --tokenizer)");
  return Tokenizer::load(where.tokenizer);
}

LoadedModel load_model_and_tokenizer(const ModelArgs& args) {
  LoadedModel m;
  Stopwatch clock;
  m.location = locate_model(args.model);
  m.model = quant::load_model_any(args.model);  // dense, llama2.c, quantized checkpoints, GGUF
  m.load_seconds = clock.seconds();
  m.tokenizer = load_tokenizer_for(args);
  const int64_t model_vocab = m.model->config().vocab_size;
  if (m.tokenizer->vocab_size() > model_vocab)
    fail(args.tokenizer.empty() ? m.location.tokenizer : args.tokenizer, ": tokenizer has ", m.tokenizer->vocab_size(),
         " tokens but the model's vocabulary has ", model_vocab, " (", args.model, "): they do not belong together");
  return m;
}

std::vector<int32_t> stop_tokens(const LoadedModel& m) {
  std::vector<int32_t> ids = m.tokenizer->eos_ids();
  for (int32_t id : m.model->config().eos_token_ids)
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  return ids;
}

}  // namespace qs::cli
