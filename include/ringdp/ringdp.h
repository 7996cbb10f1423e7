/* ringdp's C API: allreduce from C, and from Fortran through iso_c_binding.
 *
 * Every function returns RINGDP_SUCCESS (0) or one of the error codes below, unless said
 * otherwise; none lets a C++ exception through. ringdp_error_message(code) names a code;
 * ringdp_last_error() gives the full message (with the rank and the cause) of the calling
 * thread's last failure. Collective functions must be called by every rank of the
 * communicator, in the same order, with the same count, type, op and algorithm.
 *
 * Fortran programs use the `ringdp` module (`use ringdp`, lib/fortran/ringdp.f90), which
 * calls ringdp_allreduce_comm_f, ringdp_algorithm_from_name and ringdp_error_string through
 * bind(C) interfaces: the enumerators are passed as integer(c_int) values, MPI handles as
 * their MPI_Fint. */
#ifndef RINGDP_RINGDP_H
#define RINGDP_RINGDP_H

#include <mpi.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** An opaque handle: ringdp's own duplicate of a caller's communicator. */
typedef struct ringdp_comm ringdp_comm;

/** Element types (values are stable: Fortran passes them as integer(c_int)). */
typedef enum ringdp_datatype {
  RINGDP_FLOAT32 = 0,
  RINGDP_FLOAT64 = 1,
  RINGDP_INT32 = 2,
  RINGDP_INT64 = 3
} ringdp_datatype;

/** Reductions. RINGDP_AVERAGE is for RINGDP_FLOAT32 and RINGDP_FLOAT64 only. */
typedef enum ringdp_op {
  RINGDP_SUM = 0,
  RINGDP_AVERAGE = 1,
  RINGDP_MIN = 2,
  RINGDP_MAX = 3,
  RINGDP_PRODUCT = 4
} ringdp_op;

/** Allreduce algorithms. RINGDP_AUTO follows RINGDP_ALGORITHM when set. RINGDP_SHM needs
 *  every rank on one node; RINGDP_HIERARCHICAL runs shm inside nodes, a ring between. */
typedef enum ringdp_algorithm {
  RINGDP_AUTO = 0,
  RINGDP_RING = 1,
  RINGDP_RECURSIVE_DOUBLING = 2,
  RINGDP_MPI = 3,
  RINGDP_PARAMETER_SERVER = 4,
  RINGDP_SHM = 5,
  RINGDP_HIERARCHICAL = 6
} ringdp_algorithm;

/** Return codes. */
enum ringdp_error_code {
  RINGDP_SUCCESS = 0,
  RINGDP_ERROR_NULL_ARGUMENT = 1,    /* a required pointer was null */
  RINGDP_ERROR_INVALID_ARGUMENT = 2, /* unknown enumerator, Average on integers, ... */
  RINGDP_ERROR_MPI = 3,              /* an MPI call failed */
  RINGDP_ERROR_MISMATCH = 4,         /* check mode: ranks called with different arguments */
  RINGDP_ERROR_NO_MEMORY = 5,
  RINGDP_ERROR_INTERNAL = 6,         /* a bug of ringdp's: please report it */
  RINGDP_ERROR_IO = 7,               /* a file could not be read or written (RINGDP_TUNING) */
  RINGDP_ERROR_FAILED = 8            /* another failure; ringdp_last_error() says which */
};
/* An error agreed across ranks (a bad setting or file on one rank, found when a handle is
 * created) returns the same code on every rank: the code of the failing rank's error. */

/** Collective over `comm`: duplicates it into a new handle stored in *out (NULL on error).
 *  Check mode starts on when RINGDP_CHECK is set to a value other than 0. */
int ringdp_comm_create(MPI_Comm comm, ringdp_comm** out);

/** ringdp_comm_create for Fortran callers, whose MPI handles are integers (MPI_Fint). A
 *  handle that names no communicator (one freed with MPI_Comm_free) is
 *  RINGDP_ERROR_INVALID_ARGUMENT. */
