/* ringdp's C API: allreduce from C, and from Fortran through iso_c_binding.
 *
 * Every function returns RINGDP_SUCCESS (0) or one of the error codes below; none lets a
 * C++ exception through. ringdp_error_message(code) names a code; ringdp_last_error()
 * gives the full message (with the rank and the cause) of the calling thread's last
 * failure. Collective functions must be called by every rank of the communicator, in
 * the same order, with the same count, type, op and algorithm.
 *
 * From Fortran, declare the functions with bind(C) and pass the enumerators as
 * integer(c_int) values, the communicator through ringdp_comm_create_f:
 *   interface
 *     integer(c_int) function ringdp_comm_create_f(comm, out) bind(C)
 *       import :: c_int, c_ptr
 *       integer(c_int), value :: comm
 *       type(c_ptr) :: out
 *     end function
 *     integer(c_int) function ringdp_allreduce(comm, data, count, type, op, algo) bind(C)
 *       import :: c_int, c_ptr, c_size_t
 *       type(c_ptr), value :: comm, data
 *       integer(c_size_t), value :: count
 *       integer(c_int), value :: type, op, algo
 *     end function
 *   end interface */
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

/** ringdp_comm_create for Fortran callers, whose MPI handles are integers (MPI_Fint). */
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
