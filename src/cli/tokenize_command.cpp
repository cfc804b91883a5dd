// qstudy tokenize: prints the token ids of a text as one JSON array line.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/model_args.h"
#include "core/error.h"
#include "core/files.h"
#include "tokenizer/tokenizer.h"

namespace qs::cli {

void add_tokenize_command(CLI::App& app) {
  struct Options {
    std::string model_dir, tokenizer_file, text_file, text;
    bool no_special = false;
  };
  auto opts = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("tokenize", "Print the token ids of a text as a JSON array");
  // Exactly one tokenizer source and one text source (CLI11 reports a missing or doubled one).
  auto* source = cmd->add_option_group("tokenizer", "Where the tokenizer comes from");
  auto* model = source->add_option("--model", opts->model_dir, "Model whose tokenizer to use (Hugging Face dir, llama2.c .bin or its directory)");
  source->add_option("--tokenizer", opts->tokenizer_file, "tokenizer.json or llama2.c tokenizer.bin");
  source->require_option(1);
  auto* input = cmd->add_option_group("text", "What to tokenize");
  auto* file = input->add_option("--file", opts->text_file, "UTF-8 text file to tokenize");
  input->add_option("--text", opts->text, "Text to tokenize");
  input->require_option(1);
  cmd->add_flag("--no-special", opts->no_special, "Do not add BOS/EOS (special tokens in the text are still recognized)");
  cmd->callback([opts, model, file] {
    // A model path finds its tokenizer as the model commands do (HF dir, llama2.c dir or .bin).
    auto tok = model->count() ? load_tokenizer_for(ModelArgs{opts->model_dir, ""}) : Tokenizer::load(opts->tokenizer_file);
    std::string input = file->count() ? read_text_file(opts->text_file, /*allow_empty=*/true) : opts->text;
    std::vector<int32_t> ids = tok->encode(input, !opts->no_special);
    std::string line = "[";
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) line += ',';
      line += std::to_string(ids[i]);
    }
    line += "]\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
  });
}

}  // namespace qs::cli
