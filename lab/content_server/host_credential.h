// How a guest's link proves which host it is to the content server (docs/GUEST-PROTOCOL.md).
//
// A real key escrow releases a recovery password only to a principal allowed to have it. In the
// lab every online host gets a credential of its own (KeyEscrow::IssueCredential), kept in a 0600
// file that only its chaoslab-relay reads; the guest never sees it. Before the guest's first byte,
// the relay sends one HTTP request of its own on the connection:
//   CHAOSLAB-RELAY / HTTP/1.1\r\nCredential: <hex>\r\n\r\n
// The server answers nothing to it and binds the connection to that host: /v1/escrow/key then
// answers only for that host (403 for any other, and for connections without a credential). A guest
// cannot forge it: whatever it sends comes after the relay's own, and a second one is refused. An
// unknown credential leaves the connection anonymous (no escrow access, everything else works).
#pragma once

#include <string>
#include <string_view>

namespace chaoslab {

inline constexpr std::string_view kRelayIdentifyMethod = "CHAOSLAB-RELAY";
inline constexpr std::string_view kRelayCredentialHeader = "Credential";

// The request the relay sends first on a connection, for `credential` (hex digits).
inline std::string RelayIdentifyRequest(std::string_view credential) {
  return std::string(kRelayIdentifyMethod) + " / HTTP/1.1\r\n" +
         std::string(kRelayCredentialHeader) + ": " + std::string(credential) + "\r\n\r\n";
}

}  // namespace chaoslab
