#include "ringdp/train/non_finite.hpp"

namespace ringdp::train {

NonFiniteError::NonFiniteError(std::int64_t step, int layer, int loss_rank, std::string cause)
    : Error(-1, std::move(cause), true), step_(step), layer_(layer), loss_rank_(loss_rank) {}

}  // namespace ringdp::train
