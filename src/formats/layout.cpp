#include "formats/layout.h"

#include "core/error.h"

namespace qs::formats {

void check_matrix(int64_t n, int64_t k, size_t size, std::string_view name) {
  require(n > 0 && k > 0, "matrix of layer ", quote(name), " must have positive shape, got [", n, ", ", k, "]");
  require(static_cast<uint64_t>(n) * static_cast<uint64_t>(k) == size, "matrix of layer ", quote(name), " has ",
          size, " values, expected ", n, " x ", k, " = ", n * k);
}

int64_t groups_per_row(int64_t k, int64_t group_size, std::string_view name, std::string_view what) {
  require(group_size > 0, what, " must be positive, got ", group_size, " for layer ", quote(name));
  require(k % group_size == 0, what, " ", group_size, " does not divide input size ", k, " of layer ", quote(name));
  return k / group_size;
}

}  // namespace qs::formats
