/* An unmodified MPI program making MPI_Allreduce calls that the interposer must hand to MPI
 * untouched: a user-defined operation, MPI_MAXLOC on MPI_2INT, MPI_MINLOC on
 * MPI_DOUBLE_INT, a vector datatype, a duplicated (derived) MPI_DOUBLE, logical and bitwise
 * operations, a 2-byte type, MIN on unsigned types, MIN on a signed type that this MPI
 * orders as unsigned, a misaligned buffer, and an intercommunicator. Every answer is computed
 * independently on each rank and compared exactly. Needs at least 2 ranks (for the
 * intercommunicator). Options: --expect FILE, --hash FILE (see harness.h). */
#include "harness.h"

/* A user-defined commutative op: the sum of squares of differences would do, but a plain
 * sum keeps the expected value easy; what matters is that the handle is not MPI_SUM. */
static void user_sum(void* in, void* inout, int* len, MPI_Datatype* type) {
  (void)type;
  const int* a = (const int*)in;
  int* b = (int*)inout;
  for (int i = 0; i < *len; ++i) b[i] += a[i];
}

/* A sum over MPI_Type_vector(kVectorLength, 1, 2, MPI_INT): element j of a vector is the
 * int at offset 2j from its start; *len vectors follow one another at the type's extent. */
enum { kVectorLength = 4096 };
static void vector_sum(void* in, void* inout, int* len, MPI_Datatype* type) {
  MPI_Aint lb = 0, extent = 0;
  MPI_Type_get_extent(*type, &lb, &extent);
  for (int v = 0; v < *len; ++v) {
    const int* a = (const int*)((const char*)in + v * extent);
    int* b = (int*)((char*)inout + v * extent);
    for (int j = 0; j < kVectorLength; ++j) b[2 * j] += a[2 * j];
  }
}

