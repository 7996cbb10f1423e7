/* Averaging a buffer across ranks from C with ringdp's C API.
 *
 * Every rank fills a buffer with values that depend on its rank, averages it with
 * ringdp_allreduce, and checks the result against the average computed by hand. Exits
 * nonzero on any wrong element or error, on every rank. Run: mpirun -np 2 ringdp-allreduce-c */
#include <mpi.h>
#include <ringdp/ringdp.h>
#include <stdio.h>
#include <stdlib.h>

enum { kCount = 100003 }; /* a prime: chunks and segments do not divide it evenly */

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);

  ringdp_comm* comm = NULL;
  int rc = ringdp_comm_create(MPI_COMM_WORLD, &comm);
  if (rc != RINGDP_SUCCESS) {
    fprintf(stderr, "rank %d: ringdp_comm_create: %s\n", rank, ringdp_error_message(rc));
    MPI_Abort(MPI_COMM_WORLD, 1);
  }

  double* data = malloc(kCount * sizeof *data);
  if (data == NULL) MPI_Abort(MPI_COMM_WORLD, 1);
  /* Element i on rank r is i + r: the average over ranks is i + (size - 1) / 2, exact in
   * double for these magnitudes whatever order the sum takes. */
  for (int i = 0; i < kCount; ++i) data[i] = (double)i + (double)rank;

  long wrong = 0;
  rc = ringdp_allreduce(comm, data, kCount, RINGDP_FLOAT64, RINGDP_AVERAGE, RINGDP_RING);
  if (rc != RINGDP_SUCCESS) {
    fprintf(stderr, "rank %d: ringdp_allreduce: %s (%s)\n", rank, ringdp_error_message(rc),
            ringdp_last_error());
    wrong = kCount;
  } else {
    for (int i = 0; i < kCount; ++i) {
      if (data[i] != (double)i + (size - 1) / 2.0) ++wrong;
    }
  }

  /* Bad arguments come back as codes, not crashes. */
  if (ringdp_allreduce(NULL, data, kCount, RINGDP_FLOAT64, RINGDP_SUM, RINGDP_AUTO) !=
      RINGDP_ERROR_NULL_ARGUMENT)
    ++wrong;
  if (ringdp_allreduce(comm, NULL, 5, RINGDP_FLOAT64, RINGDP_SUM, RINGDP_AUTO) !=
      RINGDP_ERROR_NULL_ARGUMENT)
    ++wrong;
  if (ringdp_allreduce(comm, data, kCount, (ringdp_datatype)42, RINGDP_SUM, RINGDP_AUTO) !=
      RINGDP_ERROR_INVALID_ARGUMENT)
    ++wrong;
  if (ringdp_allreduce(comm, data, kCount, RINGDP_INT32, RINGDP_AVERAGE, RINGDP_AUTO) !=
      RINGDP_ERROR_INVALID_ARGUMENT)
    ++wrong;

  long total_wrong = 0;
  MPI_Allreduce(&wrong, &total_wrong, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0) {
    printf("averaged %d doubles over %d ranks with ringdp: %s (%ld wrong)\n", kCount, size,
           total_wrong == 0 ? "ok" : "WRONG", total_wrong);
  }
  free(data);
  ringdp_comm_free(comm);
  MPI_Finalize();
  return total_wrong == 0 ? 0 : 1;
}
