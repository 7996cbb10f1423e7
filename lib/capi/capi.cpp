// The C API: thin wrappers that turn ringdp's exceptions into return codes. Every entry
// point catches everything; a C or Fortran caller never sees a C++ exception.

#include <mpi.h>

#include <cstdint>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <new>
#include <span>
#include <string>
#include <type_traits>

#include "ringdp/collectives/collectives.hpp"
#include "ringdp/collectives/shared_buffer.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/error.hpp"
#include "ringdp/ringdp.h"

struct ringdp_comm {
  explicit ringdp_comm(MPI_Comm comm) : communicator(comm) {}
  ringdp::Communicator communicator;
};

namespace {

thread_local std::string last_error;

int fail(int code, std::string message) {
  last_error = std::move(message);
  return code;
}

// The code of each class of ringdp::Error: one code per class, so that an error agreed
// across ranks (thrown as the failing rank's class on every rank) is one code everywhere.
int code_of(ringdp::ErrorKind kind) {
  switch (kind) {
    case ringdp::ErrorKind::Mpi: return RINGDP_ERROR_MPI;
    case ringdp::ErrorKind::Io: return RINGDP_ERROR_IO;
    case ringdp::ErrorKind::InvalidArgument: return RINGDP_ERROR_INVALID_ARGUMENT;
    case ringdp::ErrorKind::Mismatch: return RINGDP_ERROR_MISMATCH;
    case ringdp::ErrorKind::Generic: break;
  }
  return RINGDP_ERROR_FAILED;
}

// Runs fn, mapping each exception to its code.
template <class Fn>
int guarded(Fn&& fn) noexcept {
  try {
    last_error.clear();
    fn();
    return RINGDP_SUCCESS;
  } catch (const ringdp::Error& e) {
    return fail(code_of(e.kind()), e.what());
  } catch (const std::bad_alloc&) {
    return fail(RINGDP_ERROR_NO_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return fail(RINGDP_ERROR_INTERNAL, e.what());
  } catch (...) {
    return fail(RINGDP_ERROR_INTERNAL, "unknown exception");
  }
}

// A C caller may pass any int as an enum argument (in C an enum is an integer), but in C++
// reading an enum object whose value lies outside the range of its enumerators is undefined
// (ringdp_datatype's range is 0..3, and the C example passes 42 on purpose). So an enum
// argument is first read as bytes into its underlying integer type, and used as the enum
// only once it is known to be one of the enumerators.
template <class Enum>
long long raw_value(const Enum& value) {
  std::underlying_type_t<Enum> bits;
  std::memcpy(&bits, &value, sizeof bits);
  return static_cast<long long>(bits);
}

bool valid(const ringdp_op& op) {
  const long long v = raw_value(op);
  return v >= RINGDP_SUM && v <= RINGDP_PRODUCT;
}
bool valid(const ringdp_algorithm& a) {
  const long long v = raw_value(a);
  return v >= RINGDP_AUTO && v <= RINGDP_HIERARCHICAL;
}

ringdp::ReduceOp to_cpp(ringdp_op op) {
  switch (op) {
    case RINGDP_SUM:
      return ringdp::ReduceOp::Sum;
    case RINGDP_AVERAGE:
      return ringdp::ReduceOp::Average;
    case RINGDP_MIN:
      return ringdp::ReduceOp::Min;
    case RINGDP_MAX:
      return ringdp::ReduceOp::Max;
    case RINGDP_PRODUCT:
      return ringdp::ReduceOp::Product;
  }
  throw ringdp::InvalidArgument("unknown ringdp_op");
}

ringdp::Algorithm to_cpp(ringdp_algorithm a) {
  switch (a) {
    case RINGDP_AUTO:
      return ringdp::Algorithm::Auto;
    case RINGDP_RING:
      return ringdp::Algorithm::Ring;
    case RINGDP_RECURSIVE_DOUBLING:
      return ringdp::Algorithm::RecursiveDoubling;
    case RINGDP_MPI:
      return ringdp::Algorithm::Mpi;
    case RINGDP_PARAMETER_SERVER:
      return ringdp::Algorithm::ParameterServer;
    case RINGDP_SHM:
      return ringdp::Algorithm::Shm;
    case RINGDP_HIERARCHICAL:
      return ringdp::Algorithm::Hierarchical;
  }
  throw ringdp::InvalidArgument("unknown ringdp_algorithm");
}

template <class T>
void run_allreduce(ringdp_comm* comm, void* data, std::size_t count, ringdp_op op,
                   ringdp_algorithm algorithm) {
  ringdp::allreduce(comm->communicator, std::span<T>(static_cast<T*>(data), count), to_cpp(op),
                    to_cpp(algorithm));
}

// The allocations of ringdp_shared_alloc, by address, so that ringdp_shared_free can find
// them (C has no destructor to hold the block). Any thread may call either.
struct SharedAllocations {
  std::mutex mutex;
  std::map<void*, ringdp::detail::SharedBlock> blocks;
};

SharedAllocations& shared_allocations() {
  static SharedAllocations* all = new SharedAllocations;  // never destroyed: see below
  // Leaked on purpose: a block freed after static destruction (at exit) must still find
  // its registry; the blocks themselves go with the communicator's window.
  return *all;
}

}  // namespace

extern "C" {

int ringdp_comm_create(MPI_Comm comm, ringdp_comm** out) {
  if (out == nullptr) return fail(RINGDP_ERROR_NULL_ARGUMENT, "ringdp_comm_create: out is NULL");
  *out = nullptr;
  if (comm == MPI_COMM_NULL) {
    return fail(RINGDP_ERROR_INVALID_ARGUMENT, "ringdp_comm_create: comm is MPI_COMM_NULL");
  }
  return guarded([&] { *out = new ringdp_comm(comm); });
}

int ringdp_comm_create_f(MPI_Fint comm, ringdp_comm** out) {
  return ringdp_comm_create(MPI_Comm_f2c(comm), out);
}

int ringdp_comm_free(ringdp_comm* comm) {
  return guarded([&] { delete comm; });
}

int ringdp_comm_set_check_mode(ringdp_comm* comm, int on) {
  if (comm == nullptr)
    return fail(RINGDP_ERROR_NULL_ARGUMENT, "ringdp_comm_set_check_mode: comm is NULL");
  comm->communicator.set_check_mode(on != 0);
  return RINGDP_SUCCESS;
}

int ringdp_allreduce(ringdp_comm* comm, void* data, size_t count, ringdp_datatype type,
                     ringdp_op op, ringdp_algorithm algorithm) {
  // Argument errors are found before any communication. They depend only on the
  // arguments, so ranks that pass the same arguments all return the same code.
  if (comm == nullptr) return fail(RINGDP_ERROR_NULL_ARGUMENT, "ringdp_allreduce: comm is NULL");
  if (data == nullptr && count != 0) {
    return fail(RINGDP_ERROR_NULL_ARGUMENT, "ringdp_allreduce: data is NULL with a nonzero count");
  }
  if (!valid(op)) return fail(RINGDP_ERROR_INVALID_ARGUMENT, "ringdp_allreduce: unknown ringdp_op");
  if (!valid(algorithm)) {
    return fail(RINGDP_ERROR_INVALID_ARGUMENT, "ringdp_allreduce: unknown ringdp_algorithm");
  }
  return guarded([&] {
    switch (raw_value(type)) {
      case RINGDP_FLOAT32:
        run_allreduce<float>(comm, data, count, op, algorithm);
        return;
      case RINGDP_FLOAT64:
        run_allreduce<double>(comm, data, count, op, algorithm);
        return;
      case RINGDP_INT32:
        run_allreduce<std::int32_t>(comm, data, count, op, algorithm);
        return;
      case RINGDP_INT64:
        run_allreduce<std::int64_t>(comm, data, count, op, algorithm);
        return;
    }
    throw ringdp::InvalidArgument("ringdp_allreduce: unknown ringdp_datatype");
  });
}

int ringdp_shared_alloc(ringdp_comm* comm, size_t count, ringdp_datatype type, void** data) {
  if (data == nullptr) return fail(RINGDP_ERROR_NULL_ARGUMENT, "ringdp_shared_alloc: data is NULL");
  *data = nullptr;
  if (comm == nullptr) return fail(RINGDP_ERROR_NULL_ARGUMENT, "ringdp_shared_alloc: comm is NULL");
  const long long t = raw_value(type);
  if (t < RINGDP_FLOAT32 || t > RINGDP_INT64) {
    return fail(RINGDP_ERROR_INVALID_ARGUMENT, "ringdp_shared_alloc: unknown ringdp_datatype");
  }
  const std::size_t element = t == RINGDP_FLOAT64 || t == RINGDP_INT64 ? 8 : 4;
  return guarded([&] {
    if (count > SIZE_MAX / element) {
      throw ringdp::InvalidArgument("ringdp_shared_alloc: count * element size overflows");
    }
    ringdp::detail::SharedBlock block(comm->communicator, count * element);
    void* address = block.data();
    SharedAllocations& all = shared_allocations();
    const std::lock_guard<std::mutex> lock(all.mutex);
    all.blocks.emplace(address, std::move(block));
    *data = address;
  });
}

int ringdp_shared_free(void* data) {
  if (data == nullptr) return RINGDP_SUCCESS;
  return guarded([&] {
    SharedAllocations& all = shared_allocations();
    const std::lock_guard<std::mutex> lock(all.mutex);
    const auto it = all.blocks.find(data);
    if (it == all.blocks.end()) {
      throw ringdp::InvalidArgument(
          "ringdp_shared_free: the pointer did not come from ringdp_shared_alloc");
    }
    all.blocks.erase(it);
  });
}

const char* ringdp_error_message(int code) {
  switch (code) {
    case RINGDP_SUCCESS:
      return "success";
    case RINGDP_ERROR_NULL_ARGUMENT:
      return "a required pointer argument is NULL";
    case RINGDP_ERROR_INVALID_ARGUMENT:
      return "invalid argument (unknown enumerator or unsupported combination)";
    case RINGDP_ERROR_MPI:
      return "an MPI call failed";
    case RINGDP_ERROR_MISMATCH:
      return "ranks called the collective with different arguments";
    case RINGDP_ERROR_NO_MEMORY:
      return "out of memory";
    case RINGDP_ERROR_INTERNAL:
      return "internal error";
    case RINGDP_ERROR_IO:
      return "a file could not be read or written";
    case RINGDP_ERROR_FAILED:
      return "the operation failed (see ringdp_last_error)";
    default:
      return "unknown error code";
  }
}

const char* ringdp_last_error(void) { return last_error.c_str(); }

}  // extern "C"
