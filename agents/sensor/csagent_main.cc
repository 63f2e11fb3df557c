// csagent: the guest sensor binary (linked statically for the winsim guest). Installed as /init
// too: run as PID 1 under that name it is the guest's boot manager (boot_manager.h), which starts
// the sensor in a forked child.
#include <unistd.h>

#include <string>
#include <string_view>
#include <vector>

#include "agents/sensor/agent.h"
#include "agents/sensor/boot_manager.h"

int main(int argc, char** argv) {
  std::string_view name = argc > 0 ? argv[0] : "";
  name = name.substr(name.rfind('/') + 1);
  if (name == "init" && getpid() == 1) {
    chaoslab::content::RunBootManager(&chaoslab::content::AgentMain);
  }
  return chaoslab::content::AgentMain(std::vector<std::string>(argv + 1, argv + argc));
}
