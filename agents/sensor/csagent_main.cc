// csagent: the guest sensor binary (linked statically for the winsim guest).
#include <cstdio>
#include <string>
#include <vector>

#include "agents/sensor/agent.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
    std::fputs(chaoslab::content::AgentUsage().c_str(), stdout);
    return 0;
  }
  auto options = chaoslab::content::ParseAgentArgs(args);
  if (!options.ok()) {
    std::fprintf(stderr, "csagent: %s\n%s", options.status().message().c_str(),
                 chaoslab::content::AgentUsage().c_str());
    return chaoslab::content::kAgentExitUsage;
  }
  return chaoslab::content::RunAgent(*options);
}