int ringdp_comm_create_f(MPI_Fint comm, ringdp_comm** out);

/** Frees a handle from ringdp_comm_create (collective). NULL is accepted and ignored. */
int ringdp_comm_free(ringdp_comm* comm);

/** Turns check mode on (nonzero) or off (0) on this handle. Set it alike on all ranks. */
int ringdp_comm_set_check_mode(ringdp_comm* comm, int on);

/** Collective, in place: every rank ends with the reduction over all ranks of `count`
 *  elements of `type` at `data`, bit-identical on every rank. `data` may be NULL only
 *  when count is 0. */
int ringdp_allreduce(ringdp_comm* comm, void* data, size_t count, ringdp_datatype type,
                     ringdp_op op, ringdp_algorithm algorithm);

/** Collective over `comm`, in place, like ringdp_allreduce, but on ringdp's own duplicate of
 *  `comm` cached on it (ringdp/comm/communicator_cache.hpp): the first call on a
 *  communicator makes the duplicate (every rank makes that call together, as with any
 *  collective on `comm`), MPI_Comm_free(comm) frees it, and MPI_Finalize frees those left.
 *  No handle to create or free: for code that passes its communicator on every call.
 *  MPI_COMM_NULL and intercommunicators are RINGDP_ERROR_INVALID_ARGUMENT. */
int ringdp_allreduce_comm(MPI_Comm comm, void* data, size_t count, ringdp_datatype type,
                          ringdp_op op, ringdp_algorithm algorithm);

/** ringdp_allreduce_comm for Fortran callers: `comm` is the integer handle of `use mpi` and
 *  mpif.h, or the MPI_VAL of an mpi_f08 type(MPI_Comm). A handle that names no
 *  communicator (MPI_COMM_NULL, or one freed with MPI_Comm_free) is
 *  RINGDP_ERROR_INVALID_ARGUMENT. */
int ringdp_allreduce_comm_f(MPI_Fint comm, void* data, size_t count, ringdp_datatype type,
                            ringdp_op op, ringdp_algorithm algorithm);

/** Sets *out to the algorithm `name` names, with the names RINGDP_ALGORITHM accepts ("auto",
 *  "ring", "rd" or "recursive-doubling", "mpi", "ps" or "parameter-server", and any
 *  algorithm added later). Another name is RINGDP_ERROR_INVALID_ARGUMENT, and
 *  ringdp_last_error() lists the accepted ones. Local. */
int ringdp_algorithm_from_name(const char* name, ringdp_algorithm* out);

/** Copies the text of error `code` into `buffer`, cut to `size` - 1 characters and ended by a
 *  NUL (nothing is written when `size` is 0): the full message of the calling thread's last
 *  failure (ringdp_last_error()) when `code` is that failure's code, else
 *  ringdp_error_message(code). Returns the length of the whole text, like snprintf: a
 *  result >= `size` means the copy was cut. Does not change the last failure. */
size_t ringdp_error_string(int code, char* buffer, size_t size);

/** Collective over `comm`: allocates `count` elements of `type` in memory the ranks of a
 *  node share (the handle's node-shared window), stored in *data (NULL on error). Every
 *  rank passes the same count (else every rank returns RINGDP_ERROR_MISMATCH). An
 *  allreduce with RINGDP_SHM, RINGDP_HIERARCHICAL or RINGDP_AUTO on such memory needs no
 *  copy-in. Free it with ringdp_shared_free before ringdp_comm_free. */
int ringdp_shared_alloc(ringdp_comm* comm, size_t count, ringdp_datatype type, void** data);

/** Local: gives back memory from ringdp_shared_alloc. NULL is accepted and ignored. */
int ringdp_shared_free(void* data);

/** A short static description of an error code ("unknown error code" for others). */
const char* ringdp_error_message(int code);

/** The full message of the calling thread's last failure ("" if none). Valid until the
 *  thread's next ringdp call. */
const char* ringdp_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* RINGDP_RINGDP_H */
