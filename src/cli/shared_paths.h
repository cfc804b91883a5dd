// Where the read-only material beside the project (../shared: tokenizers, data) is, for commands
// that default to it: $QSTUDY_SHARED_DIR, else ../shared from the working directory, else the
// shared folder beside the source tree the binary was built from.
#pragma once

#include <string>

namespace qs::cli {

// "" when none is found.
std::string find_shared_dir();

}  // namespace qs::cli
