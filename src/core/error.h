// Errors that reach the user. Every failure caused by outside input (a file, a flag, a value)
// is a qs::Error whose message is one line naming where (file, field) and what was expected.
// The CLI prints it as "qstudy: error: <message>" and exits non-zero; nothing crashes.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace qs {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Concatenates anything streamable: cat("tensor '", name, "': ", n, " bytes").
template <class... Args>
std::string cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

template <class... Args>
[[noreturn]] void fail(Args&&... args) {
  throw Error(cat(std::forward<Args>(args)...));
}

// Checks an invariant about outside input; throws qs::Error with the message otherwise.
template <class... Args>
void require(bool ok, Args&&... args) {
  if (!ok) fail(std::forward<Args>(args)...);
}

// Quotes a value for an error message and keeps it one line and short.
std::string quote(std::string_view s, size_t max_len = 80);

}  // namespace qs
