// The C API's entry points for callers that pass their MPI communicator on every call (the
// Fortran module uses them): ringdp_allreduce_comm(_f) against MPI_Allreduce, its argument
// errors, algorithm names, and the copy of an error's text.

#include <mpi.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "mpi_test.hpp"
#include "ringdp/ringdp.h"

using ringdp::test::all_ranks;

TEST_CASE("ringdp_allreduce_comm reduces on the cached duplicate like MPI_Allreduce") {
  const int rank = ringdp::test::world_rank();
  std::vector<std::int64_t> data(1031), expected(1031);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::int64_t>(i) * (rank + 1);
  MPI_Allreduce(data.data(), expected.data(), static_cast<int>(data.size()), MPI_INT64_T, MPI_SUM,
                MPI_COMM_WORLD);
  std::vector<std::int64_t> c_form = data, fortran_form = data;
  const int a = ringdp_allreduce_comm(MPI_COMM_WORLD, c_form.data(), c_form.size(), RINGDP_INT64,
                                      RINGDP_SUM, RINGDP_RING);
  const int b = ringdp_allreduce_comm_f(MPI_Comm_c2f(MPI_COMM_WORLD), fortran_form.data(),
                                        fortran_form.size(), RINGDP_INT64, RINGDP_SUM, RINGDP_AUTO);
  CHECK(all_ranks(a == RINGDP_SUCCESS && b == RINGDP_SUCCESS));
  CHECK(all_ranks(c_form == expected && fortran_form == expected));
}

TEST_CASE("ringdp_allreduce_comm turns bad arguments into codes before communicating") {
  float x[3] = {1, 2, 3};
  int code = ringdp_allreduce_comm(MPI_COMM_NULL, x, 3, RINGDP_FLOAT32, RINGDP_SUM, RINGDP_AUTO);
  CHECK(all_ranks(code == RINGDP_ERROR_INVALID_ARGUMENT &&
                  std::string(ringdp_last_error()).find("MPI_COMM_NULL") != std::string::npos));
  code = ringdp_allreduce_comm_f(MPI_Comm_c2f(MPI_COMM_NULL), x, 3, RINGDP_FLOAT32, RINGDP_SUM,
                                 RINGDP_AUTO);
  CHECK(all_ranks(code == RINGDP_ERROR_INVALID_ARGUMENT));
  // A Fortran handle of a freed communicator names nothing (Open MPI's MPI_Comm_f2c gives
  // a null handle): an error code, where MPI would abort the job.
  MPI_Comm freed = MPI_COMM_NULL;
  MPI_Comm_dup(MPI_COMM_WORLD, &freed);
  const MPI_Fint stale = MPI_Comm_c2f(freed);
  MPI_Comm_free(&freed);
  code = ringdp_allreduce_comm_f(stale, x, 3, RINGDP_FLOAT32, RINGDP_SUM, RINGDP_AUTO);
  ringdp_comm* handle = nullptr;
  const int create = ringdp_comm_create_f(stale, &handle);
  CHECK(all_ranks(code == RINGDP_ERROR_INVALID_ARGUMENT &&
                  create == RINGDP_ERROR_INVALID_ARGUMENT && handle == nullptr));
  code = ringdp_allreduce_comm(MPI_COMM_WORLD, nullptr, 3, RINGDP_FLOAT32, RINGDP_SUM, RINGDP_AUTO);
  CHECK(all_ranks(code == RINGDP_ERROR_NULL_ARGUMENT));
  code = ringdp_allreduce_comm(MPI_COMM_WORLD, x, 3, RINGDP_INT32, RINGDP_AVERAGE, RINGDP_AUTO);
  CHECK(all_ranks(code == RINGDP_ERROR_INVALID_ARGUMENT));
  CHECK(all_ranks(x[0] == 1 && x[1] == 2 && x[2] == 3));
}

