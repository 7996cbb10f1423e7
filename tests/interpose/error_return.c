/* An unmodified MPI program that sets MPI_ERRORS_RETURN on MPI_COMM_WORLD and expects its
 * MPI_Allreduce to fail: run under the preload with a bad ringdp setting (for example
 * RINGDP_ALGORITHM=bogus), the interposer must return an MPI error code of class
 * MPI_ERR_ARG through the communicator's error handler, on every rank, with an error
 * string that names the cause, instead of crashing, hanging or printing.
 * Usage: error_return SUBSTRING  (the error string must contain SUBSTRING) */
#include "harness.h"

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  Harness h;
  harness_init(&h, argc, argv);
  const char* needle = argc > 1 ? argv[1] : "";
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);

  double buf[16];
  for (int i = 0; i < 16; ++i) buf[i] = (double)i;
  const int rc = MPI_Allreduce(MPI_IN_PLACE, buf, 16, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  char text[MPI_MAX_ERROR_STRING] = "";
  int length = 0;
  int error_class = MPI_SUCCESS;
  if (rc != MPI_SUCCESS) {
    MPI_Error_class(rc, &error_class);
    MPI_Error_string(rc, text, &length);
  }
  char what[MPI_MAX_ERROR_STRING + 128];
  if (rc == MPI_SUCCESS || error_class != MPI_ERR_ARG || strstr(text, needle) == NULL) {
    snprintf(what, sizeof what,
             "expected an MPI_ERR_ARG error naming '%s', got rc %d, class "
             "%d, '%s'",
             needle, rc, error_class, text);
    harness_fail(&h, what);
  } else if (h.rank == 0) {
    printf("error_return: rank 0 got error class MPI_ERR_ARG: %s\n", text);
  }
  const int code = harness_finish(&h, "error_return");
  MPI_Finalize();
  return code;
}
