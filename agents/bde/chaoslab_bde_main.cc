// chaoslab-bde: encrypt, inspect, check and decrypt winsim system disks (see bde_tool.h).
#include <iostream>
#include <string>
#include <vector>

#include "agents/bde/bde_tool.h"

int main(int argc, char** argv) {
  return chaoslab::bde::BdeToolMain(std::vector<std::string>(argv + 1, argv + argc), std::cout,
                                    std::cerr);
}
