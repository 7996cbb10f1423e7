/* An unmodified MPI program that creates, uses and frees communicators over and over:
 * 1,000 times MPI_Comm_dup or MPI_Comm_split of MPI_COMM_WORLD, one MPI_Allreduce on the
 * new communicator (checked exactly), MPI_Comm_free. Under the preload each of them is
 * served, so ringdp makes its own duplicate of each; freeing the user's communicator must
 * free that duplicate too. Two measurements, taken after a warm-up of 100 rounds (so that
 * MPI's and malloc's one-time allocations are done) and again after the 1,000:
 *   - open communicators: Open MPI hands out a communicator's Fortran handle
 *     (MPI_Comm_c2f) as its slot in the table of live communicators, lowest free slot
 *     first; probe communicators created at both points get the same slots unless
 *     communicators leaked in between (1,000 leaked duplicates would move them by 1,000);
 *   - memory: VmRSS from /proc/self/status may grow by at most 2 MiB (a leaked
 *     communicator costs several KiB in Open MPI, 1,000 of them several MiB).
 * Options: --expect FILE, --hash FILE (see harness.h); --rounds N (default 1000). */
#include "harness.h"

static long rss_kib(void) {
  FILE* f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long kib = -1;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "VmRSS:", 6) == 0) kib = atol(line + 6);
  }
  fclose(f);
  return kib;
}

/* The highest slot of a few communicators created together: holes left by freed
 * communicators are filled first, so a single probe could land in the hole each round's
 * freed communicator leaves; with several, the last lands past every live communicator. */
static int probe_slot(void) {
  enum { kProbes = 4 };
  MPI_Comm probes[kProbes];
  int highest = -1;
  for (int i = 0; i < kProbes; ++i) {
    MPI_Comm_dup(MPI_COMM_WORLD, &probes[i]);
    const int slot = (int)MPI_Comm_c2f(probes[i]);
    if (slot > highest) highest = slot;
  }
  for (int i = 0; i < kProbes; ++i) MPI_Comm_free(&probes[i]);
  return highest;
}

enum { kCount = 1024 };

/* Under AddressSanitizer freed memory waits in a quarantine (256 MB by default) before it
 * is reused, so VmRSS grows by design whether or not anything leaks: the memory check is
 * left out there. The slot check still finds leaked communicators (which LeakSanitizer
 * would not: Open MPI's table still points to them). */
#if defined(__SANITIZE_ADDRESS__)
enum { kCheckRss = 0 };
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
enum { kCheckRss = 0 };
#else
enum { kCheckRss = 1 };
#endif
#else
enum { kCheckRss = 1 };
#endif

static void round_trip(Harness* h, int round) {
  MPI_Comm comm;
  if (round % 2 == 0) {
    MPI_Comm_dup(MPI_COMM_WORLD, &comm);
  } else {
    MPI_Comm_split(MPI_COMM_WORLD, 0, h->size - h->rank, &comm); /* reversed order */
  }
  double buf[kCount];
  for (int i = 0; i < kCount; ++i) buf[i] = (double)(h->rank + i + round);
  const int rc = MPI_Allreduce(MPI_IN_PLACE, buf, kCount, MPI_DOUBLE, MPI_SUM, comm);
  const int n = h->size;
  int ok = rc == MPI_SUCCESS;
  for (int i = 0; i < kCount; ++i) ok &= buf[i] == (double)(n * (n - 1) / 2 + n * (i + round));
  if (!ok) harness_fail(h, "allreduce on a fresh communicator");
  h->served_calls++;
  h->served_bytes += (long long)sizeof buf;
  MPI_Comm_free(&comm);
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  Harness h;
  harness_init(&h, argc, argv);
  int rounds = 1000;
  for (int i = 1; i + 1 < argc; ++i) {
    if (strcmp(argv[i], "--rounds") == 0) rounds = atoi(argv[i + 1]);
  }

  for (int round = 0; round < 100; ++round) round_trip(&h, round);
  const int slot_before = probe_slot();
  const long rss_before = rss_kib();
  for (int round = 0; round < rounds; ++round) round_trip(&h, round);
  const int slot_after = probe_slot();
  const long rss_after = rss_kib();

  char what[256];
  if (slot_after != slot_before) {
    snprintf(what, sizeof what, "communicator slots: %d before, %d after %d rounds (leak)",
             slot_before, slot_after, rounds);
    harness_fail(&h, what);
  }
  if (kCheckRss && (rss_before < 0 || rss_after - rss_before > 2048)) {
    snprintf(what, sizeof what, "VmRSS grew from %ld KiB to %ld KiB over %d rounds", rss_before,
             rss_after, rounds);
    harness_fail(&h, what);
  }
  if (h.rank == 0) {
    printf("comm_churn: %d rounds: communicator slot %d -> %d, VmRSS %ld -> %ld KiB%s\n",
           rounds, slot_before, slot_after, rss_before, rss_after,
           kCheckRss ? "" : " (not checked under AddressSanitizer)");
  }
  /* Two communicators the program never frees, served once each: MPI_COMM_SELF and a
   * forgotten duplicate of MPI_COMM_WORLD. The library frees their ringdp duplicates in
   * MPI_Finalize, while MPI is alive; the run must end cleanly. */
  MPI_Comm forgotten;
  MPI_Comm_dup(MPI_COMM_WORLD, &forgotten);
  const MPI_Comm kept[2] = {MPI_COMM_SELF, forgotten};
  for (int k = 0; k < 2; ++k) {
    int64_t values[kCount];
    for (int i = 0; i < kCount; ++i) values[i] = h.rank + i;
    int rc = MPI_Allreduce(MPI_IN_PLACE, values, kCount, MPI_INT64_T, MPI_MAX, kept[k]);
    int ok = rc == MPI_SUCCESS;
    for (int i = 0; i < kCount; ++i) ok &= values[i] == (k == 0 ? h.rank : h.size - 1) + i;
    if (!ok) harness_fail(&h, k == 0 ? "MPI_MAX on MPI_COMM_SELF" : "MPI_MAX on a kept dup");
    h.served_calls++;
    h.served_bytes += (long long)sizeof values;
  }
  const int code = harness_finish(&h, "comm_churn");
  MPI_Finalize();
  return code;
}
