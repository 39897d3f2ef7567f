#include "runtime_library.h"

#include <cstdlib>

namespace escala::gpu::internal {

void* OpenRuntimeLibrary(const char* env, const std::string& fallback, std::string_view hint,
                         std::string* path) {
  const char* value = std::getenv(env);
  *path = value != nullptr && *value != '\0' ? std::string(value) : fallback;
  void* handle = dlopen(path->c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    Throw(ErrorCode::kUnavailable, "cannot load {} ({}); {} or set {} to its path", *path,
          why != nullptr ? why : "not found", hint, env);
  }
  return handle;  // stays open for the life of the process
}

}  // namespace escala::gpu::internal
