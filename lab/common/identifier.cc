#include "lab/common/identifier.h"

#include <cstdio>

namespace chaoslab {
namespace {

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// `name` as it can be shown in one line of a message: bytes outside printable ASCII as \xNN.
std::string Printable(std::string_view name) {
  std::string out;
  for (char c : name) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7f) {
      out += c;
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", byte);
      out += hex;
    }
  }
  return out;
}

}  // namespace

std::string_view IdentifierRule() {
  return "a name is 1 to 64 letters, digits, '-' and '_', starting with a letter or a digit";
}

std::string IdentifierProblem(std::string_view name) {
  if (name.empty()) return "is empty";
  if (name.size() > kMaxIdentifierLength) {
    return "is " + std::to_string(name.size()) + " characters long";
  }
  if (!IsAlnum(name[0])) return "starts with '" + Printable(name.substr(0, 1)) + "'";
  for (char c : name) {
    if (!IsAlnum(c) && c != '-' && c != '_') return "contains '" + Printable({&c, 1}) + "'";
  }
  return "";
}

Status CheckIdentifier(std::string_view what, std::string_view name) {
  const std::string problem = IdentifierProblem(name);
  if (problem.empty()) return Status::Ok();
  return Status::InvalidArgument(std::string(what) + " '" + Printable(name) + "' " + problem +
                                 "; " + std::string(IdentifierRule()) +
                                 " (names become file names, domain names and arguments)");
}

}  // namespace chaoslab
