#include "comm_cache.hpp"

#include <cstdio>
#include <memory>
#include <mutex>
#include <vector>

#include "ringdp/error.hpp"
#include "ringdp/comm/mpi_check.hpp"

namespace ringdp::interpose {
namespace {

// The keyval, created at the first served call (not at load time: MPI may not be
// initialised then) and freed at MPI_Finalize.
std::mutex keyval_mutex;
int keyval = MPI_KEYVAL_INVALID;

// User communicators that carry a duplicate, so that MPI_Finalize can free the ones the
// user never freed. Attribute callbacks keep it exact: one entry per live attribute.
std::mutex live_mutex;
std::vector<MPI_Comm> live;

void forget(MPI_Comm user) noexcept {
  const std::lock_guard lock(live_mutex);
  for (auto it = live.begin(); it != live.end(); ++it) {
    if (*it == user) {
      live.erase(it);
      return;
    }
  }
}

// Runs inside MPI_Comm_free(user) (or MPI_Comm_delete_attr from release_all()). Freeing
// another communicator here is allowed; ~Communicator frees the duplicate unless MPI is
// already finalised, in which case the handle died with MPI and freeing it would be an
// error. Must not throw into MPI.
int delete_duplicate(MPI_Comm user, int /*keyval*/, void* value, void* /*extra_state*/) {
  forget(user);
  delete static_cast<Communicator*>(value);
  return MPI_SUCCESS;
}

int get_keyval() {
  const std::lock_guard lock(keyval_mutex);
  if (keyval == MPI_KEYVAL_INVALID) {
    // MPI_COMM_NULL_COPY_FN: a duplicate of the user's communicator does not inherit the
    // attribute; it gets its own ringdp duplicate at its first served call, because two
    // communicators sharing one ringdp duplicate could have their messages interleave.
    RINGDP_MPI_CHECK(
        PMPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, delete_duplicate, &keyval, nullptr));
  }
  return keyval;
}

}  // namespace

const Communicator& communicator_for(MPI_Comm user) {
  const int key = get_keyval();
  void* value = nullptr;
  int found = 0;
  RINGDP_MPI_CHECK(PMPI_Comm_get_attr(user, key, &value, &found));
  if (found != 0) return *static_cast<const Communicator*>(value);

  auto duplicate = std::make_unique<Communicator>(user);
  {
    const std::lock_guard lock(live_mutex);
    live.push_back(user);
  }
  const int code = PMPI_Comm_set_attr(user, key, duplicate.get());
  if (code != MPI_SUCCESS) {
    forget(user);
    ringdp::check_mpi(code, "PMPI_Comm_set_attr");
  }
  return *duplicate.release();  // owned by the attribute from now on
}

void release_all() noexcept {
  // Taken out of the list (a swap, which cannot throw) before the callbacks run, since
  // each callback locks the list to remove its entry.
  std::vector<MPI_Comm> users;
  {
    const std::lock_guard lock(live_mutex);
    users.swap(live);
  }
  const std::lock_guard lock(keyval_mutex);
  if (keyval == MPI_KEYVAL_INVALID) return;
  for (MPI_Comm user : users) {
    // The delete callback frees the duplicate.
    if (PMPI_Comm_delete_attr(user, keyval) != MPI_SUCCESS) {
      std::fprintf(stderr, "ringdp interpose: could not free a cached communicator\n");
    }
  }
  PMPI_Comm_free_keyval(&keyval);
  keyval = MPI_KEYVAL_INVALID;
}

}  // namespace ringdp::interpose
