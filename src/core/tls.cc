#include "escala/core/tls.h"

#include <cstdlib>

#include "escala/core/error.h"

namespace escala {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

}  // namespace

TlsOptions TlsOptions::FromEnvironment() {
  TlsOptions t;
  t.ca_file = Env("ESCALA_TLS_CA");
  t.cert_file = Env("ESCALA_TLS_CERT");
  t.key_file = Env("ESCALA_TLS_KEY");
  t.server_name = Env("ESCALA_TLS_SERVER_NAME");
  const std::string mutual = Env("ESCALA_TLS_MUTUAL");
  t.mutual = mutual == "1" || mutual == "true" || mutual == "yes";
  t.enabled = !t.ca_file.empty() || !t.cert_file.empty();
  return t;
}

void TlsOptions::Validate(bool as_server) const {
  if (!enabled) return;
  if (as_server || mutual) {
    ESCALA_CHECK(!cert_file.empty() && !key_file.empty(), kInvalidArgument,
                 "TLS: a {} needs a certificate and a key (--tls-cert, --tls-key)",
                 as_server ? "server" : "mutual-TLS client");
  }
  if (!as_server || mutual) {
    ESCALA_CHECK(!ca_file.empty(), kInvalidArgument,
                 "TLS: {} needs the CA that signed the peers' certificates (--tls-ca)",
                 as_server ? "mutual TLS" : "a client");
  }
}

}  // namespace escala
