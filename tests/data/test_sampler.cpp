// DistributedSampler: the plan of which rows go to which rank, checked across real ranks.
#include <mpi.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <numeric>
#include <set>

#include "data_fixture.hpp"
#include "mpi_test.hpp"
#include "ringdp/data/sampler.hpp"
#include "ringdp/error.hpp"

using ringdp::data::DistributedSampler;
using ringdp::data::RankEpoch;
using ringdp::data::SamplerOptions;
using ringdp::data::SamplingMode;
using ringdp::test::all_ranks;
using ringdp::test::gather_all;

namespace {

std::vector<std::uint64_t> iota_vector(std::size_t n) {
  std::vector<std::uint64_t> v(n);
  std::iota(v.begin(), v.end(), std::uint64_t{0});
  return v;
}

std::vector<std::uint64_t> batch_of(const RankEpoch& plan, std::size_t step, std::size_t b) {
  const std::size_t begin = std::min(plan.order.size(), step * b);
  const std::size_t end = std::min(plan.order.size(), (step + 1) * b);
  return {plan.order.begin() + static_cast<std::ptrdiff_t>(begin),
          plan.order.begin() + static_cast<std::ptrdiff_t>(end)};
}

std::vector<std::uint64_t> sorted(std::vector<std::uint64_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

TEST_CASE(
    "global: one epoch's union is 0..N-1, padding wraps the permutation, batch i is the "
    "1-rank batch i of k x B") {
  const int k = ringdp::test::world_size();
  const int r = ringdp::test::world_rank();
  const auto ku = static_cast<std::size_t>(k);
  bool ok = true;
  for (std::size_t n :
       {ku, ku + 1, std::size_t{7}, std::size_t{64}, std::size_t{97}, std::size_t{1000}}) {
    if (n < ku) continue;
    for (std::uint64_t seed : {0ULL, 42ULL}) {
      for (std::size_t b : {std::size_t{1}, std::size_t{8}, std::size_t{64}}) {
        for (std::uint64_t epoch : {0ULL, 3ULL}) {
          SamplerOptions o;
          o.batch_size = b;
          o.seed = seed;
          DistributedSampler mine(n, 10, k, SamplingMode::Global, o);
          const RankEpoch plan = mine.epoch(r, epoch);
          // Real samples of all ranks: each index exactly once.
          std::vector<std::uint64_t> real(
              plan.order.begin(), plan.order.begin() + static_cast<std::ptrdiff_t>(plan.real));
          ok = ok && sorted(gather_all(real)) == iota_vector(n);
          // Every rank has ceil(N/k) samples: M - N padding entries in all.
          const std::size_t per_rank = (n + ku - 1) / ku;
          ok = ok && plan.order.size() == per_rank;
          // The reference: a 1-rank run with k x B; its order is the permutation itself.
          SamplerOptions big = o;
          big.batch_size = b * ku;
          DistributedSampler single(n, 10, 1, SamplingMode::Global, big);
          const RankEpoch whole = single.epoch(0, epoch);
          ok = ok && mine.steps_per_epoch() == single.steps_per_epoch() && whole.order.size() == n;
          for (std::size_t step = 0; step < mine.steps_per_epoch(); ++step) {
            const auto united = sorted(gather_all(batch_of(plan, step, b)));
            // Batch i of the padded 1-rank stream: positions [i kB, (i+1) kB) of the
            // permutation extended by wrap-around to M = k ceil(N/k) entries.
            std::vector<std::uint64_t> expected;
            for (std::size_t p = step * b * ku; p < std::min((step + 1) * b * ku, per_rank * ku);
                 ++p) {
              expected.push_back(whole.order[p % n]);
            }
            ok = ok && united == sorted(expected);
          }
        }
      }
    }
  }
  CHECK(all_ranks(ok));
}

TEST_CASE(
    "global: the same seed gives the same order on every rank and every construction; "
    "epochs and seeds change it") {
  const int k = ringdp::test::world_size();
  SamplerOptions o;
  o.seed = 7;
  DistributedSampler a(1000, 10, k, SamplingMode::Global, o);
  DistributedSampler b(1000, 10, k, SamplingMode::Global, o);
  const RankEpoch e0 = a.epoch(0, 0);
  CHECK(all_ranks(e0.order == b.epoch(0, 0).order));
  CHECK(ringdp::test::same_on_all_ranks(
      ringdp::test::hash_bytes(e0.order.data(), e0.order.size() * sizeof(std::uint64_t))));
  CHECK(all_ranks(e0.order != a.epoch(0, 1).order));
  o.seed = 8;
  DistributedSampler c(1000, 10, k, SamplingMode::Global, o);
  CHECK(all_ranks(e0.order != c.epoch(0, 0).order));
  // shuffle off: rank 0 sees 0, k, 2k, ...
  o.shuffle = false;
  DistributedSampler plain(1000, 10, k, SamplingMode::Global, o);
  const RankEpoch p0 = plain.epoch(0, 5);
  bool strided = true;
  for (std::size_t j = 0; j < p0.real; ++j)
    strided = strided && p0.order[j] == j * static_cast<std::size_t>(k);
  CHECK(all_ranks(strided));
}

TEST_CASE("global drop_last: only full batches, each index at most once") {
  const int k = ringdp::test::world_size();
  const auto ku = static_cast<std::size_t>(k);
  bool ok = true;
  for (std::size_t n : {std::size_t{50}, std::size_t{97}, std::size_t{1000}}) {
    SamplerOptions o;
    o.batch_size = 8;
    o.drop_last = true;
    o.seed = 3;
    DistributedSampler s(n, 10, k, SamplingMode::Global, o);
    const RankEpoch plan = s.epoch(ringdp::test::world_rank(), 2);
    ok = ok && plan.order.size() == s.steps_per_epoch() * 8 && plan.real == plan.order.size();
    const auto all = sorted(gather_all(plan.order));
    ok = ok && all.size() == n / (8 * ku) * 8 * ku &&
         std::adjacent_find(all.begin(), all.end()) == all.end();
  }
  CHECK(all_ranks(ok));
}

TEST_CASE("shard: blocks dealt once, each sample on exactly one rank, rows only from own blocks") {
  const int k = ringdp::test::world_size();
  const int r = ringdp::test::world_rank();
  const auto ku = static_cast<std::size_t>(k);
  bool ok = true;
  auto expect = [&](bool so_far, bool cond, int line) {
    if (!cond) UNSCOPED_INFO("shard check " << line << " failed");
    return so_far && cond;
  };
  for (std::size_t n : {std::size_t{50}, std::size_t{97}, std::size_t{1000}}) {
    for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, std::size_t{10}}) {
      if ((n + chunk - 1) / chunk < ku) continue;
      for (std::uint64_t seed : {1ULL, 99ULL}) {
        SamplerOptions o;
        o.batch_size = 6;
        o.seed = seed;
        o.shuffle_chunks = 3;
        DistributedSampler s(n, chunk, k, SamplingMode::Shard, o);
        const auto& own = s.owned_blocks(r);
        std::vector<std::uint64_t> own64(own.begin(), own.end());
        const std::size_t blocks = (n + chunk - 1) / chunk;
        ok = expect(ok, sorted(gather_all(own64)) == iota_vector(blocks), 1);
        const std::set<std::size_t> own_set(own.begin(), own.end());
        std::vector<std::uint64_t> first_epoch;
        for (std::uint64_t epoch : {0ULL, 1ULL}) {
          const RankEpoch plan = s.epoch(r, epoch);
          std::vector<std::uint64_t> real(
              plan.order.begin(), plan.order.begin() + static_cast<std::ptrdiff_t>(plan.real));
          ok = expect(ok, sorted(gather_all(real)) == iota_vector(n), 2);
          for (std::uint64_t row : plan.order) ok = expect(ok, own_set.count(row / chunk) == 1, 3);
          // Same number of samples (and so of steps) on every rank: padding to the largest.
          std::uint64_t size = plan.order.size();
          std::uint64_t low = 0;
          std::uint64_t high = 0;
          MPI_Allreduce(&size, &low, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
          MPI_Allreduce(&size, &high, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
          ok = expect(ok, low == high, 4);
          // Windows: consecutive, covering [0, real), each the rows of its own blocks.
          std::size_t pos = 0;
          for (const auto& w : plan.windows) {
            ok = expect(ok, w.begin == pos && w.blocks.size() <= 3, 5);
            std::vector<std::uint64_t> rows;
            for (std::size_t blk : w.blocks)
              for (std::size_t row = blk * chunk; row < std::min(n, (blk + 1) * chunk); ++row)
                rows.push_back(row);
            ok = expect(
                ok,
                sorted({plan.order.begin() + static_cast<std::ptrdiff_t>(w.begin),
                        plan.order.begin() + static_cast<std::ptrdiff_t>(w.end)}) == sorted(rows),
                6);
            pos = w.end;
          }
          ok = expect(ok, pos == plan.real, 7);
          // Padding repeats the last window's rows.
          for (std::size_t p = plan.real; p < plan.order.size(); ++p) {
            const auto& last = plan.windows.back();
            ok = expect(
                ok,
                plan.order[p] == plan.order[last.begin + (p - plan.real) % (last.end - last.begin)],
                8);
          }
          if (epoch == 0)
            first_epoch = plan.order;
          else if (plan.order.size() > 2 * chunk)
            ok = expect(ok, plan.order != first_epoch, 9);
        }
      }
    }
  }
  CHECK(all_ranks(ok));
}

TEST_CASE("evaluation: every sample exactly once, no padding, equal step counts") {
  const int k = ringdp::test::world_size();
  const int r = ringdp::test::world_rank();
  bool ok = true;
  for (SamplingMode mode : {SamplingMode::Global, SamplingMode::Shard}) {
    for (std::size_t n : {std::size_t{53}, std::size_t{100}}) {
      SamplerOptions o;
      o.batch_size = 4;
      o.evaluation = true;
      DistributedSampler s(n, 5, k, mode, o);
      const RankEpoch plan = s.epoch(r, 0);
      ok = ok && plan.real == plan.order.size();
      ok = ok && sorted(gather_all(plan.order)) == iota_vector(n);
      ok = ok && plan.order.size() <= s.steps_per_epoch() * 4;
      std::uint64_t steps = s.steps_per_epoch();
      std::uint64_t high = 0;
      MPI_Allreduce(&steps, &high, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
      ok = ok && high == steps;
    }
  }
  CHECK(all_ranks(ok));
}

TEST_CASE("share(): each logical rank's positions and real count, as its plan of every epoch") {
  // The sampler works the share out without building a plan; the plans are the
  // independent reference. Every mode, padding, drop_last and evaluation; awkward sizes
  // (primes, a short last block, fewer blocks per rank than a window); several epochs.
  bool ok = true;
  for (SamplingMode mode : {SamplingMode::Global, SamplingMode::Shard}) {
    for (int k : {1, 2, 3, 5}) {
      for (std::size_t n : {std::size_t{53}, std::size_t{97}, std::size_t{203}}) {
        for (int variant = 0; variant < 4; ++variant) {
          SamplerOptions o;
          o.batch_size = 4;  // drop_last keeps a full batch on 5 ranks of 53 samples
          o.seed = 3;
          o.shuffle_chunks = 2;
          o.drop_last = variant == 1;
          o.evaluation = variant == 2;
          o.shuffle = variant != 3;
          const DistributedSampler s(n, 8, k, mode, o);
          for (int r = 0; r < k; ++r) {
            for (std::uint64_t epoch : {0ULL, 1ULL, 4ULL}) {
              const RankEpoch plan = s.epoch(r, epoch);
              const ringdp::data::RankShare share = s.share(r);
              const bool same = share.positions == plan.order.size() && share.real == plan.real;
              if (!same) {
                UNSCOPED_INFO(to_string(mode) << " k " << k << " n " << n << " variant " << variant
                                              << " rank " << r << " epoch " << epoch);
              }
              ok = ok && same;
            }
          }
        }
      }
    }
  }
  CHECK(all_ranks(ok));
  CHECK_THROWS_AS(DistributedSampler(10, 2, 2, SamplingMode::Global, {}).share(2),
                  ringdp::InvalidArgument);
}

TEST_CASE("sampler rejects impossible plans") {
  SamplerOptions o;
  CHECK_THROWS_AS(DistributedSampler(3, 1, 4, SamplingMode::Global, o), ringdp::InvalidArgument);
  CHECK_THROWS_AS(DistributedSampler(100, 60, 3, SamplingMode::Shard, o), ringdp::InvalidArgument);
  CHECK_THROWS_AS(DistributedSampler(100, 10, 2, SamplingMode::Auto, o), ringdp::InvalidArgument);
  o.batch_size = 0;
  CHECK_THROWS_AS(DistributedSampler(100, 10, 2, SamplingMode::Global, o), ringdp::InvalidArgument);
  CHECK(DistributedSampler::resolve(SamplingMode::Auto, 100, 100, 10, 2) == SamplingMode::Global);
  CHECK(DistributedSampler::resolve(SamplingMode::Auto, 101, 100, 10, 2) == SamplingMode::Shard);
  CHECK(DistributedSampler::resolve(SamplingMode::Auto, 101, 100, 1, 2) == SamplingMode::Global);
}
