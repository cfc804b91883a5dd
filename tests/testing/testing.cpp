#include "testing/testing.h"

#include "core/progress.h"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace qs::testing {

// Tests run quietly; a test that checks progress output turns it back on.
const bool kQuietProgress = (Progress::set_quiet(true), true);

namespace {
std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}
std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

std::string shared_dir() { return env_or("QSTUDY_SHARED_DIR", QSTUDY_DEFAULT_SHARED_DIR); }
std::string source_dir() { return env_or("QSTUDY_SOURCE_DIR", QSTUDY_DEFAULT_SOURCE_DIR); }
std::string binary_dir() { return env_or("QSTUDY_BINARY_DIR", QSTUDY_DEFAULT_BINARY_DIR); }
std::string qstudy_exe() { return binary_dir() + "/qstudy"; }
std::string python() { return "/usr/bin/python3"; }

std::string make_temp_dir(const std::string& tag) {
  static std::atomic<int> counter{0};
  std::string dir = binary_dir() + "/test-tmp/" + tag + "-" + std::to_string(::getpid()) + "-" +
                    std::to_string(counter.fetch_add(1));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

CommandResult run_command(const std::string& command) {
  std::string dir = make_temp_dir("cmd");
  std::string out_path = dir + "/stdout", err_path = dir + "/stderr";
  std::string full = "(" + command + ") >" + shell_quote(out_path) + " 2>" + shell_quote(err_path);
  int status = std::system(full.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  r.out = slurp(out_path);
  r.err = slurp(err_path);
  std::filesystem::remove_all(dir);
  return r;
}

}  // namespace qs::testing
