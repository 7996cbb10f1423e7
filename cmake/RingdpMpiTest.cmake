# ringdp_add_mpi_test(NAME <name> COMMAND <target-or-path> [args...]
#                     [RANKS 1 2 3 4] [TIMEOUT seconds] [WILL_FAIL]
#                     [ENVIRONMENT VAR=value ...] [LABELS ...])
#
# Registers one CTest test per rank count, named <name>.np<N>, each running
#   ${MPIEXEC_EXECUTABLE} -n N --oversubscribe ${MPIEXEC_PREFLAGS} <command> [args]
# with an explicit N (never the host's core count) and a timeout, so that a hang fails
# fast. Open MPI's run-as-root and oversubscription variables are set in the test's
# environment, and ranks yield when idle so that 5 ranks on 2 cores do not starve.
# The test fails when any rank fails: mpirun returns non-zero if one rank exits non-zero.

set(RINGDP_MPI_TEST_ENV
  OMPI_ALLOW_RUN_AS_ROOT=1
  OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  OMPI_MCA_rmaps_base_oversubscribe=1
  # Two MPI jobs run side by side (ctest -j2) on the cores: idle ranks must yield.
  OMPI_MCA_mpi_yield_when_idle=1
  # Shared-memory single copy needs ptrace rights that containers often lack; the
  # copy-in/copy-out path works everywhere and keeps the output free of warnings.
  OMPI_MCA_btl_vader_single_copy_mechanism=none
  CACHE INTERNAL "Environment of every MPI test")

set(RINGDP_DEFAULT_RANKS 1 2 3 4 CACHE STRING "Rank counts MPI tests run at by default")

function(ringdp_add_mpi_test)
  cmake_parse_arguments(T "WILL_FAIL" "NAME;TIMEOUT" "COMMAND;RANKS;ENVIRONMENT;LABELS" ${ARGN})
  if(NOT T_NAME OR NOT T_COMMAND)
    message(FATAL_ERROR "ringdp_add_mpi_test needs NAME and COMMAND")
  endif()
  if(NOT T_RANKS)
    set(T_RANKS ${RINGDP_DEFAULT_RANKS})
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  # Sanitized processes run several times slower (ThreadSanitizer 5-15 times), and more so
  # on a loaded machine. The timeout is there to catch a hang, not to measure speed: scale
  # it, so that a slow test that progresses still passes and a hang still fails.
  if(RINGDP_SANITIZE)
    math(EXPR T_TIMEOUT "${T_TIMEOUT} * 3")
  endif()
  list(POP_FRONT T_COMMAND exe)
  if(TARGET ${exe})
    set(exe $<TARGET_FILE:${exe}>)
  endif()
  foreach(n IN LISTS T_RANKS)
    set(test_name ${T_NAME}.np${n})
    add_test(NAME ${test_name}
             COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${n} --oversubscribe
                     ${MPIEXEC_PREFLAGS} ${exe} ${T_COMMAND} ${MPIEXEC_POSTFLAGS})
    set_tests_properties(${test_name} PROPERTIES
      TIMEOUT ${T_TIMEOUT}
      PROCESSORS ${n}
      ENVIRONMENT "${RINGDP_MPI_TEST_ENV};${T_ENVIRONMENT}"
      LABELS "mpi;${T_LABELS}")
    if(T_WILL_FAIL)
      set_tests_properties(${test_name} PROPERTIES WILL_FAIL TRUE)
    endif()
  endforeach()
endfunction()

# ringdp_add_mpmd_test(NAME <name> COMMAND <target-or-path> [args...]
#                      RANK_ENVIRONMENTS <VAR=value or ->... [ENVIRONMENT VAR=value ...]
#                      [TIMEOUT seconds] [LABELS ...])
#
# One test, <name>.np<N>, for ranks started with different environments: an MPMD launch of
# N = (number of RANK_ENVIRONMENTS) ranks, rank r with the r-th VAR=value added ("-": none),
#   ${MPIEXEC_EXECUTABLE} --oversubscribe -n 1 -x VAR=a ${MPIEXEC_PREFLAGS} <command> : \
#                                         -n 1 -x VAR=b ${MPIEXEC_PREFLAGS} <command> : ...
# (`-x VAR=value` is Open MPI's). ENVIRONMENT is every rank's; the rest as ringdp_add_mpi_test.
function(ringdp_add_mpmd_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "COMMAND;RANK_ENVIRONMENTS;ENVIRONMENT;LABELS" ${ARGN})
  if(NOT T_NAME OR NOT T_COMMAND OR NOT T_RANK_ENVIRONMENTS)
    message(FATAL_ERROR "ringdp_add_mpmd_test needs NAME, COMMAND and RANK_ENVIRONMENTS")
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  if(RINGDP_SANITIZE)
    math(EXPR T_TIMEOUT "${T_TIMEOUT} * 3")
  endif()
  list(POP_FRONT T_COMMAND exe)
  if(TARGET ${exe})
    set(exe $<TARGET_FILE:${exe}>)
  endif()
  set(command ${MPIEXEC_EXECUTABLE} --oversubscribe)
  set(separator)
  foreach(rank_env IN LISTS T_RANK_ENVIRONMENTS)
    list(APPEND command ${separator} ${MPIEXEC_NUMPROC_FLAG} 1)
    if(NOT rank_env STREQUAL "-")
      list(APPEND command -x ${rank_env})
    endif()
    list(APPEND command ${MPIEXEC_PREFLAGS} ${exe} ${T_COMMAND})
    set(separator :)
  endforeach()
  list(APPEND command ${MPIEXEC_POSTFLAGS})
  list(LENGTH T_RANK_ENVIRONMENTS n)
  add_test(NAME ${T_NAME}.np${n} COMMAND ${command})
  set_tests_properties(${T_NAME}.np${n} PROPERTIES
    TIMEOUT ${T_TIMEOUT}
    PROCESSORS ${n}
    ENVIRONMENT "${RINGDP_MPI_TEST_ENV};${T_ENVIRONMENT}"
    LABELS "mpi;${T_LABELS}")
endfunction()

# ringdp_add_catch_mpi_test(<name> SOURCES ... [RANKS ...] [TIMEOUT s] [LIBS ...] [...])
# Builds a Catch2 test executable with the MPI main (tests/support) and registers it.
function(ringdp_add_catch_mpi_test name)
  cmake_parse_arguments(T "WILL_FAIL" "TIMEOUT" "SOURCES;RANKS;LIBS;ARGS;ENVIRONMENT;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ringdp_test_main ringdp::ringdp ${T_LIBS})
  ringdp_set_warnings(${name})
  set(extra)
  if(T_WILL_FAIL)
    set(extra WILL_FAIL)
  endif()
  ringdp_add_mpi_test(NAME ${name} COMMAND ${name} ${T_ARGS}
                      RANKS ${T_RANKS} TIMEOUT ${T_TIMEOUT} ENVIRONMENT ${T_ENVIRONMENT}
                      LABELS ${T_LABELS} ${extra})
endfunction()
