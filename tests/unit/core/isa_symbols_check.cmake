# cmake -DNM=<nm> -DOBJECTS=<a.o;b.o> -P isa_symbols_check.cmake
#
# Fails when an object compiled for AVX2/AVX-512 (src/core/simd/kernels_<isa>.cc) defines a weak
# or unique symbol (an inline function, a template instance, a guard variable) whose name the
# rest of the program could also define: at link time one copy wins for every caller, and an AVX
# copy would crash baseline code on an older CPU. Allowed: names inside the renamed Eigen
# namespaces or escala::simd's per-ISA namespaces (unique to their object), and the personality
# routine's data reference, which holds no code.
if(NOT NM OR NOT OBJECTS)
  message(FATAL_ERROR "usage: cmake -DNM=<nm> -DOBJECTS=<objects> -P isa_symbols_check.cmake")
endif()
set(bad "")
foreach(obj IN LISTS OBJECTS)
  execute_process(COMMAND ${NM} -C --defined-only ${obj} OUTPUT_VARIABLE out RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${NM} failed on ${obj}")
  endif()
  string(REPLACE ";" "\\;" out "${out}")
  string(REPLACE "\n" ";" lines "${out}")
  set(weak 0)
  foreach(line IN LISTS lines)
    if(NOT line MATCHES "^[0-9a-fA-F]* +[WwVvu] +(.*)$")
      continue()
    endif()
    math(EXPR weak "${weak} + 1")
    set(name "${CMAKE_MATCH_1}")
    if(name MATCHES "EigenAvx2|EigenAvx512|escala::simd::avx2::|escala::simd::avx512::"
       OR name STREQUAL "DW.ref.__gxx_personality_v0")
      continue()
    endif()
    string(APPEND bad "  ${obj}: ${name}\n")
  endforeach()
  message(STATUS "${obj}: ${weak} weak symbols checked")
endforeach()
if(bad)
  message(FATAL_ERROR "weak symbols shared with baseline code:\n${bad}")
endif()
