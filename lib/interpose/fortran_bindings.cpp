// The Fortran MPI_ALLREDUCE and MPI_FINALIZE, served like the C ones.
//
// Open MPI's Fortran bindings call PMPI_Allreduce and PMPI_Finalize directly, so a Fortran
// program's calls never reach the C entry points of this library: the Fortran symbols
// themselves are defined here. Open MPI 4.1 with gfortran (nm -D of its libraries):
//   mpif.h and `use mpi`: mpi_allreduce_ in libmpi_mpifh, which also exports mpi_allreduce,
//     mpi_allreduce__ and MPI_ALLREDUCE for other compilers' name mangling (all defined
//     here); MPI's own entry point for them is pmpi_allreduce_;
//   `use mpi_f08`: mpi_allreduce_f08_ in libmpi_usempif08 (MPI's: pmpi_allreduce_f08_).
// Every argument comes by reference: (sendbuf, recvbuf, count, datatype, op, comm, ierror),
// handles as MPI_Fint (an mpi_f08 handle, type(MPI_Comm) and the like, is a derived type
// holding only its MPI_Fint, MPI_VAL, so it is passed as the address of that integer).
// ierror is optional in mpi_f08: a null pointer when absent. Buffers are plain addresses in
// both: Open MPI 4.1's mpi_f08 has MPI_SUBARRAYS_SUPPORTED = .false., so no array
// descriptor is passed (the compiler hands a contiguous copy of a non-contiguous section).
// Fortran's MPI_IN_PLACE and MPI_BOTTOM are not C's: they are the addresses of the common
// blocks mpi_fortran_in_place_ and mpi_fortran_bottom_, which every Fortran binding of the
// process shares (the dynamic linker binds all references to one definition).
//
// A served call follows the C rules exactly (serve_if_supported). Everything else, and a
// call whose handles name nothing or that uses MPI_BOTTOM, goes to MPI's own Fortran entry
// point untouched, so MPI gives its answer or its error as without this library.

#include <mpi.h>

#include <type_traits>

#include "entry.hpp"
#include "error_codes.hpp"

#if defined(OPEN_MPI)

extern "C" {
// The Fortran bindings' profiling entry points. Weak: this library must load into C
// programs, which have no Fortran bindings; a Fortran program that calls the functions
// below has loaded them (they live beside the mpi_ ones it would otherwise reach).
using FortranAllreduce = void(const void*, void*, const MPI_Fint*, const MPI_Fint*, const MPI_Fint*,
                              const MPI_Fint*, MPI_Fint*);
FortranAllreduce pmpi_allreduce_ __attribute__((weak));
FortranAllreduce pmpi_allreduce_f08_ __attribute__((weak));
// Open MPI's Fortran MPI_IN_PLACE and MPI_BOTTOM (defined in libmpi).
extern MPI_Fint mpi_fortran_in_place_;
extern MPI_Fint mpi_fortran_bottom_;
}