TEST_CASE("ringdp_allreduce_comm takes RINGDP_SHM and RINGDP_HIERARCHICAL") {
  // Every rank of the test's launch is on this machine: shm applies, and hier is shm on
  // one node (or shm inside RINGDP_NODE_SIZE's nodes and a ring between them).
  const int rank = ringdp::test::world_rank();
  std::vector<std::int64_t> data(1031), expected(1031);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::int64_t>(i) - 7 * rank;
  MPI_Allreduce(data.data(), expected.data(), static_cast<int>(data.size()), MPI_INT64_T, MPI_MAX,
                MPI_COMM_WORLD);
  bool ok = true;
  for (const ringdp_algorithm algorithm : {RINGDP_SHM, RINGDP_HIERARCHICAL}) {
    std::vector<std::int64_t> x = data;
    ok = ok && ringdp_allreduce_comm(MPI_COMM_WORLD, x.data(), x.size(), RINGDP_INT64, RINGDP_MAX,
                                     algorithm) == RINGDP_SUCCESS &&
         x == expected;
  }
  CHECK(all_ranks(ok));
}

TEST_CASE("ringdp_algorithm_from_name takes RINGDP_ALGORITHM's names") {
  const struct {
    const char* name;
    ringdp_algorithm algorithm;
  } names[] = {{"auto", RINGDP_AUTO},
               {"ring", RINGDP_RING},
               {"rd", RINGDP_RECURSIVE_DOUBLING},
               {"recursive-doubling", RINGDP_RECURSIVE_DOUBLING},
               {"mpi", RINGDP_MPI},
               {"ps", RINGDP_PARAMETER_SERVER},
               {"parameter-server", RINGDP_PARAMETER_SERVER},
               {"shm", RINGDP_SHM},
               {"hier", RINGDP_HIERARCHICAL},
               {"hierarchical", RINGDP_HIERARCHICAL}};
  bool ok = true;
  for (const auto& n : names) {
    ringdp_algorithm out = RINGDP_AUTO;
    ok = ok && ringdp_algorithm_from_name(n.name, &out) == RINGDP_SUCCESS && out == n.algorithm;
  }
  CHECK(all_ranks(ok));
  ringdp_algorithm out = RINGDP_RING;
  CHECK(all_ranks(ringdp_algorithm_from_name("Ring", &out) == RINGDP_ERROR_INVALID_ARGUMENT &&
                  out == RINGDP_RING &&
                  std::string(ringdp_last_error()).find("'Ring'") != std::string::npos));
  CHECK(all_ranks(ringdp_algorithm_from_name(nullptr, &out) == RINGDP_ERROR_NULL_ARGUMENT));
}

TEST_CASE("ringdp_error_string copies the last failure's message, cut to the buffer") {
  float x = 1;
  const int code = ringdp_allreduce_comm(MPI_COMM_WORLD, &x, 1, RINGDP_FLOAT32,
                                         static_cast<ringdp_op>(9), RINGDP_AUTO);
  const std::string full = ringdp_last_error();
  char buffer[256];
  std::memset(buffer, 'x', sizeof buffer);
  const std::size_t length = ringdp_error_string(code, buffer, sizeof buffer);
  CHECK(all_ranks(code == RINGDP_ERROR_INVALID_ARGUMENT && length == full.size() &&
                  full == buffer && full.find("unknown ringdp_op 9") != std::string::npos));
  // Cut: 9 characters and the NUL; nothing at all with size 0.
  char small[10];
  std::memset(small, 'x', sizeof small);
  CHECK(all_ranks(ringdp_error_string(code, small, sizeof small) == full.size() &&
                  full.substr(0, 9) == small));
  CHECK(all_ranks(ringdp_error_string(code, nullptr, 0) == full.size()));
  // Another code: its short description. The last failure stays.
  CHECK(all_ranks(ringdp_error_string(RINGDP_ERROR_IO, buffer, sizeof buffer) ==
                      std::strlen(ringdp_error_message(RINGDP_ERROR_IO)) &&
                  std::string(buffer) == ringdp_error_message(RINGDP_ERROR_IO) &&
                  full == ringdp_last_error()));
}
