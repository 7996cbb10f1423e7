// RINGDP_TUNING: the tuning table, read and parsed with the other RINGDP_* settings.
//
// Auto's choice and the ring's segment size must be the same on every rank of a
// collective, or the ranks run different algorithms (or cut the same chunk into different
// segments) and deadlock. Each rank reads the file itself (ringdp/comm/settings.hpp), and
// when a Communicator is built the ranks agree that each read it cleanly and that all read
// the same text (agree_on_settings), so every rank decides alike.

#include "ringdp/collectives/tuning.hpp"
#include "ringdp/comm/settings.hpp"

namespace ringdp {

const TuningTable* tuning_from_environment() { return settings().tuning.get(); }

}  // namespace ringdp
