#pragma once
/// \file
/// MPI initialisation and finalisation, owned by ringdp only when the caller asks for it.

namespace ringdp {

/// MPI thread support levels, in increasing order (MPI_THREAD_SINGLE .. MPI_THREAD_MULTIPLE).
enum class ThreadLevel { Single, Funneled, Serialized, Multiple };

/// The name of a thread level: "single", "funneled", "serialized", "multiple".
[[nodiscard]] const char* to_string(ThreadLevel level) noexcept;

/// RAII owner of MPI_Init_thread / MPI_Finalize.
///
/// If MPI is already initialised (by the caller), the constructor does nothing and the
/// destructor does not finalise. Construct one per process, on the main thread, before
/// any other ringdp call. Not copyable, not movable.
class Environment {
 public:
  /// Initialises MPI asking for `required`; what MPI granted is in provided().
  explicit Environment(ThreadLevel required = ThreadLevel::Serialized);
  Environment(int& argc, char**& argv, ThreadLevel required = ThreadLevel::Serialized);
  ~Environment();

  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;
  Environment(Environment&&) = delete;
  Environment& operator=(Environment&&) = delete;

  /// The thread level MPI granted (may be lower than requested).
  [[nodiscard]] ThreadLevel provided() const noexcept { return provided_; }
  /// The thread level that was asked for.
  [[nodiscard]] ThreadLevel requested() const noexcept { return requested_; }
  /// True when this object called MPI_Init_thread (and so will call MPI_Finalize).
  [[nodiscard]] bool owns_mpi() const noexcept { return owns_; }

  [[nodiscard]] static bool initialized() noexcept;
  [[nodiscard]] static bool finalized() noexcept;
  /// The thread level of the running MPI (MPI_Query_thread).
  [[nodiscard]] static ThreadLevel thread_level();

 private:
  void init(int* argc, char*** argv);

  ThreadLevel requested_;
  ThreadLevel provided_ = ThreadLevel::Single;
  bool owns_ = false;
};

/// This process's rank in MPI_COMM_WORLD, or -1 when MPI is not initialised (or finalised).
[[nodiscard]] int world_rank() noexcept;

/// Throws ringdp::Error, naming what `what` needs and what MPI granted, when the running
/// MPI's thread level is below `needed`. Call on every rank (the level is the same on all).
void require_thread_level(ThreadLevel needed, const char* what);

}  // namespace ringdp
