/* An unmodified MPI program: MPI_Allreduce with MPI_SUM, MPI_PROD, MPI_MIN and MPI_MAX on
 * every predefined 4- and 8-byte number type (C, and the common Fortran ones), in place and with
 * separate buffers, at several counts. Each rank's input is a known function of (rank, index, op),
 * so every rank computes the exact answer itself and compares bit for bit; values are small
 * integers (scaled by powers of two for the 8-byte types, to use the high bits), so that
 * floating-point sums and products are exact in any order. It also checks that the send
 * buffer is left untouched.
 *
 * Options: --expect FILE, --hash FILE (see harness.h); --min-bytes N, the threshold the
 * interposer runs with (RINGDP_INTERPOSE_MIN_BYTES), so that the expectation names the
 * calls that its rules serve: SUM/PROD/MIN/MAX on floating and signed types, SUM/PROD on
 * unsigned ones, of at least N bytes. */
#include "harness.h"

enum Kind { kFloating, kSigned, kUnsigned };
enum Op { kSum, kProd, kMin, kMax, kOps };

typedef struct {
  MPI_Datatype type;
  const char* name;
  enum Kind kind;
  int size; /* sizeof the C type */
} TypeCase;

/* The value rank r contributes at index i for operation op; `wide` for 8-byte types.
 * Sums: -5..5, products: -1, 1 or 2 (one rank's scaled by 2^35 when wide), min/max:
 * -8..8; wide values are scaled by 2^40 (plus the rank) to exercise the upper bits. */
static int64_t int_value(int r, long i, int op, int wide) {
  switch (op) {
    case kSum: {
      int64_t v = (int64_t)((r * 7 + i * 3) % 11) - 5;
      return wide ? v * ((int64_t)1 << 40) + (r + i) % 3 : v;
    }
    case kProd: {
      int64_t v = (r + i) % 3 == 0 ? -1 : 1 + (r + i) % 2;
      return wide && r == 0 ? v * ((int64_t)1 << 35) : v;
    }
    default: {
      int64_t v = (int64_t)((r * 13 + i * 5) % 17) - 8;
      return wide ? v * ((int64_t)1 << 40) + r : v;
    }
  }
}

static double float_value(int r, long i, int op, int wide) {
  if (op == kProd) return (double)int_value(r, i, op, wide);
  /* float: integers up to 2^13, exact; double: up to 2^45, exact. */
  int64_t v = int_value(r, i, op, 0);
  return wide ? (double)v * 1099511627776.0 + r : (double)v * 1024.0 + r;
}

/* Fills buf with rank r's contribution, for the storage given by kind and size. */
static void fill(void* buf, const TypeCase* t, int r, long n, int op) {
  const int wide = t->size == 8;
  for (long i = 0; i < n; ++i) {
    if (t->kind == kFloating) {
      if (wide)
        ((double*)buf)[i] = float_value(r, i, op, 1);
      else
        ((float*)buf)[i] = (float)float_value(r, i, op, 0);
    } else if (t->kind == kSigned) {
      if (wide)
        ((int64_t*)buf)[i] = int_value(r, i, op, 1);
      else
        ((int32_t*)buf)[i] = (int32_t)int_value(r, i, op, 0);
    } else {
      /* Negative values wrap to large unsigned ones: sums and products wrap too. */
      if (wide)
        ((uint64_t*)buf)[i] = (uint64_t)int_value(r, i, op, 1);
      else
        ((uint32_t*)buf)[i] = (uint32_t)int_value(r, i, op, 0);
    }
  }
}

#define COMBINE(CT, acc, v, op)    \
  do {                             \
    CT a_ = (acc), b_ = (v);       \
    switch (op) {                  \
      case kSum:                   \
        (acc) = (CT)(a_ + b_);     \
        break;                     \
      case kProd:                  \
        (acc) = (CT)(a_ * b_);     \
        break;                     \
      case kMin:                   \
        (acc) = b_ < a_ ? b_ : a_; \
        break;                     \
      default:                     \
        (acc) = a_ < b_ ? b_ : a_; \
        break;                     \
    }                              \
  } while (0)

#define EXPECT_LOOP(CT)                                             \
  do {                                                              \
    CT* out = (CT*)expected;                                        \
    CT* tmp = (CT*)scratch;                                         \
    fill(out, t, 0, n, op);                                         \
    for (int r = 1; r < size; ++r) {                                \
      fill(tmp, t, r, n, op);                                       \
      for (long i = 0; i < n; ++i) COMBINE(CT, out[i], tmp[i], op); \
    }                                                               \
  } while (0)

