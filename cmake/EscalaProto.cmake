# escala_add_proto_library(<target> ROOT <dir> PROTOS <files...> [GRPC])
#
# Generates C++ (and, with GRPC, gRPC service stubs) for the given .proto files, relative to
# ROOT, and builds them into a static library whose include directory is the generated root.
# Generated sources compile without the project's warning flags: they are not ours to fix.
function(escala_add_proto_library target)
  cmake_parse_arguments(ARG "GRPC" "ROOT" "PROTOS" ${ARGN})
  set(out_dir "${CMAKE_CURRENT_BINARY_DIR}/gen")
  file(MAKE_DIRECTORY "${out_dir}")
  set(srcs)
  set(hdrs)
  foreach(proto IN LISTS ARG_PROTOS)
    get_filename_component(dir "${proto}" DIRECTORY)
    get_filename_component(name "${proto}" NAME_WE)
    set(base "${out_dir}/${dir}/${name}")
    set(outputs "${base}.pb.cc" "${base}.pb.h")
    set(plugin_args)
    if(ARG_GRPC)
      list(APPEND outputs "${base}.grpc.pb.cc" "${base}.grpc.pb.h")
      set(plugin_args --grpc_out=${out_dir} --plugin=protoc-gen-grpc=${ESCALA_GRPC_CPP_PLUGIN})
    endif()
    add_custom_command(
      OUTPUT ${outputs}
      COMMAND ${ESCALA_PROTOC} --proto_path=${ARG_ROOT} --cpp_out=${out_dir} ${plugin_args}
              ${ARG_ROOT}/${proto}
      DEPENDS ${ARG_ROOT}/${proto} ${ESCALA_PROTOC}
      COMMENT "protoc ${proto}"
      VERBATIM)
    list(APPEND srcs "${base}.pb.cc")
    list(APPEND hdrs "${base}.pb.h")
    if(ARG_GRPC)
      list(APPEND srcs "${base}.grpc.pb.cc")
      list(APPEND hdrs "${base}.grpc.pb.h")
    endif()
  endforeach()
  add_library(${target} STATIC ${srcs} ${hdrs})
  target_include_directories(${target} SYSTEM PUBLIC
    $<BUILD_INTERFACE:${out_dir}>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/escala/proto>)
  target_link_libraries(${target} PUBLIC protobuf::libprotobuf)
  if(ARG_GRPC)
    target_link_libraries(${target} PUBLIC gRPC::grpc++)
  endif()
endfunction()
