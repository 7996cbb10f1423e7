# Warnings, -march=native and sanitizers, applied target by target.

if(RINGDP_NATIVE)
  add_compile_options(-march=native)
endif()

if(RINGDP_SANITIZE)
  if(NOT RINGDP_SANITIZE MATCHES "^(address|undefined|thread)$")
    message(FATAL_ERROR "RINGDP_SANITIZE must be address, undefined or thread (got '${RINGDP_SANITIZE}')")
  endif()
  add_compile_options(-fsanitize=${RINGDP_SANITIZE} -fno-omit-frame-pointer -g)
  add_link_options(-fsanitize=${RINGDP_SANITIZE})
  if(RINGDP_SANITIZE STREQUAL "undefined")
    add_compile_options(-fno-sanitize-recover=undefined)
  endif()
endif()

# ringdp_set_warnings(<target>): the project's warning set on one of its own targets.
function(ringdp_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
  if(RINGDP_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
