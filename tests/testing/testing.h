// Helpers for tests: locations of ../shared and the build, scratch directories, and running
// commands (the qstudy binary, Python references) with their output captured.
#pragma once

#include <string>

namespace qs::testing {

std::string shared_dir();   // ../shared beside the source tree (env QSTUDY_SHARED_DIR)
std::string source_dir();   // the source tree
std::string binary_dir();   // the build tree
std::string qstudy_exe();   // the qstudy binary in the build tree
std::string python();       // /usr/bin/python3: Debian's, with python3-torch
// A fresh empty directory under the build tree, unique per call.
std::string make_temp_dir(const std::string& tag);
void write_text(const std::string& path, const std::string& text);

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};
// Runs a shell command, capturing stdout and stderr separately.
CommandResult run_command(const std::string& command);
// Single-quotes a string for the shell.
std::string shell_quote(const std::string& s);

}  // namespace qs::testing
