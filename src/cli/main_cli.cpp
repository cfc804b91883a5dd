#include <cstdio>
#include <exception>
#include <string>

#include "cli/commands.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/thread_pool.h"

namespace qs::cli {

void add_common_options(CLI::App* cmd, CommonOptions& opts) {
  cmd->add_option("--threads,-t", opts.threads, "Worker threads (0: all cores)")->check(CLI::NonNegativeNumber);
  cmd->add_flag("--quiet,-q", opts.quiet, "No progress output");
}

void apply_common_options(const CommonOptions& opts) {
  set_default_threads(opts.threads);
  Progress::set_quiet(opts.quiet);
}

void add_help_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("help", "Show help for qstudy or one of its commands");
  auto topic = std::make_shared<std::string>();
  cmd->add_option("command", *topic, "Command to describe");
  cmd->callback([&app, topic] {
    if (topic->empty()) {
      // App::help() would describe the selected subcommand (this one); format the root instead.
      std::printf("%s", app.get_formatter()->make_help(&app, "qstudy", CLI::AppFormatMode::Normal).c_str());
      return;
    }
    for (auto* sub : app.get_subcommands({})) {
      if (sub->get_name() == *topic) {
        std::printf("%s", sub->help().c_str());
        return;
      }
    }
    fail("help: unknown command ", quote(*topic), " (run 'qstudy help' for the list)");
  });
}

int run_main(int argc, char** argv) {
  CLI::App app{
      "qstudy: what quantization costs your LLM, measured.\n"
      "Load a model, quantize it, run it with real low-bit kernels, measure accuracy, fidelity,\n"
      "speed and memory.",
      "qstudy"};
  app.set_version_flag("--version", "qstudy 0.1.0");
  app.require_subcommand(1);
  app.fallthrough(false);
  add_help_command(app);
  // Subcommands, in the order `qstudy help` lists them.
  add_generate_command(app);
  add_perplexity_command(app);
  add_eval_command(app);
  add_kld_command(app);
  add_bench_command(app);
  add_quantize_command(app);
  add_compare_gen_command(app);
  add_tokenize_command(app);
  add_convert_command(app);
  add_synth_command(app);
  add_info_command(app);
  if (argc < 2) {
    std::printf("%s", app.help().c_str());
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "qstudy: error: %s (see 'qstudy help')\n", e.what());
    return 2;
  } catch (const Error& e) {
    std::fprintf(stderr, "qstudy: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "qstudy: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qstudy: error: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace qs::cli
