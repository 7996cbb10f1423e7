/* Shared helpers of the interposition tests. Plain C against mpi.h only: these programs
 * stand for unmodified MPI codes and know nothing of ringdp.
 *
 * Every program checks its own answers (computed locally from a known function of rank
 * and index) and, given the options below, writes what an observer needs to compare
 * runs with and without the preloaded library:
 *   --expect FILE  rank 0 writes how many calls each rank made that the interposer's
 *                  documented rules say it serves (served_calls, served_bytes) and how
 *                  many it must pass to MPI (passed_calls), as "key value" lines;
 *   --hash FILE    rank 0 writes an FNV-1a hash of every result buffer, in call order.
 * The bookkeeping itself uses MPI_Reduce and MPI_Bcast, never MPI_Allreduce, so that it
 * does not change the counts it reports. */
#ifndef RINGDP_TESTS_INTERPOSE_HARNESS_H
#define RINGDP_TESTS_INTERPOSE_HARNESS_H

#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  int rank;
  int size;
  long failures;
  long long served_calls;
  long long served_bytes;
  long long passed_calls;
  uint64_t hash;
  const char* expect_path;
  const char* hash_path;
} Harness;

static inline void harness_init(Harness* h, int argc, char** argv) {
  memset(h, 0, sizeof *h);
  h->hash = 1469598103934665603ULL;
  MPI_Comm_rank(MPI_COMM_WORLD, &h->rank);
  MPI_Comm_size(MPI_COMM_WORLD, &h->size);
  for (int i = 1; i + 1 < argc; ++i) {
    if (strcmp(argv[i], "--expect") == 0)
      h->expect_path = argv[++i];
    else if (strcmp(argv[i], "--hash") == 0)
      h->hash_path = argv[++i];
  }
}

static inline void harness_hash(Harness* h, const void* data, size_t bytes) {
  const unsigned char* p = (const unsigned char*)data;
  for (size_t i = 0; i < bytes; ++i) {
    h->hash ^= p[i];
    h->hash *= 1099511628211ULL;
  }
}

/* Records a failed check on this rank (printed with the rank, so logs say who failed). */
static inline void harness_fail(Harness* h, const char* what) {
  if (h->failures < 20) fprintf(stderr, "rank %d: FAILED: %s\n", h->rank, what);
  h->failures++;
}

/* Collective over MPI_COMM_WORLD: writes the files, prints a summary on rank 0 and returns
 * the exit code, the same on every rank (non-zero when any rank failed a check). */
static inline int harness_finish(Harness* h, const char* program) {
  long total = 0;
  MPI_Reduce(&h->failures, &total, 1, MPI_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
  MPI_Bcast(&total, 1, MPI_LONG, 0, MPI_COMM_WORLD);
  if (h->rank == 0) {
    if (h->expect_path) {
      FILE* f = fopen(h->expect_path, "w");
      if (!f) {
        perror(h->expect_path);
        total++;
      } else {
        fprintf(f, "served_calls %lld\nserved_bytes %lld\npassed_calls %lld\n", h->served_calls,
                h->served_bytes, h->passed_calls);
        fclose(f);
      }
    }
    if (h->hash_path) {
      FILE* f = fopen(h->hash_path, "w");
      if (!f) {
        perror(h->hash_path);
        total++;
      } else {
        fprintf(f, "%016llx\n", (unsigned long long)h->hash);
        fclose(f);
      }
    }
    printf(
        "%s: %d ranks: %lld calls the interposer should serve, %lld it should pass; "
        "%ld failed checks\n",
        program, h->size, h->served_calls, h->passed_calls, total);
  }
  return total == 0 ? 0 : 1;
}

#endif
