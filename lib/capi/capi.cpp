// The C API: thin wrappers that turn ringdp's exceptions into return codes. Every entry
// point catches everything; a C or Fortran caller never sees a C++ exception.

#include <fmt/format.h>
#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "ringdp/collectives/collectives.hpp"
#include "ringdp/collectives/shared_buffer.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/comm/communicator_cache.hpp"
#include "ringdp/error.hpp"
#include "ringdp/ringdp.h"
#include "ringdp/types.hpp"

struct ringdp_comm {
  explicit ringdp_comm(MPI_Comm comm) : communicator(comm) {}
  ringdp::Communicator communicator;
};

namespace {

thread_local std::string last_error;
thread_local int last_code = RINGDP_SUCCESS;

int fail(int code, std::string message) {
  last_error = std::move(message);
  last_code = code;
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
    last_code = RINGDP_SUCCESS;
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

// The C enumerator of a C++ algorithm: the inverse of to_cpp(ringdp_algorithm), found by
// trying every enumerator valid() accepts, so that a new algorithm needs no second table.
std::optional<ringdp_algorithm> to_c(ringdp::Algorithm algorithm) {
  for (std::underlying_type_t<ringdp_algorithm> v = RINGDP_AUTO;; ++v) {
    ringdp_algorithm candidate;
    std::memcpy(&candidate, &v, sizeof candidate);
    if (!valid(candidate)) return std::nullopt;
    if (to_cpp(candidate) == algorithm) return candidate;
  }
}

template <class T>
void run_allreduce(const ringdp::Communicator& comm, void* data, std::size_t count, ringdp_op op,
                   ringdp_algorithm algorithm) {
  ringdp::allreduce(comm, std::span<T>(static_cast<T*>(data), count), to_cpp(op),
                    to_cpp(algorithm));
}

// The reduction by element type; the arguments are checked (check_arguments) except `type`.
// Enum arguments not yet checked travel by reference: copying one is a read (see raw_value).
void run(const ringdp::Communicator& comm, void* data, std::size_t count,
         const ringdp_datatype& type, ringdp_op op, ringdp_algorithm algorithm) {
  switch (raw_value(type)) {
    case RINGDP_FLOAT32:
      return run_allreduce<float>(comm, data, count, op, algorithm);
    case RINGDP_FLOAT64:
      return run_allreduce<double>(comm, data, count, op, algorithm);
    case RINGDP_INT32:
      return run_allreduce<std::int32_t>(comm, data, count, op, algorithm);
    case RINGDP_INT64:
      return run_allreduce<std::int64_t>(comm, data, count, op, algorithm);
  }
  throw ringdp::InvalidArgument(
      fmt::format("unknown ringdp_datatype {} (expected RINGDP_FLOAT32, RINGDP_FLOAT64, "
                  "RINGDP_INT32 or RINGDP_INT64)",
                  raw_value(type)));
}

// Argument errors found before any communication. They depend only on the arguments, so
// ranks that pass the same arguments all return the same code.
int check_arguments(const char* function, const void* data, std::size_t count, const ringdp_op& op,
                    const ringdp_algorithm& algorithm) {
  if (data == nullptr && count != 0) {
    return fail(RINGDP_ERROR_NULL_ARGUMENT,
                fmt::format("{}: data is NULL with a nonzero count", function));
  }
  if (!valid(op)) {
    return fail(RINGDP_ERROR_INVALID_ARGUMENT,
                fmt::format("{}: unknown ringdp_op {} (expected RINGDP_SUM, RINGDP_AVERAGE, "
                            "RINGDP_MIN, RINGDP_MAX or RINGDP_PRODUCT)",
                            function, raw_value(op)));
  }
  if (!valid(algorithm)) {
    return fail(RINGDP_ERROR_INVALID_ARGUMENT,
                fmt::format("{}: unknown ringdp_algorithm {}", function, raw_value(algorithm)));
  }
  return RINGDP_SUCCESS;
}

// MPI_COMM_NULL, and in Open MPI (whose handles are pointers) the null pointer that
// MPI_Comm_f2c returns for a Fortran handle naming no communicator (a freed one).
bool names_no_communicator(MPI_Comm comm) {
  if (comm == MPI_COMM_NULL) return true;
  if constexpr (std::is_pointer_v<MPI_Comm>) return comm == nullptr;
  return false;
}

int allreduce_cached(const char* function, MPI_Comm comm, void* data, std::size_t count,
                     const ringdp_datatype& type, const ringdp_op& op,
                     const ringdp_algorithm& algorithm) {
  if (names_no_communicator(comm)) {
    return fail(RINGDP_ERROR_INVALID_ARGUMENT,
                fmt::format("{}: comm is MPI_COMM_NULL or a freed communicator", function));
  }
  if (const int code = check_arguments(function, data, count, op, algorithm); code != 0) {
    return code;
  }
  int inter = 0;
  if (MPI_Comm_test_inter(comm, &inter) != MPI_SUCCESS || inter != 0) {
    return fail(RINGDP_ERROR_INVALID_ARGUMENT,
                fmt::format("{}: comm is an intercommunicator", function));
  }
  return guarded([&] { run(ringdp::cached_communicator(comm), data, count, type, op, algorithm); });
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
  if (names_no_communicator(comm)) {
    return fail(RINGDP_ERROR_INVALID_ARGUMENT,
                "ringdp_comm_create: comm is MPI_COMM_NULL or a freed communicator");
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
  if (comm == nullptr) return fail(RINGDP_ERROR_NULL_ARGUMENT, "ringdp_allreduce: comm is NULL");
  if (const int code = check_arguments("ringdp_allreduce", data, count, op, algorithm);
      code != RINGDP_SUCCESS) {
    return code;
  }
  return guarded([&] { run(comm->communicator, data, count, type, op, algorithm); });
}

int ringdp_allreduce_comm(MPI_Comm comm, void* data, size_t count, ringdp_datatype type,
                          ringdp_op op, ringdp_algorithm algorithm) {
  return allreduce_cached("ringdp_allreduce_comm", comm, data, count, type, op, algorithm);
}

int ringdp_allreduce_comm_f(MPI_Fint comm, void* data, size_t count, ringdp_datatype type,
                            ringdp_op op, ringdp_algorithm algorithm) {
  return allreduce_cached("ringdp_allreduce_comm_f", MPI_Comm_f2c(comm), data, count, type, op,
                          algorithm);
}

int ringdp_algorithm_from_name(const char* name, ringdp_algorithm* out) {
  if (name == nullptr || out == nullptr) {
    return fail(RINGDP_ERROR_NULL_ARGUMENT, "ringdp_algorithm_from_name: name or out is NULL");
  }
  std::optional<ringdp_algorithm> algorithm;
  const int code = guarded([&] { algorithm = to_c(ringdp::parse_algorithm(name)); });
  if (code != RINGDP_SUCCESS) return code;
  if (!algorithm) {
    return fail(RINGDP_ERROR_INTERNAL,
                fmt::format("ringdp_algorithm_from_name: '{}' has no C enumerator", name));
  }
  *out = *algorithm;
  return RINGDP_SUCCESS;
}

size_t ringdp_error_string(int code, char* buffer, size_t size) {
  const std::string_view text = code == last_code && code != RINGDP_SUCCESS && !last_error.empty()
                                    ? std::string_view(last_error)
                                    : std::string_view(ringdp_error_message(code));
  if (buffer != nullptr && size > 0) {
    const std::size_t n = std::min(text.size(), size - 1);
    std::memcpy(buffer, text.data(), n);
    buffer[n] = '\0';
  }
  return text.size();
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
