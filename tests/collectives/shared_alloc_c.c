/* ringdp_shared_alloc / ringdp_shared_free from C: memory in the node's shared window,
 * reduced with RINGDP_SHM (one node) or RINGDP_AUTO, next to an ordinary buffer; counts
 * that differ between ranks are RINGDP_ERROR_MISMATCH on every rank; bad arguments are
 * codes. Exits nonzero on every rank when anything was wrong. */
#include <mpi.h>
#include <ringdp/ringdp.h>
#include <stdio.h>
#include <stdlib.h>

enum { kCount = 300007 };

static long check(const float* data, int size) {
  long wrong = 0;
  /* Element i on rank r is (i % 1000) + r: the sum over ranks is exact in float. */
  for (int i = 0; i < kCount; ++i) {
    const float want = (float)(size * (i % 1000)) + (float)(size * (size - 1) / 2);
    if (data[i] != want) ++wrong;
  }
  return wrong;
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  ringdp_comm* comm = NULL;
  if (ringdp_comm_create(MPI_COMM_WORLD, &comm) != RINGDP_SUCCESS) MPI_Abort(MPI_COMM_WORLD, 1);
  long wrong = 0;

  float* shared = NULL;
  int rc = ringdp_shared_alloc(comm, kCount, RINGDP_FLOAT32, (void**)&shared);
  if (rc != RINGDP_SUCCESS || shared == NULL) {
    fprintf(stderr, "rank %d: ringdp_shared_alloc: %s\n", rank, ringdp_last_error());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  float* ordinary = malloc(kCount * sizeof *ordinary);
  if (ordinary == NULL) MPI_Abort(MPI_COMM_WORLD, 1);
  for (int algorithm = RINGDP_AUTO; algorithm <= RINGDP_HIERARCHICAL;
       algorithm += RINGDP_HIERARCHICAL) {
    for (int i = 0; i < kCount; ++i) shared[i] = ordinary[i] = (float)(i % 1000 + rank);
    if (ringdp_allreduce(comm, shared, kCount, RINGDP_FLOAT32, RINGDP_SUM,
                         (ringdp_algorithm)algorithm) != RINGDP_SUCCESS ||
        ringdp_allreduce(comm, ordinary, kCount, RINGDP_FLOAT32, RINGDP_SUM,
                         (ringdp_algorithm)algorithm) != RINGDP_SUCCESS) {
      fprintf(stderr, "rank %d: ringdp_allreduce: %s\n", rank, ringdp_last_error());
      wrong += kCount;
    } else {
      wrong += check(shared, size) + check(ordinary, size);
    }
  }

  /* Different counts: the same code on every rank, the handle still usable after. */
  if (size > 1) {
    void* odd = NULL;
    rc = ringdp_shared_alloc(comm, rank == size - 1 ? 11 : 10, RINGDP_INT64, &odd);
    if (rc != RINGDP_ERROR_MISMATCH || odd != NULL) {
      fprintf(stderr, "rank %d: differing counts gave %d, not RINGDP_ERROR_MISMATCH\n", rank, rc);
      ++wrong;
    }
  }
  void* data = NULL;
  if (ringdp_shared_alloc(comm, 5, (ringdp_datatype)42, &data) != RINGDP_ERROR_INVALID_ARGUMENT)
    ++wrong;
  if (ringdp_shared_alloc(comm, 5, RINGDP_INT32, NULL) != RINGDP_ERROR_NULL_ARGUMENT) ++wrong;
  if (ringdp_shared_free(ordinary) != RINGDP_ERROR_INVALID_ARGUMENT) ++wrong;
  if (ringdp_shared_free(NULL) != RINGDP_SUCCESS) ++wrong;
  if (ringdp_shared_free(shared) != RINGDP_SUCCESS) ++wrong;
  free(ordinary);
  ringdp_comm_free(comm);

  long total = 0;
  MPI_Allreduce(&wrong, &total, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0) printf("shared_alloc_c: %ld wrong\n", total);
  MPI_Finalize();
  return total == 0 ? 0 : 1;
}
