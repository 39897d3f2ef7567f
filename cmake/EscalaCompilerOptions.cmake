# Warning, sanitizer and architecture flags shared by every escala target.
#
# escala_set_target_options(<target>) applies them to one of the project's own targets, so that
# consumers who add escala as a subdirectory do not inherit -Werror or sanitizers.

find_program(ESCALA_CCACHE ccache)
if(ESCALA_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  message(STATUS "escala: using ccache (${ESCALA_CCACHE})")
  # Paths relative to the source tree and no working directory in the hash (even with -g): every
  # clone of the repository shares one cache (CI builds a fresh clone in a new folder).
  set(_escala_ccache env CCACHE_BASEDIR=${PROJECT_SOURCE_DIR} CCACHE_NOHASHDIR=1 ${ESCALA_CCACHE})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${_escala_ccache})
  set(CMAKE_CUDA_COMPILER_LAUNCHER ${_escala_ccache})
endif()

set(ESCALA_SANITIZE_FLAGS "")
if(ESCALA_SANITIZE)
  string(REPLACE ";" "," _escala_sanitizers "${ESCALA_SANITIZE}")
  set(ESCALA_SANITIZE_FLAGS -fsanitize=${_escala_sanitizers} -fno-omit-frame-pointer
                            -fno-sanitize-recover=undefined)
  # GCC 12 with sanitizers reports the self-initialised placeholder inside its own AVX-512
  # intrinsics (_mm512_undefined_ps, reached through Eigen) as "used uninitialized". The Release
  # build keeps -Wuninitialized; only sanitizer builds drop it.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    list(APPEND ESCALA_SANITIZE_FLAGS -Wno-uninitialized)
  endif()
  # ThreadSanitizer: Debian's protobuf, gRPC and abseil are built without it, and their headers
  # change class layouts when __SANITIZE_THREAD__ is defined (protobuf's MapFieldBase gains two
  # counters), so code compiled with it disagrees with the libraries about their objects and
  # corrupts memory. Undefined, the headers are what the libraries were built from; the
  # instrumentation comes from -fsanitize=thread, not from the macro.
  if("thread" IN_LIST ESCALA_SANITIZE)
    list(APPEND ESCALA_SANITIZE_FLAGS -U__SANITIZE_THREAD__)
  endif()
  message(STATUS "escala: sanitizers ${_escala_sanitizers}")
  # Sanitizers must also be on the link line of every executable, including tests.
  add_link_options(-fsanitize=${_escala_sanitizers})
endif()

# Architecture. The default is a portable x86-64 level (ESCALA_ARCH_BASELINE, x86-64-v2: SSE4.2 and
# POPCNT: Intel since Nehalem, 2008, AMD since Bulldozer, 2011), so that a binary built here runs on any
# node; the few hot kernels are compiled again for AVX2 and AVX-512 and chosen at run time
# (src/core/simd/). -march=native (ESCALA_NATIVE_ARCH) is an opt-in. Other architectures get the
# compiler's default. The CUDA host compiler gets the same flag, so that host code compiled by
# nvcc and by g++ agrees on the inline functions both instantiate.
set(ESCALA_X86_64 OFF)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64|x64)$")
  set(ESCALA_X86_64 ON)
endif()
set(ESCALA_ARCH_FLAGS "")
if(ESCALA_NATIVE_ARCH)
  set(ESCALA_ARCH_FLAGS -march=native)
  set(ESCALA_ARCH_BASELINE_NAME native)
elseif(ESCALA_X86_64 AND ESCALA_ARCH_BASELINE)
  set(ESCALA_ARCH_FLAGS -march=${ESCALA_ARCH_BASELINE})
  set(ESCALA_ARCH_BASELINE_NAME ${ESCALA_ARCH_BASELINE})
else()
  set(ESCALA_ARCH_BASELINE_NAME default)
endif()
# The AVX2 and AVX-512 kernel builds need GCC or Clang on x86-64 (for -march levels and
# __builtin_cpu_supports). Clang before 16 does not know the "x86-64-v3"/"-v4" names in
# __builtin_cpu_supports (Debian 12's clang 14, which scripts/fuzz.sh uses): baseline kernels only.
set(ESCALA_ISA_KERNELS OFF)
if(ESCALA_X86_64 AND (CMAKE_CXX_COMPILER_ID STREQUAL "GNU" OR
    (CMAKE_CXX_COMPILER_ID STREQUAL "Clang" AND CMAKE_CXX_COMPILER_VERSION VERSION_GREATER_EQUAL 16)))
  set(ESCALA_ISA_KERNELS ON)
endif()
set(ESCALA_ISA_KERNELS_01 0)
if(ESCALA_ISA_KERNELS)
  set(ESCALA_ISA_KERNELS_01 1)
endif()
message(STATUS "escala: CPU baseline ${ESCALA_ARCH_BASELINE_NAME}, run-time AVX2/AVX-512 kernels ${ESCALA_ISA_KERNELS}")

function(escala_set_target_options target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow=local -Wnon-virtual-dtor
                              -Wno-missing-field-initializers
                              # GCC 12 false positives: inside Eigen's AVX-512 kernels, and on
                              # std::string concatenation at -O3 (GCC bug 105329).
                              $<$<CXX_COMPILER_ID:GNU>:-Wno-maybe-uninitialized -Wno-restrict>>
    $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<BOOL:${ESCALA_WERROR}>>:-Werror>
    $<$<COMPILE_LANGUAGE:CXX>:${ESCALA_ARCH_FLAGS}>
    $<$<AND:$<COMPILE_LANGUAGE:CUDA>,$<BOOL:${ESCALA_ARCH_FLAGS}>>:-Xcompiler=${ESCALA_ARCH_FLAGS}>
    $<$<COMPILE_LANGUAGE:CXX>:${ESCALA_SANITIZE_FLAGS}>)
endfunction()
