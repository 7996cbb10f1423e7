#include "error_codes.hpp"

#include <mpi.h>

#include <cstring>
#include <exception>
#include <mutex>
#include <new>

#include "ringdp/error.hpp"

namespace ringdp::interpose {
namespace {

std::mutex codes_mutex;

struct ClassCode {
  int error_class;
  int code;
};
// One code per class, created on first use, its string replaced by each new message
// (MPI_Add_error_string replaces an earlier string). Three classes at most.
ClassCode codes[] = {
    {MPI_ERR_ARG, MPI_ERR_ARG}, {MPI_ERR_NO_MEM, MPI_ERR_NO_MEM}, {MPI_ERR_OTHER, MPI_ERR_OTHER}};
bool created[] = {false, false, false};

int code_with_message(int error_class, const char* message) noexcept {
  const std::lock_guard lock(codes_mutex);
  for (std::size_t i = 0; i < std::size(codes); ++i) {
    if (codes[i].error_class != error_class) continue;
    if (!created[i]) {
      int code = error_class;
      if (PMPI_Add_error_code(error_class, &code) == MPI_SUCCESS) codes[i].code = code;
      created[i] = true;
    }
    if (codes[i].code == error_class) return error_class;  // no code of our own: bare class
    char text[MPI_MAX_ERROR_STRING];
    std::strncpy(text, message, sizeof text - 1);
    text[sizeof text - 1] = '\0';
    PMPI_Add_error_string(codes[i].code, text);
    return codes[i].code;
  }
  return error_class;
}

}  // namespace

int current_exception_code() noexcept {
  try {
    throw;
  } catch (const MpiError& e) {
    // An MPI failure of another rank, agreed across ranks, carries no code of this rank's.
    return e.code() != MPI_SUCCESS ? e.code() : code_with_message(MPI_ERR_OTHER, e.what());
  } catch (const InvalidArgument& e) {
    return code_with_message(MPI_ERR_ARG, e.what());
  } catch (const std::bad_alloc&) {
    return code_with_message(MPI_ERR_NO_MEM, "ringdp: out of memory in MPI_Allreduce");
  } catch (const std::exception& e) {
    return code_with_message(MPI_ERR_OTHER, e.what());
  } catch (...) {
    return code_with_message(MPI_ERR_OTHER, "ringdp: unknown error in MPI_Allreduce");
  }
}

}  // namespace ringdp::interpose
