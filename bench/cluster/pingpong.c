/* Point-to-point latency and bandwidth between two MPI ranks, plus the local reduction
 * rate: the three constants of the alpha-beta-gamma cost model (bench/model.py fits them
 * from this program's CSV).
 *
 *   mpirun -np 2 ringdp-pingpong [--min-bytes 1] [--max-bytes 16M] [--seconds 0.3]
 *                                [--modes pingpong,exchange,ring,reduce] [--csv FILE]
 *
 * Modes, for each message size m (doubling):
 *   pingpong  rank 0 sends m bytes, rank 1 sends them back; one-way time = round trip / 2.
 *             Fitting t(m) = alpha + m * beta gives the latency alpha and the inverse
 *             bandwidth beta of one link direction.
 *   exchange  both ranks MPI_Sendrecv m bytes at once. On a full-duplex link this takes the
 *             same time as one direction; a ring allreduce depends on that (every rank sends
 *             to its right neighbour while receiving from its left one).
 *   ring      (any rank count) 2(n-1) consecutive steps in which every rank MPI_Sendrecv's
 *             m bytes to its right neighbour while receiving m bytes from its left one: the
 *             communication of an unpipelined ring allreduce of n*m bytes, without the
 *             reduction. Reported per step. On n emulated hosts every link carries m bytes
 *             each way per step, so the step time should stay m / B as n grows if the
 *             links, not the shared CPU, are the bottleneck.
 *   reduce    rank 0 adds two float arrays of m bytes (y += x), the work of one reduction
 *             step; time / m is gamma. Measured while the other rank idles, as in a ring
 *             step where the reduction follows the transfer.
 * Every point is timed per iteration on rank 0; the CSV holds the median and the minimum.
 * MPI only (no ringdp), so that the network can be calibrated before any collective exists.
 */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

/* "4096", "64K", "16M", "1G" (binary multiples); 0 on a malformed value. */
static size_t parse_bytes(const char* s) {
  char* end = NULL;
  const unsigned long long v = strtoull(s, &end, 10);
  if (end == s) return 0;
  unsigned long long mult = 1;
  if (*end == 'K' || *end == 'k') mult = 1ULL << 10, ++end;
  else if (*end == 'M' || *end == 'm') mult = 1ULL << 20, ++end;
  else if (*end == 'G' || *end == 'g') mult = 1ULL << 30, ++end;
  if (*end != '\0') return 0;
  return (size_t)(v * mult);
}

typedef struct {
  size_t min_bytes, max_bytes;
  double seconds; /* target time per point */
  const char* csv;
  const char* modes; /* comma-separated subset of the mode names */
} Options;

static int parse_options(int argc, char** argv, Options* o, char* err, size_t errlen) {
  o->min_bytes = 1;
  o->max_bytes = 16u << 20;
  o->seconds = 0.3;
  o->csv = NULL;
  o->modes = "pingpong,exchange,ring,reduce";
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (i + 1 >= argc) {
      snprintf(err, errlen, "option '%s' needs a value (or is unknown)", a);
      return 0;
    }
    const char* v = argv[++i];
    if (strcmp(a, "--min-bytes") == 0) {
      o->min_bytes = parse_bytes(v);
    } else if (strcmp(a, "--max-bytes") == 0) {
      o->max_bytes = parse_bytes(v);
    } else if (strcmp(a, "--seconds") == 0) {
      o->seconds = atof(v);
    } else if (strcmp(a, "--modes") == 0) {
      o->modes = v;
    } else if (strcmp(a, "--csv") == 0) {
      o->csv = v;
    } else {
      snprintf(err, errlen, "unknown option '%s'", a);
      return 0;
    }
  }
  if (o->min_bytes == 0 || o->max_bytes < o->min_bytes || o->max_bytes > (1u << 30)) {
    snprintf(err, errlen, "need 1 <= --min-bytes <= --max-bytes <= 1G");
    return 0;
  }
  if (!(o->seconds > 0.0 && o->seconds <= 60.0)) {
    snprintf(err, errlen, "--seconds must be in (0, 60]");
    return 0;
  }
  return 1;
}

