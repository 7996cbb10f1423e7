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

# The timeout of an MPI test: `timeout` (default 120 s), scaled under a sanitizer.
# Sanitized processes run several times slower (ThreadSanitizer 5-15 times), and more so on a
# loaded machine. The timeout is there to catch a hang, not to measure speed: scale it, so
# that a slow test that progresses still passes and a hang still fails.
function(_ringdp_mpi_timeout out timeout)
  if(NOT timeout)
    set(timeout 120)
  endif()
  if(RINGDP_SANITIZE)
    math(EXPR timeout "${timeout} * 3")
  endif()
  set(${out} ${timeout} PARENT_SCOPE)
endfunction()

# Splits COMMAND into the executable (a target's file when it names a target) and its
# arguments.
function(_ringdp_split_command command exe_var args_var)
  list(POP_FRONT command exe)
  if(TARGET ${exe})
    set(exe $<TARGET_FILE:${exe}>)
  endif()
  set(${exe_var} ${exe} PARENT_SCOPE)
  set(${args_var} ${command} PARENT_SCOPE)
endfunction()

# The properties every MPI test has: its timeout, its rank count, the environment of
# RINGDP_MPI_TEST_ENV plus `environment`, and the label mpi.
function(_ringdp_mpi_test_properties test_name ranks timeout environment labels)
  set_tests_properties(${test_name} PROPERTIES
    TIMEOUT ${timeout}
    PROCESSORS ${ranks}
    ENVIRONMENT "${RINGDP_MPI_TEST_ENV};${environment}"
    LABELS "mpi;${labels}")
endfunction()

function(ringdp_add_mpi_test)
  cmake_parse_arguments(T "WILL_FAIL" "NAME;TIMEOUT" "COMMAND;RANKS;ENVIRONMENT;LABELS" ${ARGN})
  if(NOT T_NAME OR NOT T_COMMAND)
    message(FATAL_ERROR "ringdp_add_mpi_test needs NAME and COMMAND")
  endif()
  if(NOT T_RANKS)
    set(T_RANKS ${RINGDP_DEFAULT_RANKS})
  endif()
  _ringdp_mpi_timeout(T_TIMEOUT "${T_TIMEOUT}")
  _ringdp_split_command("${T_COMMAND}" exe T_COMMAND)
  foreach(n IN LISTS T_RANKS)
    set(test_name ${T_NAME}.np${n})
    add_test(NAME ${test_name}
             COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${n} --oversubscribe
                     ${MPIEXEC_PREFLAGS} ${exe} ${T_COMMAND} ${MPIEXEC_POSTFLAGS})
    _ringdp_mpi_test_properties(${test_name} ${n} ${T_TIMEOUT} "${T_ENVIRONMENT}" "${T_LABELS}")
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
  _ringdp_mpi_timeout(T_TIMEOUT "${T_TIMEOUT}")
  _ringdp_split_command("${T_COMMAND}" exe T_COMMAND)
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
  _ringdp_mpi_test_properties(${T_NAME}.np${n} ${n} ${T_TIMEOUT} "${T_ENVIRONMENT}" "${T_LABELS}")
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
