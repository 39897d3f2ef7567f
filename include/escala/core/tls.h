// Transport security settings, one type for every gRPC endpoint escala runs or dials: the
// prediction server and its client (escala/serving) and a distributed job's coordinator and data
// plane (escala/distributed).
//
// With TLS on, a server presents cert_file/key_file and a client verifies it against ca_file.
// With `mutual` on, a server also demands a client certificate signed by ca_file, and a client
// presents cert_file/key_file.
//
// Thread-safety: a value.
#ifndef ESCALA_CORE_TLS_H_
#define ESCALA_CORE_TLS_H_

#include <string>

namespace escala {

struct TlsOptions {
  bool enabled = false;
  std::string ca_file;    // PEM CA bundle that signed the peers' certificates
  std::string cert_file;  // PEM certificate chain of this process
  std::string key_file;   // PEM private key of cert_file
  bool mutual = false;    // servers require, clients present, a certificate
  // Clients: the name checked against the server's certificate; empty: the host being dialled
  // (an IP address must then appear as an IP subjectAltName).
  std::string server_name;

  // ESCALA_TLS_CA, ESCALA_TLS_CERT, ESCALA_TLS_KEY, ESCALA_TLS_MUTUAL (0/1),
  // ESCALA_TLS_SERVER_NAME; enabled when ESCALA_TLS_CA or ESCALA_TLS_CERT is set.
  static TlsOptions FromEnvironment();
  // Throws kInvalidArgument for an incomplete configuration (a server needs cert and key, a
  // client needs a CA, mutual TLS needs all three). Nothing to check when TLS is off.
  void Validate(bool as_server) const;
};

}  // namespace escala

#endif  // ESCALA_CORE_TLS_H_