enum Mode { kPingpong, kExchange, kRing, kReduce };
static const char* const kModeName[] = {"pingpong", "exchange", "ring", "reduce"};

/* Is `name` one of the comma-separated words of `list`? */
static int in_list(const char* list, const char* name) {
  const size_t len = strlen(name);
  for (const char* p = list; (p = strstr(p, name)) != NULL; p += len) {
    const int starts = p == list || p[-1] == ',';
    const int ends = p[len] == '\0' || p[len] == ',';
    if (starts && ends) return 1;
  }
  return 0;
}

/* One timed iteration of a mode; returns rank 0's elapsed seconds. Ranks beyond 1 take part
 * only in the ring. */
static double run_once(enum Mode mode, int rank, int size, char* sbuf, char* rbuf, size_t m) {
  const int count = (int)m; /* sizes are capped at 1 GiB, so this fits */
  double t0 = MPI_Wtime();
  if (mode == kPingpong) {
    if (rank == 0) {
      MPI_Send(sbuf, count, MPI_BYTE, 1, 0, MPI_COMM_WORLD);
      MPI_Recv(rbuf, count, MPI_BYTE, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    } else if (rank == 1) {
      MPI_Recv(rbuf, count, MPI_BYTE, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      MPI_Send(sbuf, count, MPI_BYTE, 0, 0, MPI_COMM_WORLD);
    }
    return (MPI_Wtime() - t0) / 2.0; /* one way */
  }
  if (mode == kExchange) {
    if (rank <= 1) {
      const int peer = 1 - rank;
      MPI_Sendrecv(sbuf, count, MPI_BYTE, peer, 1, rbuf, count, MPI_BYTE, peer, 1, MPI_COMM_WORLD,
                   MPI_STATUS_IGNORE);
    }
    return MPI_Wtime() - t0;
  }
  if (mode == kRing) {
    const int steps = 2 * (size - 1);
    for (int s = 0; s < steps; ++s)
      MPI_Sendrecv(sbuf, count, MPI_BYTE, (rank + 1) % size, 2, rbuf, count, MPI_BYTE,
                   (rank + size - 1) % size, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    /* Done when the slowest rank is; the barrier's cost is spread over the steps. */
    MPI_Barrier(MPI_COMM_WORLD);
    return (MPI_Wtime() - t0) / steps;
  }
  if (rank == 0) {
    float* y = (float*)rbuf;
    const float* x = (const float*)sbuf;
    const size_t n = m / sizeof(float);
    for (size_t i = 0; i < n; ++i) y[i] += x[i];
  }
  return MPI_Wtime() - t0;
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);

  Options opt;
  char err[256] = "";
  /* Every rank parses the same arguments, so every rank reaches the same verdict. */
  if (!parse_options(argc, argv, &opt, err, sizeof err) || size < 2) {
    if (rank == 0)
      fprintf(stderr, "ringdp-pingpong: error: %s\n",
              err[0] ? err : "needs at least 2 ranks (mpirun -np 2)");
    MPI_Finalize();
    return 2;
  }

  char host[MPI_MAX_PROCESSOR_NAME], peer_host[MPI_MAX_PROCESSOR_NAME];
  int len = 0;
  MPI_Get_processor_name(host, &len);
  if (rank == 1) MPI_Send(host, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, 0, 9, MPI_COMM_WORLD);
  if (rank == 0)
    MPI_Recv(peer_host, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, 1, 9, MPI_COMM_WORLD, MPI_STATUS_IGNORE);

  char* sbuf = malloc(opt.max_bytes);
  char* rbuf = malloc(opt.max_bytes);
  int ok = sbuf && rbuf;
  MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
  if (!ok) {
    if (rank == 0) fprintf(stderr, "ringdp-pingpong: error: cannot allocate 2 x %zu bytes\n", opt.max_bytes);
    MPI_Finalize();
    return 1;
  }
  /* Touch every page once so that no timed iteration pays for first-touch faults; values
   * are finite floats so the reduction runs at its normal speed. */
  for (size_t i = 0; i + sizeof(float) <= opt.max_bytes; i += sizeof(float)) {
    const float v = (float)(i % 1000) * 0.5f;
    memcpy(sbuf + i, &v, sizeof v);
    memcpy(rbuf + i, &v, sizeof v);
  }

  /* The CSV is written under a temporary name and renamed when complete, so a crashed run
   * never leaves a truncated file that looks finished. */
  FILE* csv = NULL;
  char csv_tmp[4096] = "";
  if (rank == 0) {
    printf("# ringdp-pingpong: %d ranks; rank 0 on %s, rank 1 on %s\n", size, host, peer_host);
    printf("%-9s %12s %7s %14s %14s %12s\n", "mode", "bytes", "iters", "time_us_med", "time_us_min",
           "MB/s_med");
    if (opt.csv) {
      snprintf(csv_tmp, sizeof csv_tmp, "%s.tmp", opt.csv);
      csv = fopen(csv_tmp, "w");
      if (!csv) fprintf(stderr, "ringdp-pingpong: warning: cannot write %s\n", opt.csv);
      else fprintf(csv, "mode,ranks,bytes,iters,time_us_median,time_us_min,mbytes_per_s,host0,host1\n");
    }
  }

  enum { kMaxIters = 1000 };
  double* times = malloc(sizeof(double) * kMaxIters);
  for (int mode = kPingpong; mode <= kReduce; ++mode) {
    if (!in_list(opt.modes, kModeName[mode])) continue;
    for (size_t m = opt.min_bytes; m <= opt.max_bytes; m *= 2) {
      if (mode == kReduce && m < sizeof(float)) continue;
      /* Warm-up once (connection set-up, caches), and use its time to choose how many
       * iterations fill the target time; rank 0 decides for both. */
      MPI_Barrier(MPI_COMM_WORLD);
      double first = run_once((enum Mode)mode, rank, size, sbuf, rbuf, m);
      const double per_iter = mode == kPingpong ? 2 * first : mode == kRing ? 2 * (size - 1) * first : first;
      int iters = per_iter > 0 ? (int)(opt.seconds / per_iter) : kMaxIters;
      if (iters < 3) iters = 3;
      if (iters > kMaxIters) iters = kMaxIters;
      MPI_Bcast(&iters, 1, MPI_INT, 0, MPI_COMM_WORLD);
      for (int it = 0; it < iters; ++it) {
        /* A barrier before each timed exchange so that both ranks start together. */
        if (mode == kExchange) MPI_Barrier(MPI_COMM_WORLD);
        times[it] = run_once((enum Mode)mode, rank, size, sbuf, rbuf, m);
      }
      if (rank == 0) {
        qsort(times, (size_t)iters, sizeof(double), cmp_double);
        const double med = iters % 2 ? times[iters / 2] : 0.5 * (times[iters / 2 - 1] + times[iters / 2]);
        const double mbps = (double)m / med / 1e6;
        printf("%-9s %12zu %7d %14.2f %14.2f %12.2f\n", kModeName[mode], m, iters, med * 1e6,
               times[0] * 1e6, mbps);
        fflush(stdout);
        if (csv)
          fprintf(csv, "%s,%d,%zu,%d,%.3f,%.3f,%.4f,%s,%s\n", kModeName[mode], size, m, iters, med * 1e6,
                  times[0] * 1e6, mbps, host, peer_host);
      }
      if (m > opt.max_bytes / 2) break; /* no overflow on the doubling */
    }
  }
  if (csv) {
    fclose(csv);
    if (rename(csv_tmp, opt.csv) != 0) fprintf(stderr, "ringdp-pingpong: warning: cannot rename %s\n", csv_tmp);
  }
  free(times);
  free(sbuf);
  free(rbuf);
  MPI_Finalize();
  return 0;
}
