// JSON text for anything that can carry guest or user bytes (console lines, stop codes, what people
// type): nlohmann's dump throws on invalid UTF-8, which would stop whatever printed it. Here
// invalid sequences become U+FFFD instead, so a misbehaving guest or a cut string costs one
// character.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace chaoslab {

// `value` as JSON text (compact when indent < 0), invalid UTF-8 replaced; never throws on content.
inline std::string JsonText(const nlohmann::json& value, int indent = -1) {
  return value.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The longest prefix of `text` of at most `max_bytes` that does not end inside a UTF-8 character.
std::string_view Utf8Prefix(std::string_view text, size_t max_bytes);

}  // namespace chaoslab
