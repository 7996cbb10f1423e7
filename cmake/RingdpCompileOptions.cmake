# Warnings, -march=native and sanitizers, applied target by target.

if(RINGDP_NATIVE)
  add_compile_options(-march=native)
endif()

# RINGDP_SANITIZE: one sanitizer, or a comma-separated list that the compiler accepts in
# one build ("address,undefined": one build and one test run instead of two). ThreadSanitizer
# cannot share a process with AddressSanitizer, so "thread" stands alone.
# RINGDP_SANITIZERS holds the same names as a CMake list, for tests that need to know.
set(RINGDP_SANITIZERS)
if(RINGDP_SANITIZE)
  string(REPLACE "," ";" RINGDP_SANITIZERS "${RINGDP_SANITIZE}")
  list(REMOVE_DUPLICATES RINGDP_SANITIZERS)
  foreach(s IN LISTS RINGDP_SANITIZERS)
    if(NOT s MATCHES "^(address|undefined|thread)$")
      message(FATAL_ERROR "RINGDP_SANITIZE must be address, undefined, thread or a comma-separated list of them, such as address,undefined (got '${RINGDP_SANITIZE}')")
    endif()
  endforeach()
  list(LENGTH RINGDP_SANITIZERS n)
  if("thread" IN_LIST RINGDP_SANITIZERS AND n GREATER 1)
    message(FATAL_ERROR "RINGDP_SANITIZE: thread cannot be combined with another sanitizer (got '${RINGDP_SANITIZE}')")
  endif()
  string(JOIN "," sanitize_flag ${RINGDP_SANITIZERS})
  add_compile_options(-fsanitize=${sanitize_flag} -fno-omit-frame-pointer)
  # Reports need file and line numbers: line tables (-g1) unless the build type asks for
  # debug information itself (Debug, RelWithDebInfo, or flags given on the command line).
  string(TOUPPER "${CMAKE_BUILD_TYPE}" build_type)
  if(NOT " ${CMAKE_CXX_FLAGS} ${CMAKE_CXX_FLAGS_${build_type}} " MATCHES " -g")
    add_compile_options(-g1)
  endif()
  add_link_options(-fsanitize=${sanitize_flag})
  if("undefined" IN_LIST RINGDP_SANITIZERS)
    add_compile_options(-fno-sanitize-recover=undefined)
  endif()
endif()

# ringdp_set_warnings(<target>): the project's warning set on one of its own targets.
function(ringdp_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
  # GCC 12 reports 'may be used uninitialized' inside its own AVX-512 intrinsics when Eigen's
  # packet code is inlined with -march=native on an AVX-512 CPU (the intrinsics start from
  # _mm512_undefined_*; GCC bug 105593, fixed in GCC 13): about 300 false reports per build,
  # which fail a -Werror build on such a machine. Off for GCC 12 and older, C++ only.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wno-maybe-uninitialized>)
  endif()
  if(RINGDP_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
