// The one rule for names that reach a file name, a libvirt domain name or a command line run as
// root: groups, hosts (group + "-NN"), sites, setups, runbooks, scenarios, services, images,
// rollout rings, mix archetypes, libvirt hypervisors and pins. The loaders apply it with
// file:line:column; the backends and `chaoslab run` apply it again before a name becomes a path
// (last line of defence).
//
// A name is 1 to 64 ASCII letters, digits, '-' and '_', starting with a letter or a digit: never a
// path separator, never "." or "..", never an option ("-x"), nothing a shell or QEMU's option
// syntax (',' '=') would read differently, nothing a URI or XML escapes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "lab/common/status.h"

namespace chaoslab {

inline constexpr size_t kMaxIdentifierLength = 64;

// Why `name` breaks the rule ("contains '/'", "is empty", ...); empty when it follows it.
std::string IdentifierProblem(std::string_view name);

// Ok, or InvalidArgument "<what> '<name>' <problem>; a name is ..." (`what`: "group name").
Status CheckIdentifier(std::string_view what, std::string_view name);

// The rule in one sentence, for messages and docs.
std::string_view IdentifierRule();

}  // namespace chaoslab
