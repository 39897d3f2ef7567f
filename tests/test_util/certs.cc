#include "test_util/certs.h"

#include "test_util/temp_dir.h"

namespace escala::testing {
namespace {

bool Run(const std::string& cmd, std::string* error) {
  std::string out;
  if (RunCommand(cmd, &out) != 0) {
    *error = cmd + ": " + out;
    return false;
  }
  return true;
}

bool MakeCa(const std::string& base, const std::string& name, std::string* error) {
  return Run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " +
                 base + ".key -out " + base + ".pem -days 2 -subj /CN=" + name,
             error);
}

bool MakeCert(const std::string& ca, const std::string& base, const std::string& ext,
              std::string* error) {
  return Run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " + base +
                 ".key -out " + base + ".csr -subj /CN=escala-worker",
             error) &&
         Run("openssl x509 -req -in " + base + ".csr -CA " + ca + ".pem -CAkey " + ca +
                 ".key -CAcreateserial -out " + base + ".pem -days 2 -extfile " + ext,
             error);
}

}  // namespace

bool GenerateTestCerts(const std::string& dir, TestCerts* certs, std::string* error,
                       const std::vector<std::string>& extra_ips) {
  if (RunCommand("openssl version") != 0) {
    *error = "openssl is not installed";
    return false;
  }
  std::string san = "subjectAltName=IP:127.0.0.1,DNS:localhost";
  for (const auto& ip : extra_ips) san += ",IP:" + ip;
  const std::string ext = dir + "/ext.cnf";
  WriteFile(ext, san +
                     "\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                     "extendedKeyUsage=serverAuth,clientAuth\n");
  if (!MakeCa(dir + "/ca", "escala-test-ca", error) ||
      !MakeCert(dir + "/ca", dir + "/node", ext, error) ||
      !MakeCa(dir + "/rogue-ca", "rogue-ca", error) ||
      !MakeCert(dir + "/rogue-ca", dir + "/rogue", ext, error)) {
    return false;
  }
  certs->ca = dir + "/ca.pem";
  certs->cert = dir + "/node.pem";
  certs->key = dir + "/node.key";
  certs->rogue_ca = dir + "/rogue-ca.pem";
  certs->rogue_cert = dir + "/rogue.pem";
  certs->rogue_key = dir + "/rogue.key";
  return true;
}

}  // namespace escala::testing
