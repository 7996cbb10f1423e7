#include "ringdp/parallel/grid.hpp"

#include <fmt/format.h>

#include <array>
#include <cstdint>

#include "ringdp/comm/agreement.hpp"
#include "ringdp/error.hpp"

namespace ringdp::parallel {

Grid::Shape Grid::checked_shape(const Communicator& comm, int tensor, int pipeline) {
  // The sizes come from each rank's own arguments (a command line): agreed first, so that
  // the checks below see the same values, and so throw alike, on every rank.
  const std::array<std::int64_t, 2> mine = {tensor, pipeline};
  agree_equal(
      comm, mine,
      [](const Disagreement& d) {
        return fmt::format(
            "parallel::Grid: rank {} asks for tensor {} x pipeline {}, rank 0 for "
            "tensor {} x pipeline {} (ranks that differ: {})",
            d.rank, d.theirs[0], d.theirs[1], d.reference[0], d.reference[1], d.ranks_text());
      },
      ErrorKind::InvalidArgument);
  if (tensor < 1 || pipeline < 1) {
    throw InvalidArgument(-1,
                          fmt::format("parallel::Grid: tensor {} x pipeline {}: both sizes "
                                      "must be at least 1",
                                      tensor, pipeline),
                          true);
  }
  const int per_replica = tensor * pipeline;
  if (comm.size() % per_replica != 0) {
    throw InvalidArgument(
        -1,
        fmt::format("parallel::Grid: tensor {} x pipeline {} = {} ranks per model replica do "
                    "not divide the {} ranks (the data dimension would not be whole)",
                    tensor, pipeline, per_replica, comm.size()),
        true);
  }
  const int data = comm.size() / per_replica;
  const int r = comm.rank();
  return {data, tensor, pipeline,
          GridCoordinates{
              .data = (r / tensor) % data, .tensor = r % tensor, .pipeline = r / (tensor * data)}};
}

Grid::Grid(const Communicator& comm, int tensor, int pipeline)
    : Grid(comm, checked_shape(comm, tensor, pipeline)) {}

// Each split: ranks sharing the other two coordinates form a group, ordered by their own.
Grid::Grid(const Communicator& comm, const Shape& s)
    : world_(comm.duplicate()),
      data_size_(s.data),
      tensor_size_(s.tensor),
      pipeline_size_(s.pipeline),
      coordinates_(s.at),
      data_(world_.split(s.at.tensor + s.tensor * s.at.pipeline, s.at.data)),
      tensor_(world_.split(s.at.data + s.data * s.at.pipeline, s.at.tensor)),
      pipeline_(world_.split(s.at.tensor + s.tensor * s.at.data, s.at.pipeline)),
      model_(world_.split(s.at.data, s.at.tensor + s.tensor * s.at.pipeline)) {
  world_.set_check_mode(comm.check_mode());
  for (Communicator* group : {&data_, &tensor_, &pipeline_, &model_}) {
    group->set_check_mode(comm.check_mode());
  }
}

int Grid::rank_of(const GridCoordinates& at) const {
  if (at.data < 0 || at.data >= data_size_ || at.tensor < 0 || at.tensor >= tensor_size_ ||
      at.pipeline < 0 || at.pipeline >= pipeline_size_) {
    throw InvalidArgument(
        fmt::format("parallel::Grid: coordinates (data {}, tensor {}, pipeline {}) outside the {}",
                    at.data, at.tensor, at.pipeline, describe()));
  }
  return at.tensor + tensor_size_ * (at.data + data_size_ * at.pipeline);
}

GridCoordinates Grid::coordinates_of(int rank) const {
  if (rank < 0 || rank >= world_.size()) {
    throw InvalidArgument(fmt::format("parallel::Grid: rank {} outside the {}", rank, describe()));
  }
  return {.data = (rank / tensor_size_) % data_size_,
          .tensor = rank % tensor_size_,
          .pipeline = rank / (tensor_size_ * data_size_)};
}

std::string Grid::describe() const {
  return fmt::format("{} ranks = data {} x tensor {} x pipeline {}", world_.size(), data_size_,
                     tensor_size_, pipeline_size_);
}

}  // namespace ringdp::parallel
