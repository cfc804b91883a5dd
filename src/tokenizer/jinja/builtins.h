// Names of the filters and tests the engine implements (internal to the chat-template engine).
// The parser resolves names to these ids; anything else gets -1 and is refused, with its name
// and position, when a render reaches it.
#pragma once

#include <string_view>

namespace qs::jinja {

enum class Filter : int {
  kAbs,
  kAttr,
  kCapitalize,
  kCount,
  kDefault,
  kDictsort,
  kFirst,
  kFloat,
  kIndent,
  kInt,
  kItems,
  kJoin,
  kLast,
  kLength,
  kList,
  kLower,
  kMap,
  kMax,
  kMin,
  kReject,
  kRejectattr,
  kReplace,
  kReverse,
  kRound,
  kSelect,
  kSelectattr,
  kSort,
  kString,
  kSum,
  kTitle,
  kTojson,
  kTrim,
  kUnique,
  kUpper,
};

enum class Test : int {
  kDefined,
  kUndefined,
  kNone,
  kBoolean,
  kFalse,
  kTrue,
  kInteger,
  kFloat,
  kNumber,
  kString,
  kMapping,
  kIterable,
  kSequence,
  kCallable,
  kSameas,
  kEscaped,
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
  kIn,
  kOdd,
  kEven,
  kDivisibleby,
  kLower,
  kUpper,
};

int filter_id(std::string_view name);  // -1: not supported
int test_id(std::string_view name);    // -1: not supported

}  // namespace qs::jinja
