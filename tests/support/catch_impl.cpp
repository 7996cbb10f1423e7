// Catch2's implementation and the session that runs it, apart from the MPI main
// (mpi_main.cpp), so that the sanitizer builds can compile the test framework without
// instrumentation (tests/CMakeLists.txt): it is not ringdp's code, and under
// AddressSanitizer plus UndefinedBehaviorSanitizer this one file took about three minutes
// of CPU time to compile, a tenth of the whole build. (Catch2 v2 declares Catch::Session
// only where its implementation is compiled, so the session is started here.)
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "catch_session.hpp"

int ringdp::test::run_catch_session(int argc, char** argv) {
  Catch::Session session;
  int result = session.applyCommandLine(argc, argv);
  if (result == 0) {
    // mpirun hands ranks a pseudo-terminal; colour codes would only clutter CTest's logs.
    session.configData().useColour = Catch::UseColour::No;
    result = session.run();
  }
  return result;
}
