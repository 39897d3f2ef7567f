# Third-party dependencies, all from Debian 12 packages (scripts/install-deps.sh installs them).
# Every find is REQUIRED: a missing dependency should fail at configure time with the package
# name, not at link time.

find_package(Threads REQUIRED)
find_package(ZLIB REQUIRED)
find_package(Eigen3 3.4 REQUIRED NO_MODULE)
find_package(TBB REQUIRED)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(ONNX REQUIRED CONFIG)  # libonnx-dev: ONNX protobuf classes, checker, shape inference
find_package(CLI11 QUIET CONFIG)

if(NOT TARGET CLI11::CLI11)
  find_path(ESCALA_CLI11_INCLUDE CLI/CLI.hpp REQUIRED)
  add_library(CLI11::CLI11 INTERFACE IMPORTED)
  target_include_directories(CLI11::CLI11 INTERFACE "${ESCALA_CLI11_INCLUDE}")
endif()

find_path(ESCALA_FAST_FLOAT_INCLUDE fast_float/fast_float.h REQUIRED)
add_library(escala_fast_float INTERFACE)
target_include_directories(escala_fast_float SYSTEM INTERFACE "${ESCALA_FAST_FLOAT_INCLUDE}")

find_program(ESCALA_PROTOC protoc REQUIRED)
find_program(ESCALA_GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)
