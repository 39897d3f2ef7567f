# Install rules and the exported CMake package: after `cmake --install`, consumers write
#   find_package(escala CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE escala::escala)
include(CMakePackageConfigHelpers)

get_property(_escala_modules GLOBAL PROPERTY ESCALA_MODULES)
set(_escala_targets escala ${_escala_modules} escala_proto_rpc escala_proto_model escala_proto_distributed)
if(ESCALA_CUDA_ENABLED)
  list(APPEND _escala_targets escala_gpu)
endif()
list(REMOVE_DUPLICATES _escala_targets)

set_target_properties(escala_proto_rpc PROPERTIES EXPORT_NAME proto_rpc)
set_target_properties(escala_proto_model PROPERTIES EXPORT_NAME proto_model)
set_target_properties(escala_proto_distributed PROPERTIES EXPORT_NAME proto_distributed)

install(TARGETS ${_escala_targets} escala_fast_float
  EXPORT escalaTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/escala DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${ESCALA_GENERATED_INCLUDE_DIR}/escala/config.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/escala)

set(ESCALA_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/escala)
install(EXPORT escalaTargets NAMESPACE escala:: DESTINATION ${ESCALA_CMAKE_DIR})
configure_package_config_file(
  ${PROJECT_SOURCE_DIR}/cmake/escalaConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/escalaConfig.cmake
  INSTALL_DESTINATION ${ESCALA_CMAKE_DIR})
write_basic_package_version_file(
  ${CMAKE_CURRENT_BINARY_DIR}/escalaConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${CMAKE_CURRENT_BINARY_DIR}/escalaConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/escalaConfigVersion.cmake
  DESTINATION ${ESCALA_CMAKE_DIR})