static void check(Harness* h, int ok, int rc, const char* what) {
  h->passed_calls++;
  if (rc != MPI_SUCCESS || !ok) harness_fail(h, what);
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  Harness h;
  harness_init(&h, argc, argv);
  const int n = h.size;
  const int r = h.rank;
  enum { kCount = kVectorLength }; /* large enough to pass any size threshold */

  { /* user-defined op on MPI_INT */
    MPI_Op op;
    MPI_Op_create(user_sum, 1, &op);
    static int in[kCount], out[kCount];
    for (int i = 0; i < kCount; ++i) in[i] = r * 3 + i;
    int rc = MPI_Allreduce(in, out, kCount, MPI_INT, op, MPI_COMM_WORLD);
    int ok = 1;
    for (int i = 0; i < kCount; ++i) ok &= out[i] == 3 * n * (n - 1) / 2 + n * i;
    check(&h, ok, rc, "user-defined op");
    harness_hash(&h, out, sizeof out);
    MPI_Op_free(&op);
  }
  { /* MPI_MAXLOC on MPI_2INT: value (r*5) % 7 -> max value, lowest rank holding it */
    int in[2 * 64], out[2 * 64];
    for (int i = 0; i < 64; ++i) {
      in[2 * i] = (r * 5 + i) % 7;
      in[2 * i + 1] = r;
    }
    int rc = MPI_Allreduce(in, out, 64, MPI_2INT, MPI_MAXLOC, MPI_COMM_WORLD);
    int ok = 1;
    for (int i = 0; i < 64; ++i) {
      int best = -1, where = -1;
      for (int q = 0; q < n; ++q) {
        int v = (q * 5 + i) % 7;
        if (v > best) best = v, where = q;
      }
      ok &= out[2 * i] == best && out[2 * i + 1] == where;
    }
    check(&h, ok, rc, "MPI_MAXLOC on MPI_2INT");
    harness_hash(&h, out, sizeof out);
  }
  { /* MPI_MINLOC on MPI_DOUBLE_INT, in place */
    struct {
      double value;
      int rank;
    } buf[64];
    for (int i = 0; i < 64; ++i) buf[i].value = (double)((r * 3 + i) % 5), buf[i].rank = r;
    int rc = MPI_Allreduce(MPI_IN_PLACE, buf, 64, MPI_DOUBLE_INT, MPI_MINLOC, MPI_COMM_WORLD);
    int ok = 1;
    for (int i = 0; i < 64; ++i) {
      double best = 1e9;
      int where = -1;
      for (int q = 0; q < n; ++q) {
        double v = (double)((q * 3 + i) % 5);
        if (v < best) best = v, where = q;
      }
      ok &= buf[i].value == best && buf[i].rank == where;
    }
    check(&h, ok, rc, "MPI_MINLOC on MPI_DOUBLE_INT");
  }
  { /* a vector type (every other int of 2*kCount) with a user-defined sum that walks the
       vector's layout; the gaps of the receive buffer must stay untouched. (A predefined
       op on a derived type is refused by some MPIs, Open MPI among them; see below.) */
    MPI_Datatype vec;
    MPI_Type_vector(kCount, 1, 2, MPI_INT, &vec);
    MPI_Type_commit(&vec);
    MPI_Op op;
    MPI_Op_create(vector_sum, 1, &op);
    static int in[2 * kCount], out[2 * kCount];
    for (int i = 0; i < 2 * kCount; ++i) in[i] = r + i, out[i] = -7;
    int rc = MPI_Allreduce(in, out, 1, vec, op, MPI_COMM_WORLD);
    int ok = 1;
    for (int i = 0; i < 2 * kCount; ++i) {
      ok &= out[i] == (i % 2 == 0 ? n * (n - 1) / 2 + n * i : -7);
    }
    check(&h, ok, rc, "vector datatype");
    harness_hash(&h, out, sizeof out);
    MPI_Op_free(&op);
    MPI_Type_free(&vec);
  }
  { /* predefined ops on derived types: a duplicate of MPI_DOUBLE with MPI_MAX, a vector of
       MPI_INT with MPI_SUM. Whether MPI accepts them varies (Open MPI 4.1 returns
       MPI_ERR_OP); under the preload the program must get exactly what MPI gives, so the
       error class and the result are compared with PMPI_Allreduce on the same call. */
    MPI_Comm comm;
    MPI_Comm_dup(MPI_COMM_WORLD, &comm);
    MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
    MPI_Datatype dup, vec;
    MPI_Type_dup(MPI_DOUBLE, &dup);
    MPI_Type_vector(kCount, 1, 2, MPI_INT, &vec);
    MPI_Type_commit(&vec);
    static double d_in[kCount], d_out[kCount], d_ref[kCount];
    static int v_in[2 * kCount], v_out[2 * kCount], v_ref[2 * kCount];
    for (int i = 0; i < kCount; ++i) d_in[i] = (double)(r + i), d_out[i] = d_ref[i] = 0;
    for (int i = 0; i < 2 * kCount; ++i) v_in[i] = r - i, v_out[i] = v_ref[i] = 3;
    int rc = MPI_Allreduce(d_in, d_out, kCount, dup, MPI_MAX, comm);
    int ref = PMPI_Allreduce(d_in, d_ref, kCount, dup, MPI_MAX, comm);
    int rc_class = -1, ref_class = -2;
    MPI_Error_class(rc, &rc_class);
    MPI_Error_class(ref, &ref_class);
    h.passed_calls++;
    if (rc_class != ref_class || memcmp(d_out, d_ref, sizeof d_ref) != 0) {
      harness_fail(&h, "MPI_MAX on MPI_Type_dup(MPI_DOUBLE): not what MPI gives");
    }
    rc = MPI_Allreduce(v_in, v_out, 1, vec, MPI_SUM, comm);
    ref = PMPI_Allreduce(v_in, v_ref, 1, vec, MPI_SUM, comm);
    MPI_Error_class(rc, &rc_class);
    MPI_Error_class(ref, &ref_class);
    h.passed_calls++;
    if (rc_class != ref_class || memcmp(v_out, v_ref, sizeof v_ref) != 0) {
      harness_fail(&h, "MPI_SUM on a vector of MPI_INT: not what MPI gives");
    }
    harness_hash(&h, &rc_class, sizeof rc_class);
    MPI_Type_free(&vec);
    MPI_Type_free(&dup);
    MPI_Comm_free(&comm);
  }
  { /* logical and bitwise operations on MPI_INT */
    static int in[kCount], land[kCount], bor[kCount];
    for (int i = 0; i < kCount; ++i) in[i] = (i % (n + 1) == r) ? 0 : (1 << (r % 16));
    int rc1 = MPI_Allreduce(in, land, kCount, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
    int rc2 = MPI_Allreduce(in, bor, kCount, MPI_INT, MPI_BOR, MPI_COMM_WORLD);
    int ok1 = 1, ok2 = 1;
    for (int i = 0; i < kCount; ++i) {
      int all_true = 1, bits = 0;
      for (int q = 0; q < n; ++q) {
        int v = (i % (n + 1) == q) ? 0 : (1 << (q % 16));
        all_true &= v != 0;
        bits |= v;
      }
      ok1 &= (land[i] != 0) == all_true;
      ok2 &= bor[i] == bits;
    }
    check(&h, ok1, rc1, "MPI_LAND on MPI_INT");
    check(&h, ok2, rc2, "MPI_BOR on MPI_INT");
  }
  { /* a 2-byte type: MPI_SHORT sum */
    static short in[kCount], out[kCount];
    for (int i = 0; i < kCount; ++i) in[i] = (short)(r - i % 9);
    int rc = MPI_Allreduce(in, out, kCount, MPI_SHORT, MPI_SUM, MPI_COMM_WORLD);
    int ok = 1;
    for (int i = 0; i < kCount; ++i) ok &= out[i] == (short)(n * (n - 1) / 2 - n * (i % 9));
    check(&h, ok, rc, "MPI_SHORT sum");
  }
  { /* MIN on MPI_UNSIGNED: values with the top bit set order differently when signed */
    static unsigned in[kCount], out[kCount];
    for (int i = 0; i < kCount; ++i) in[i] = (r + i) % 2 ? 0x80000000u + (unsigned)r : 5u + r;
    int rc = MPI_Allreduce(in, out, kCount, MPI_UNSIGNED, MPI_MIN, MPI_COMM_WORLD);
    int ok = 1;
    for (int i = 0; i < kCount; ++i) {
      unsigned best = 0xffffffffu;
      for (int q = 0; q < n; ++q) {
        unsigned v = (q + i) % 2 ? 0x80000000u + (unsigned)q : 5u + q;
        if (v < best) best = v;
      }
      ok &= out[i] == best;
    }
    check(&h, ok, rc, "MPI_MIN on MPI_UNSIGNED");
  }
  { /* MIN on MPI_OFFSET and MPI_UNSIGNED_LONG: Open MPI 4.1.4 orders the first as
       unsigned and the second as signed, against the standard. The interposer must give
       MPI's answer whatever it is, so these are compared with PMPI_Allreduce (MPI's own
       entry point, which the interposer never sees) on the same inputs. */
    static MPI_Offset off[kCount], off_mpi[kCount], off_ref[kCount];
    static unsigned long ul[kCount], ul_mpi[kCount], ul_ref[kCount];
    for (int i = 0; i < kCount; ++i) {
      off[i] = (MPI_Offset)((r + i) % 3 - 1) * ((MPI_Offset)1 << 40);
      ul[i] = (r + i) % 2 ? ~0UL - (unsigned long)r : 5UL + (unsigned long)r;
    }
    int rc1 = MPI_Allreduce(off, off_mpi, kCount, MPI_OFFSET, MPI_MIN, MPI_COMM_WORLD);
    PMPI_Allreduce(off, off_ref, kCount, MPI_OFFSET, MPI_MIN, MPI_COMM_WORLD);
    int rc2 = MPI_Allreduce(ul, ul_mpi, kCount, MPI_UNSIGNED_LONG, MPI_MIN, MPI_COMM_WORLD);
    PMPI_Allreduce(ul, ul_ref, kCount, MPI_UNSIGNED_LONG, MPI_MIN, MPI_COMM_WORLD);
    check(&h, memcmp(off_mpi, off_ref, sizeof off_ref) == 0, rc1, "MPI_MIN on MPI_OFFSET");
    check(&h, memcmp(ul_mpi, ul_ref, sizeof ul_ref) == 0, rc2, "MPI_MIN on MPI_UNSIGNED_LONG");
    harness_hash(&h, off_mpi, sizeof off_mpi);
    harness_hash(&h, ul_mpi, sizeof ul_mpi);
  }
  { /* doubles at an odd address: MPI accepts any address, ringdp wants aligned elements */
    static char raw[kCount * sizeof(double) + 1];
    double values[kCount];
    for (int i = 0; i < kCount; ++i) values[i] = (double)(r * 2 + i);
    memcpy(raw + 1, values, sizeof values);
    int rc = MPI_Allreduce(MPI_IN_PLACE, raw + 1, kCount, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    memcpy(values, raw + 1, sizeof values);
    int ok = 1;
    for (int i = 0; i < kCount; ++i) ok &= values[i] == (double)(n * (n - 1) + n * i);
    check(&h, ok, rc, "misaligned MPI_DOUBLE sum");
  }
  if (n >= 2) { /* an intercommunicator: even ranks vs odd ranks; each side receives the
                   reduction of the other side's buffers */
    MPI_Comm half, inter;
    const int color = r % 2;
    MPI_Comm_split(MPI_COMM_WORLD, color, r, &half);
    MPI_Intercomm_create(half, 0, MPI_COMM_WORLD, color == 0 ? 1 : 0, 77, &inter);
    static double in[kCount], out[kCount];
    for (int i = 0; i < kCount; ++i) in[i] = (double)(r * 10 + i);
    int rc = MPI_Allreduce(in, out, kCount, MPI_DOUBLE, MPI_SUM, inter);
    int ok = 1;
    for (int i = 0; i < kCount; ++i) {
      double sum = 0;
      for (int q = 0; q < n; ++q) {
        if (q % 2 != color) sum += (double)(q * 10 + i);
      }
      ok &= out[i] == sum;
    }
    check(&h, ok, rc, "intercommunicator sum");
    MPI_Comm_free(&inter);
    MPI_Comm_free(&half);
  }
  const int code = harness_finish(&h, "passthrough");
  MPI_Finalize();
  return code;
}
