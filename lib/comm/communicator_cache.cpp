#include "ringdp/comm/communicator_cache.hpp"

#include <cstdio>
#include <memory>
#include <mutex>
#include <vector>

#include "ringdp/comm/mpi_check.hpp"
#include "ringdp/error.hpp"

namespace ringdp {
namespace {

// The keyvals are created at the first call (not at load time: MPI may not be initialised
// then). `keyval` marks user communicators, its value the cached Communicator;
// `finalize_keyval` is set once on MPI_COMM_SELF, and its delete callback frees the cache at
// the start of MPI_Finalize.
std::mutex keyval_mutex;
int keyval = MPI_KEYVAL_INVALID;
int finalize_keyval = MPI_KEYVAL_INVALID;

// User communicators that carry a duplicate, in the order they got it, so that MPI_Finalize
// can free the ones the user never freed. Attribute callbacks keep it exact: one entry per
// live attribute.
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

// Frees every duplicate still cached by deleting the attribute from its user communicator,
// oldest first: freeing a communicator may be collective, and every rank of a communicator
// created its duplicates in the order of its collective calls, so no two ranks wait on each
// other in different orders. Then frees the keyval.
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
    if (MPI_Comm_delete_attr(user, keyval) != MPI_SUCCESS) {
      std::fprintf(stderr, "ringdp: could not free a cached communicator\n");
    }
  }
  MPI_Comm_free_keyval(&keyval);
  keyval = MPI_KEYVAL_INVALID;
}

// MPI_Finalize deletes MPI_COMM_SELF's attributes first, while MPI is fully alive
// (MPI_Finalized still says false): the moment to free the cached duplicates of
// MPI_COMM_WORLD, MPI_COMM_SELF and of communicators never freed. An MPI that deletes
// MPI_COMM_WORLD's attributes at all does so later, when it may count as finalised and
// ~Communicator would have to leave the duplicate to MPI.
int release_at_finalize(MPI_Comm /*self*/, int /*keyval*/, void* /*value*/, void* /*extra*/) {
  release_all();
  return MPI_SUCCESS;
}

int get_keyval() {
  const std::lock_guard lock(keyval_mutex);
  if (keyval == MPI_KEYVAL_INVALID) {
    // MPI_COMM_NULL_COPY_FN: a duplicate of the user's communicator does not inherit the
    // attribute (see cached_communicator()).
    RINGDP_MPI_CHECK(
        MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, delete_duplicate, &keyval, nullptr));
  }
  if (finalize_keyval == MPI_KEYVAL_INVALID) {
    // Set once per process: setting it again would run its delete callback (which takes
    // keyval_mutex) for the old value.
    RINGDP_MPI_CHECK(MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, release_at_finalize,
                                            &finalize_keyval, nullptr));
    const int code = MPI_Comm_set_attr(MPI_COMM_SELF, finalize_keyval, nullptr);
    if (code != MPI_SUCCESS) {
      MPI_Comm_free_keyval(&finalize_keyval);
      finalize_keyval = MPI_KEYVAL_INVALID;
      check_mpi(code, "MPI_Comm_set_attr");
    }
  }
  return keyval;
}

}  // namespace

const Communicator& cached_communicator(MPI_Comm user) {
  const int key = get_keyval();
  void* value = nullptr;
  int found = 0;
  RINGDP_MPI_CHECK(MPI_Comm_get_attr(user, key, &value, &found));
  if (found != 0) return *static_cast<const Communicator*>(value);

  auto duplicate = std::make_unique<Communicator>(user);
  {
    const std::lock_guard lock(live_mutex);
    live.push_back(user);
  }
  const int code = MPI_Comm_set_attr(user, key, duplicate.get());
  if (code != MPI_SUCCESS) {
    forget(user);
    check_mpi(code, "MPI_Comm_set_attr");
  }
  return *duplicate.release();  // owned by the attribute from now on
}

std::size_t cached_communicator_count() noexcept {
  const std::lock_guard lock(live_mutex);
  return live.size();
}

}  // namespace ringdp
