#pragma once
// The Catch2 session of the MPI test main (tests/support/mpi_main.cpp), defined in
// catch_impl.cpp next to Catch2's implementation.

namespace ringdp::test {

/// Runs the test cases selected by the command line on the calling rank, without colour
/// codes; returns Catch2's result (0 = every test passed on this rank). Call it once per
/// process, between MPI_Init and MPI_Finalize.
int run_catch_session(int argc, char** argv);

}  // namespace ringdp::test
