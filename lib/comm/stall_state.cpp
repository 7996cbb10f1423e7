#include "stall_state.hpp"

#include <cstdio>

#include "ringdp/comm/environment.hpp"
#include "ringdp/comm/mpi_check.hpp"

namespace ringdp::detail {

std::unique_ptr<StallState, StallStateDeleter> make_stall_state(MPI_Comm comm, int rank, int size) {
  auto channel = std::make_shared<StallChannel>();
  channel->rank = rank;
  channel->size = size;
  // Made whatever the settings say: the duplicate is collective, and a rank whose
  // environment differed would otherwise leave the others in MPI_Comm_dup.
  RINGDP_MPI_CHECK(MPI_Comm_dup(comm, &channel->side));
  RINGDP_MPI_CHECK(MPI_Comm_set_errhandler(channel->side, MPI_ERRORS_RETURN));
  std::unique_ptr<StallState, StallStateDeleter> state(new StallState);
  state->id = channel->next_id++;
  state->channel = std::move(channel);
  return state;
}

std::unique_ptr<StallState, StallStateDeleter> make_stall_state(const StallState& parent) {
  std::unique_ptr<StallState, StallStateDeleter> state(new StallState);
  state->channel = parent.channel;
  // Duplicates are made collectively, in the same order on every rank: so are the ids.
  state->id = state->channel->next_id++;
  return state;
}

void StallChannel::settle_sends() {
  for (auto it = sends.begin(); it != sends.end();) {
    int done = 0;
    RINGDP_MPI_CHECK(MPI_Test(&(*it)->request, &done, MPI_STATUS_IGNORE));
    it = done != 0 ? sends.erase(it) : it + 1;
  }
}

StallChannel::~StallChannel() {
  if (side == MPI_COMM_NULL || Environment::finalized()) return;
  // Messages that arrived after the last wait that read them (a report rank 0 was no
  // longer waiting for, an answer to a rank whose stall had ended): read and dropped, so
  // the channel is empty when it is freed.
  for (;;) {
    int flag = 0;
    MPI_Status status;
    if (MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, side, &flag, &status) != MPI_SUCCESS || flag == 0) {
      break;
    }
    StallMessage dropped;
    if (MPI_Recv(&dropped, sizeof dropped, MPI_BYTE, status.MPI_SOURCE, status.MPI_TAG, side,
                 MPI_STATUS_IGNORE) != MPI_SUCCESS) {
      break;
    }
  }
  // Sends of 80 bytes go out eagerly and are complete long before this. Should one not
  // be, MPI_Request_free lets it finish on its own; its buffer must outlive it, so it is
  // deliberately leaked (80 bytes, never seen in practice).
  for (auto& send : sends) {
    int done = 0;
    if (MPI_Test(&send->request, &done, MPI_STATUS_IGNORE) == MPI_SUCCESS && done == 0) {
      MPI_Request_free(&send->request);
      static_cast<void>(send.release());
    }
  }
  if (MPI_Comm_free(&side) != MPI_SUCCESS) {
    std::fprintf(stderr, "ringdp: rank %d: MPI_Comm_free of the stall report channel failed\n",
                 rank);
  }
}

void StallStateDeleter::operator()(StallState* state) const noexcept { delete state; }

}  // namespace ringdp::detail