/* The exact reduction over all ranks, computed locally in the type's own arithmetic
 * (unsigned arithmetic wraps, as MPI's does). */
static void compute_expected(void* expected, void* scratch, const TypeCase* t, int size, long n,
                             int op) {
  if (t->kind == kFloating) {
    if (t->size == 8)
      EXPECT_LOOP(double);
    else
      EXPECT_LOOP(float);
  } else if (t->kind == kSigned) {
    /* Sums and products stay far inside the range: no overflow. */
    if (t->size == 8)
      EXPECT_LOOP(int64_t);
    else
      EXPECT_LOOP(int32_t);
  } else {
    if (t->size == 8)
      EXPECT_LOOP(uint64_t);
    else
      EXPECT_LOOP(uint32_t);
  }
}

/* True when MPI's MIN and MAX on integer type t order values as the standard says (signed
 * or unsigned), asked locally with MPI_Reduce_local. Open MPI 4.1.4 gets MPI_OFFSET
 * (orders it unsigned) and MPI_UNSIGNED_LONG (orders it signed) wrong; their MIN/MAX cases
 * are left out here, where answers are checked against the standard, and covered in
 * passthrough.c, where they are checked against PMPI_Allreduce. */
static int mpi_min_max_conforms(const TypeCase* t) {
  if (t->kind == kFloating) return 1;
  /* minus_one and one in the type's width (little or big endian alike) */
  char minus_one[8], one[8], low[8], high[8];
  if (t->size == 4) {
    const int32_t m = -1, p = 1;
    memcpy(minus_one, &m, 4), memcpy(one, &p, 4);
  } else {
    const int64_t m = -1, p = 1;
    memcpy(minus_one, &m, 8), memcpy(one, &p, 8);
  }
  memcpy(low, one, 8), memcpy(high, minus_one, 8);
  MPI_Reduce_local(minus_one, low, 1, t->type, MPI_MIN); /* low = min(-1, 1) */
  MPI_Reduce_local(one, high, 1, t->type, MPI_MAX);      /* high = max(1, -1) */
  const size_t n = (size_t)t->size;
  const int signed_order = memcmp(low, minus_one, n) == 0 && memcmp(high, one, n) == 0;
  return t->kind == kSigned ? signed_order : !signed_order;
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  Harness h;
  harness_init(&h, argc, argv);
  long long min_bytes = 0;
  for (int i = 1; i + 1 < argc; ++i) {
    if (strcmp(argv[i], "--min-bytes") == 0) min_bytes = atoll(argv[i + 1]);
  }

  const TypeCase types[] = {
      {MPI_FLOAT, "MPI_FLOAT", kFloating, (int)sizeof(float)},
      {MPI_DOUBLE, "MPI_DOUBLE", kFloating, (int)sizeof(double)},
      {MPI_INT, "MPI_INT", kSigned, (int)sizeof(int)},
      {MPI_LONG, "MPI_LONG", kSigned, (int)sizeof(long)},
      {MPI_LONG_LONG, "MPI_LONG_LONG", kSigned, (int)sizeof(long long)},
      {MPI_INT32_T, "MPI_INT32_T", kSigned, (int)sizeof(int32_t)},
      {MPI_INT64_T, "MPI_INT64_T", kSigned, (int)sizeof(int64_t)},
      {MPI_AINT, "MPI_AINT", kSigned, (int)sizeof(MPI_Aint)},
      {MPI_OFFSET, "MPI_OFFSET", kSigned, (int)sizeof(MPI_Offset)},
      {MPI_COUNT, "MPI_COUNT", kSigned, (int)sizeof(MPI_Count)},
      {MPI_UNSIGNED, "MPI_UNSIGNED", kUnsigned, (int)sizeof(unsigned)},
      {MPI_UNSIGNED_LONG, "MPI_UNSIGNED_LONG", kUnsigned, (int)sizeof(unsigned long)},
      {MPI_UNSIGNED_LONG_LONG, "MPI_UNSIGNED_LONG_LONG", kUnsigned,
       (int)sizeof(unsigned long long)},
      {MPI_UINT32_T, "MPI_UINT32_T", kUnsigned, (int)sizeof(uint32_t)},
      {MPI_UINT64_T, "MPI_UINT64_T", kUnsigned, (int)sizeof(uint64_t)},
      /* Fortran types, valid in C too, served when MPI gives them the C sizes below
       * (REAL and INTEGER are 4 bytes unless the Fortran compiler was told otherwise). */
      {MPI_REAL, "MPI_REAL", kFloating, 4},
      {MPI_DOUBLE_PRECISION, "MPI_DOUBLE_PRECISION", kFloating, 8},
      {MPI_INTEGER, "MPI_INTEGER", kSigned, 4},
      {MPI_INTEGER8, "MPI_INTEGER8", kSigned, 8},
  };
  const size_t first_fortran = 15;
  const MPI_Op ops[kOps] = {MPI_SUM, MPI_PROD, MPI_MIN, MPI_MAX};
  const char* op_names[kOps] = {"MPI_SUM", "MPI_PROD", "MPI_MIN", "MPI_MAX"};
  /* 1 and 3 (fewer elements than ranks), 1000, 3000 (12 KB for 4-byte types, 24 KB for
   * 8-byte ones: on either side of the default threshold of 16 KiB), and 20011 (prime;
   * 80-160 KB, where ringdp runs its ring at two ranks and more). */
  const long counts[] = {1, 3, 1000, 3000, 20011};
  const long max_count = 20011;

  char* send = malloc(max_count * 8);
  char* recv = malloc(max_count * 8);
  char* original = malloc(max_count * 8);
  char* expected = malloc(max_count * 8);
  char* scratch = malloc(max_count * 8);
  char what[256];

  for (size_t t = 0; t < sizeof types / sizeof types[0]; ++t) {
    const TypeCase* tc = &types[t];
    int mpi_size = 0;
    MPI_Type_size(tc->type, &mpi_size);
    if (t >= first_fortran && mpi_size != tc->size) {
      /* An MPI built without Fortran, or with other Fortran kinds: not this test's case. */
      if (h.rank == 0) printf("served_types: note: %s has size %d; skipped\n", tc->name, mpi_size);
      continue;
    }
    if (mpi_size != tc->size || (tc->size != 4 && tc->size != 8)) {
      snprintf(what, sizeof what, "%s: MPI_Type_size %d, sizeof %d", tc->name, mpi_size, tc->size);
      harness_fail(&h, what);
      continue;
    }
    const int min_max = mpi_min_max_conforms(tc);
    if (!min_max && h.rank == 0) {
      printf(
          "served_types: note: this MPI's MIN/MAX on %s does not follow the standard's "
          "%s order; those cases are left out here\n",
          tc->name, tc->kind == kSigned ? "signed" : "unsigned");
    }
    for (int op = 0; op < kOps; ++op) {
      if (!min_max && (op == kMin || op == kMax)) continue;
      for (size_t c = 0; c < sizeof counts / sizeof counts[0]; ++c) {
        const long n = counts[c];
        const size_t bytes = (size_t)n * (size_t)tc->size;
        compute_expected(expected, scratch, tc, h.size, n, op);
        for (int in_place = 0; in_place < 2; ++in_place) {
          int rc;
          if (in_place) {
            fill(recv, tc, h.rank, n, op);
            rc = MPI_Allreduce(MPI_IN_PLACE, recv, (int)n, tc->type, ops[op], MPI_COMM_WORLD);
          } else {
            fill(send, tc, h.rank, n, op);
            memcpy(original, send, bytes);
            memset(recv, 0x5a, bytes);
            rc = MPI_Allreduce(send, recv, (int)n, tc->type, ops[op], MPI_COMM_WORLD);
            if (memcmp(send, original, bytes) != 0) {
              snprintf(what, sizeof what, "%s %s count %ld: send buffer modified", tc->name,
                       op_names[op], n);
              harness_fail(&h, what);
            }
          }
          if (rc != MPI_SUCCESS || memcmp(recv, expected, bytes) != 0) {
            snprintf(what, sizeof what,
                     "%s %s count %ld %s: rc %d, result differs from the "
                     "exact answer",
                     tc->name, op_names[op], n, in_place ? "in place" : "separate buffers", rc);
            harness_fail(&h, what);
          }
          harness_hash(&h, recv, bytes);
          const int servable = tc->kind != kUnsigned || op == kSum || op == kProd;
          if (servable && (long long)bytes >= min_bytes) {
            h.served_calls++;
            h.served_bytes += (long long)bytes;
          } else {
            h.passed_calls++;
          }
        }
      }
    }
  }
  free(send);
  free(recv);
  free(original);
  free(expected);
  free(scratch);
  const int code = harness_finish(&h, "served_types");
  MPI_Finalize();
  return code;
}
