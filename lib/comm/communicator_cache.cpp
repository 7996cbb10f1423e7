#include "ringdp/comm/communicator_cache.hpp"

#include <cstdio>
#include <memory>
#include <mutex>
#include <vector>

#include "ringdp/comm/mpi_check.hpp"
#include "ringdp/error.hpp"

// PMPI_ throughout: the drop-in library (lib/interpose) links this code and interposes the
// MPI_ names; its own cache must never go through them.

namespace ringdp {
namespace {

// The keyval, created at the first call (not at load time: MPI may not be initialised
// then) and freed by release_cached_communicators().
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

// Deletes the attribute from every cached communicator but `skip`, then frees the keyval.
void release_all(MPI_Comm skip) noexcept {
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
    if (user == skip) continue;
    // The delete callback frees the duplicate.
    if (PMPI_Comm_delete_attr(user, keyval) != MPI_SUCCESS) {
      std::fprintf(stderr, "ringdp: could not free a cached communicator\n");
    }
  }
  // A communicator skipped above keeps its attribute until MPI deletes it (freeing a
  // keyval that is still in use only marks it; MPI frees it with the last attribute).
  PMPI_Comm_free_keyval(&keyval);
  keyval = MPI_KEYVAL_INVALID;
}

// MPI_Finalize deletes the attributes of MPI_COMM_SELF first, while MPI is fully alive
// (MPI-2.2 and later: the portable "at finalize" hook). The duplicates of MPI_COMM_WORLD
// and of communicators the user never freed are freed here; later in MPI_Finalize they
// could no longer be. Open MPI forbids deleting attributes of MPI_COMM_SELF from inside
// this callback, so a duplicate cached on MPI_COMM_SELF itself is left to the same pass
// (its delete callback runs there).
int at_finalize(MPI_Comm /*self*/, int /*keyval*/, void* /*value*/, void* /*extra_state*/) {
  release_all(MPI_COMM_SELF);
  return MPI_SUCCESS;
}

int get_keyval() {
  const std::lock_guard lock(keyval_mutex);
  if (keyval == MPI_KEYVAL_INVALID) {
    // MPI_COMM_NULL_COPY_FN: a duplicate of the user's communicator does not inherit the
    // attribute; it gets its own ringdp duplicate at its first call, because two
    // communicators sharing one ringdp duplicate could have their messages interleave.
    RINGDP_MPI_CHECK(
        PMPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, delete_duplicate, &keyval, nullptr));
    int hook = MPI_KEYVAL_INVALID;
    RINGDP_MPI_CHECK(PMPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, at_finalize, &hook, nullptr));
    RINGDP_MPI_CHECK(PMPI_Comm_set_attr(MPI_COMM_SELF, hook, nullptr));
    // The attribute keeps the hook's keyval alive until MPI deletes it.
    RINGDP_MPI_CHECK(PMPI_Comm_free_keyval(&hook));
  }
  return keyval;
}

}  // namespace

Communicator& cached_communicator(MPI_Comm user) {
  const int key = get_keyval();
  void* value = nullptr;
  int found = 0;
  RINGDP_MPI_CHECK(PMPI_Comm_get_attr(user, key, &value, &found));
  if (found != 0) return *static_cast<Communicator*>(value);

  auto duplicate = std::make_unique<Communicator>(user);
  {
    const std::lock_guard lock(live_mutex);
    live.push_back(user);
  }
  const int code = PMPI_Comm_set_attr(user, key, duplicate.get());
  if (code != MPI_SUCCESS) {
    forget(user);
    check_mpi(code, "PMPI_Comm_set_attr");
  }
  return *duplicate.release();  // owned by the attribute from now on
}

void release_cached_communicators() noexcept { release_all(MPI_COMM_NULL); }

std::size_t cached_communicator_count() noexcept {
  const std::lock_guard lock(live_mutex);
  return live.size();
}

}  // namespace ringdp
