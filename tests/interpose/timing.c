/* Timing driver for the interposition threshold (not a test: speed is measured, never
 * asserted). Run it under LD_PRELOAD of libringdp_mpi.so with RINGDP_INTERPOSE_MIN_BYTES=0:
 * for each message size it alternates batches of MPI_Allreduce (served by ringdp) with
 * batches of PMPI_Allreduce (the MPI library's own entry point, which the interposer never
 * sees), in one process, so that both variants see the same machine noise. Prints, on
 * rank 0, the median and the minimum over rounds of the per-call time (the slowest
 * rank's, per batch).
 *
 * usage: interpose_timing [--min-bytes B] [--max-bytes B] [--rounds R] [--in-place]
 * (float MPI_SUM on MPI_COMM_WORLD; sizes double from min to max) */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*AllreduceFn)(const void*, void*, int, MPI_Datatype, MPI_Op, MPI_Comm);

static double batch_us(AllreduceFn fn, const float* send, float* recv, int count, int iters,
                       int in_place) {
  MPI_Barrier(MPI_COMM_WORLD);
  const double start = MPI_Wtime();
  for (int i = 0; i < iters; ++i) {
    fn(in_place ? MPI_IN_PLACE : (const void*)send, recv, count, MPI_FLOAT, MPI_SUM,
       MPI_COMM_WORLD);
  }
  double mine = (MPI_Wtime() - start) / iters * 1e6;
  double slowest = 0;
  MPI_Reduce(&mine, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
  MPI_Bcast(&slowest, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  return slowest;
}

static int compare(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

static double median(double* v, int n) {
  qsort(v, (size_t)n, sizeof *v, compare);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  long min_bytes = 8, max_bytes = 4L << 20;
  int rounds = 9, in_place = 0;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--min-bytes") == 0 && i + 1 < argc)
      min_bytes = atol(argv[++i]);
    else if (strcmp(argv[i], "--max-bytes") == 0 && i + 1 < argc)
      max_bytes = atol(argv[++i]);
    else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
      rounds = atoi(argv[++i]);
    else if (strcmp(argv[i], "--in-place") == 0)
      in_place = 1;
  }
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const long max_count = max_bytes / 4;
  float* send = malloc((size_t)max_count * sizeof(float));
  float* recv = malloc((size_t)max_count * sizeof(float));
  for (long i = 0; i < max_count; ++i) send[i] = recv[i] = (float)(i % 7);
  double* interposed = malloc((size_t)rounds * sizeof(double));
  double* direct = malloc((size_t)rounds * sizeof(double));
  if (rank == 0) {
    printf(
        "# %d ranks, float sum, %s, median of %d rounds; interposed = MPI_Allreduce "
        "(ringdp under the preload), mpi = PMPI_Allreduce\n",
        size, in_place ? "MPI_IN_PLACE" : "separate buffers", rounds);
    printf("%10s %10s %14s %12s %8s %14s %12s %8s\n", "bytes", "count", "interposed_us", "mpi_us",
           "ratio", "interposed_min", "mpi_min", "ratio");
  }
  for (long bytes = min_bytes; bytes <= max_bytes; bytes *= 2) {
    const int count = (int)(bytes / 4);
    long budget = (4L << 20) / bytes; /* about 4 MiB moved per batch, 4..400 calls */
    const int iters = (int)(budget < 4 ? 4 : budget > 400 ? 400 : budget);
    batch_us(MPI_Allreduce, send, recv, count, iters, in_place); /* warm-up both paths */
    batch_us(PMPI_Allreduce, send, recv, count, iters, in_place);
    for (int r = 0; r < rounds; ++r) {
      /* Alternate which goes first, so that neither always follows the other. */
      if (r % 2 == 0) {
        interposed[r] = batch_us(MPI_Allreduce, send, recv, count, iters, in_place);
        direct[r] = batch_us(PMPI_Allreduce, send, recv, count, iters, in_place);
      } else {
        direct[r] = batch_us(PMPI_Allreduce, send, recv, count, iters, in_place);
        interposed[r] = batch_us(MPI_Allreduce, send, recv, count, iters, in_place);
      }
    }
    const double a = median(interposed, rounds), b = median(direct, rounds);
    /* median() sorted the arrays: element 0 is the fastest round, the least disturbed by
     * other jobs on a shared machine. */
    const double a_min = interposed[0], b_min = direct[0];
    if (rank == 0) {
      printf("%10ld %10d %14.2f %12.2f %8.2f %14.2f %12.2f %8.2f\n", bytes, count, a, b, a / b,
             a_min, b_min, a_min / b_min);
    }
  }
  free(send);
  free(recv);
  free(interposed);
  free(direct);
  MPI_Finalize();
  return 0;
}
