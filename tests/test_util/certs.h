// Test helper: TLS material generated at test time with the openssl command-line tool (a CA, a
// certificate for 127.0.0.1/localhost signed by it and usable as server and client certificate,
// and a second, unrelated CA with its own certificate). Tests skip when openssl is missing.
#ifndef ESCALA_TESTS_TEST_UTIL_CERTS_H_
#define ESCALA_TESTS_TEST_UTIL_CERTS_H_

#include <string>
#include <vector>

namespace escala::testing {

struct TestCerts {
  std::string ca;    // PEM files
  std::string cert;  // signed by ca; SAN IP:127.0.0.1, DNS:localhost and `extra_ips`
  std::string key;
  std::string rogue_ca;    // an unrelated CA
  std::string rogue_cert;  // signed by rogue_ca, same SANs
  std::string rogue_key;
};

// Writes the files into `dir`. Returns false (with the reason in *error) when openssl is not
// available or fails.
bool GenerateTestCerts(const std::string& dir, TestCerts* certs, std::string* error,
                       const std::vector<std::string>& extra_ips = {});

}  // namespace escala::testing

#endif  // ESCALA_TESTS_TEST_UTIL_CERTS_H_
