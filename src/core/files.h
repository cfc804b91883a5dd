// Small file helpers whose errors name the file.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace qs {

// Whole file as bytes. Throws qs::Error "PATH: cannot open: ..." on failure.
std::string read_file(const std::string& path);
// Whole file as UTF-8 text: refuses empty files (unless allow_empty) and invalid UTF-8,
// naming the byte offset of the first bad sequence.
std::string read_text_file(const std::string& path, bool allow_empty = false);
// Writes atomically (temp file + rename) so a crash never leaves a half-written result.
void write_file_atomic(const std::string& path, std::string_view bytes);
// Parses a JSON file; errors name the file and the parser's position.
nlohmann::json read_json_file(const std::string& path);
// Offset of the first invalid UTF-8 sequence, or npos when valid.
size_t find_invalid_utf8(std::string_view s);
bool file_exists(const std::string& path);
bool is_directory(const std::string& path);

}  // namespace qs
