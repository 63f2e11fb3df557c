// csagent: the guest sensor binary (linked statically for the winsim guest). Installed as /init
// too: run as PID 1 under that name it is the guest's boot manager (boot_manager.h), which starts
// the sensor in a forked child. `--shape-link` installs the lab's network profile for the init
// script (link_shaper.h).
#include <unistd.h>

#include <string>
#include <string_view>
#include <vector>

#include "agents/sensor/agent.h"
#include "agents/sensor/boot_manager.h"
#include "agents/sensor/link_shaper.h"

int main(int argc, char** argv) {
  std::string_view name = argc > 0 ? argv[0] : "";
  name = name.substr(name.rfind('/') + 1);
  if (name == "init" && getpid() == 1) {
    chaoslab::content::RunBootManager(&chaoslab::content::AgentMain);
  }
  // The init script's way to the boot manager's link handling (link_shaper.h): shape eth0, and
  // draw this boot's link-up delay (printed in ms; 0 for a bad word, which --shape-link reports).
  if (argc == 4 && std::string_view(argv[1]) == "--shape-link") {
    return chaoslab::content::ShapeLinkMain(argv[2], argv[3]);
  }
  if (argc == 3 && std::string_view(argv[1]) == "--link-up-delay") {
    auto profile = chaoslab::content::ParseLinkWord(argv[2]);
    const std::string ms =
        std::to_string(profile.ok() ? chaoslab::content::DrawLinkUpDelay(*profile) : 0) + "\n";
    return write(STDOUT_FILENO, ms.data(), ms.size()) == static_cast<ssize_t>(ms.size()) ? 0 : 1;
  }
  return chaoslab::content::AgentMain(std::vector<std::string>(argv + 1, argv + argc));
}
