// chaoslab-channel: make and inspect channel files (see channel_tool.h).
#include "agents/sensor/channel_tool.h"

int main(int argc, char** argv) { return chaoslab::content::ChannelToolMain(argc, argv); }
