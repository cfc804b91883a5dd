// The qstudy command line: one function per subcommand that declares its options and its
// action on a CLI11 app. run_main() turns every qs::Error into a one-line message and a
// non-zero exit code (1: bad input or failure, 2: bad command line).
#pragma once

#include <CLI/CLI.hpp>

namespace qs::cli {

// Options every measuring/running command shares.
struct CommonOptions {
  int threads = 0;  // 0: all cores
  bool quiet = false;
};
void add_common_options(CLI::App* cmd, CommonOptions& opts);
// Applies --threads and --quiet; call at the start of a command's action.
void apply_common_options(const CommonOptions& opts);

void add_help_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);
void add_convert_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_perplexity_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_kld_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_synth_command(CLI::App& app);
void add_info_command(CLI::App& app);
void add_quantize_command(CLI::App& app);
void add_compare_gen_command(CLI::App& app);
void add_sweep_command(CLI::App& app);

int run_main(int argc, char** argv);

}  // namespace qs::cli