namespace ringdp::interpose {
namespace {

bool is_in_place(const void* buffer) noexcept { return buffer == &mpi_fortran_in_place_; }
bool is_bottom(const void* buffer) noexcept { return buffer == &mpi_fortran_bottom_; }

// Open MPI's MPI_*_f2c return a null pointer for a Fortran handle that names nothing (a
// freed communicator, a number never handed out), where MPI_COMM_NULL and the like are
// real objects. Such a handle must never reach a C MPI call of ours: MPI would raise the
// error on MPI_COMM_WORLD instead of the call's communicator.
template <class Handle>
bool names_something(Handle handle) noexcept {
  if constexpr (std::is_pointer_v<Handle>) return handle != nullptr;
  return true;
}

// What Open MPI's Fortran binding does, for the case where its entry point was not found
// (a program that reached an mpi_allreduce_ of ours without loading MPI's Fortran bindings).
void convert_and_call_mpi(const void* sendbuf, void* recvbuf, MPI_Fint count, MPI_Datatype datatype,
                          MPI_Op op, MPI_Comm comm, MPI_Fint* ierror) noexcept {
  const void* send = is_in_place(sendbuf) ? MPI_IN_PLACE
                     : is_bottom(sendbuf) ? MPI_BOTTOM
                                          : sendbuf;
  void* receive = is_bottom(recvbuf) ? MPI_BOTTOM : recvbuf;
  const int code = PMPI_Allreduce(send, receive, count, datatype, op, comm);
  if (ierror != nullptr) *ierror = code;
}

void allreduce(const void* sendbuf, void* recvbuf, const MPI_Fint* count, const MPI_Fint* datatype,
               const MPI_Fint* op, const MPI_Fint* comm, MPI_Fint* ierror,
               FortranAllreduce* mpi) noexcept {
  const MPI_Comm c_comm = PMPI_Comm_f2c(*comm);
  const MPI_Datatype c_type = PMPI_Type_f2c(*datatype);
  const MPI_Op c_op = PMPI_Op_f2c(*op);
  const bool handles = names_something(c_comm) && names_something(c_type) && names_something(c_op);
  try {
    if (handles && !is_bottom(sendbuf) && !is_bottom(recvbuf) && !is_in_place(recvbuf)) {
      const void* send = is_in_place(sendbuf) ? MPI_IN_PLACE : sendbuf;
      if (serve_if_supported({send, recvbuf, *count, c_type, c_op, c_comm})) {
        if (ierror != nullptr) *ierror = MPI_SUCCESS;
        return;
      }
    } else {
      count_passed_call(*count, names_something(c_type) ? c_type : MPI_DATATYPE_NULL);
    }
  } catch (...) {
    // As in C: the code goes through the communicator's error handler, then to ierror.
    const int code = current_exception_code();
    PMPI_Comm_call_errhandler(c_comm, code);
    if (ierror != nullptr) *ierror = code;
    return;
  }
  if (mpi != nullptr) {
    mpi(sendbuf, recvbuf, count, datatype, op, comm, ierror);
  } else {
    convert_and_call_mpi(sendbuf, recvbuf, *count, c_type, c_op, c_comm, ierror);
  }
}

void finalize_fortran(MPI_Fint* ierror) noexcept {
  const int code = finalize();
  if (ierror != nullptr) *ierror = code;
}

}  // namespace
}  // namespace ringdp::interpose

// Exported (the library's default visibility is hidden; the C entry points inherit theirs
// from mpi.h's declarations).
#define RINGDP_FORTRAN_EXPORT extern "C" __attribute__((visibility("default")))
#define RINGDP_FORTRAN_ALLREDUCE(name, mpi_entry)                                                 \
  RINGDP_FORTRAN_EXPORT void name(const void* sendbuf, void* recvbuf, const MPI_Fint* count,      \
                                  const MPI_Fint* datatype, const MPI_Fint* op,                   \
                                  const MPI_Fint* comm, MPI_Fint* ierror) {                       \
    ringdp::interpose::allreduce(sendbuf, recvbuf, count, datatype, op, comm, ierror, mpi_entry); \
  }
#define RINGDP_FORTRAN_FINALIZE(name) \
  RINGDP_FORTRAN_EXPORT void name(MPI_Fint* ierror) { ringdp::interpose::finalize_fortran(ierror); }

// mpif.h and `use mpi`, under each name mangling libmpi_mpifh exports.
RINGDP_FORTRAN_ALLREDUCE(mpi_allreduce_, pmpi_allreduce_)
RINGDP_FORTRAN_ALLREDUCE(mpi_allreduce__, pmpi_allreduce_)
RINGDP_FORTRAN_ALLREDUCE(mpi_allreduce, pmpi_allreduce_)
RINGDP_FORTRAN_ALLREDUCE(MPI_ALLREDUCE, pmpi_allreduce_)
RINGDP_FORTRAN_FINALIZE(mpi_finalize_)
RINGDP_FORTRAN_FINALIZE(mpi_finalize__)
RINGDP_FORTRAN_FINALIZE(mpi_finalize)
RINGDP_FORTRAN_FINALIZE(MPI_FINALIZE)
// `use mpi_f08`.
RINGDP_FORTRAN_ALLREDUCE(mpi_allreduce_f08_, pmpi_allreduce_f08_)
RINGDP_FORTRAN_FINALIZE(mpi_finalize_f08_)

#endif  // OPEN_MPI
