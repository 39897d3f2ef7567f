// Transport security for every connection of a distributed job: coordinator and data plane.
//
// With TLS on, every server (the coordinator and each worker's data-plane endpoint) presents
// cert_file/key_file and every client verifies it against ca_file. With `mutual` on, servers also
// demand a client certificate signed by ca_file, and clients present cert_file/key_file: only
// holders of a certificate from the job's CA can connect at all. The job token (JobAuth) is checked
// in both modes and without TLS.
//
// Thread-safety: a value.
#ifndef ESCALA_DIST_TLS_H_
#define ESCALA_DIST_TLS_H_

#include <string>

namespace escala::distributed {

struct TlsOptions {
  bool enabled = false;
  std::string ca_file;    // PEM CA bundle that signed the peers' certificates
  std::string cert_file;  // PEM certificate chain of this process
  std::string key_file;   // PEM private key of cert_file
  bool mutual = false;    // require and present client certificates
  // The name checked against server certificates; empty: the host being dialled (an IP address
  // must then appear as an IP subjectAltName).
  std::string server_name;

  // ESCALA_TLS_CA, ESCALA_TLS_CERT, ESCALA_TLS_KEY, ESCALA_TLS_MUTUAL (0/1),
  // ESCALA_TLS_SERVER_NAME; enabled when ESCALA_TLS_CA or ESCALA_TLS_CERT is set.
  static TlsOptions FromEnvironment();
  // Throws kInvalidArgument for an incomplete configuration (a server needs cert and key, a
  // client needs a CA, mutual TLS needs all three).
  void Validate(bool as_server) const;
};

}  // namespace escala::distributed

#endif  // ESCALA_DIST_TLS_H_
