// ringdp.GradientReducer: the C++ GradientReducer over a list of float32 numpy arrays.
//
// What the binding adds to the C++ class is that no rank is left waiting. In C++, a rank
// that leaves a bucket unsubmitted gets an error from wait_all() while the ranks that did
// submit it wait for its reduction for ever. Here wait_all() submits every array not
// submitted yet (every rank reduces every array in every step), and submit() never raises:
// an unknown or repeated index is recorded, and wait_all() agrees on what failed, so that
// every rank raises the same error, or none does.

#include <fmt/format.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "bindings.hpp"
#include "comm.hpp"
#include "errors.hpp"
#include "ringdp/collectives/gradient_reducer.hpp"
#include "ringdp/comm/environment.hpp"

namespace ringdp::python {
namespace {

class Reducer {
 public:
  Reducer(const py::sequence& arrays, const std::string& op, const std::string& algorithm,
          std::optional<std::size_t> fusion_bytes, bool pace_while_computing,
          const py::object& comm)
      : arrays_(arrays) {
    const Communicator& c = communicator(comm);
    ArgumentCheck check;
    std::vector<std::span<float>> buckets;
    ReducerOptions options;
    options.pace_while_computing = pace_while_computing;
    if (fusion_bytes) options.fusion_bytes = *fusion_bytes;
    check.run([&] {
      options.op = parse_reduce_op(op);
      options.algorithm = parse_algorithm(algorithm);
      check_op_supports(options.op, DataType::Float32);
      for (std::size_t i = 0; i < arrays_.size(); ++i) {
        const std::string what = fmt::format("GradientReducer: array {}", i);
        const ArrayView view = array_view(arrays_[i], Access::Write, what.c_str());
        if (view.type != DataType::Float32) {
          throw ArgumentError(PyClass::Type,
                              fmt::format("{} has dtype {}; the reducer takes float32 arrays", what,
                                          to_string(view.type)));
        }
        buckets.push_back(view.span<float>());
      }
    });
    const py::gil_scoped_release released;
    check.agree(c);
    // Its own duplicate for the agreement of wait_all(), so that the reducer does not
    // depend on the life of the cached one (freed with the caller's communicator).
    comm_ = std::make_unique<Communicator>(c.duplicate());
    reducer_ = std::make_unique<GradientReducer>(*comm_, std::move(buckets), options);
    submitted_.assign(reducer_->size(), 0);
  }

  // A step left in flight (an exception between submit() and wait_all()) is finished, so
  // that the other ranks' reductions of it find this rank; its errors are dropped.
  ~Reducer() {
    if (std::find(submitted_.begin(), submitted_.end(), 1) == submitted_.end()) return;
    if (Environment::finalized()) return;  // nothing can be finished any more
    try {
      for (std::size_t i = 0; i < submitted_.size(); ++i) {
        if (submitted_[i] == 0) reducer_->submit(i);
      }
      reducer_->wait_all();
    } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): a destructor
    }
  }
  Reducer(const Reducer&) = delete;
  Reducer& operator=(const Reducer&) = delete;

  // Hands bucket `index` over; errors are raised by wait_all(), on every rank.
  void submit(py::ssize_t index) {
    if (index < 0 || static_cast<std::size_t>(index) >= submitted_.size()) {
      fail(fmt::format("GradientReducer.submit: bucket {} of {} does not exist", index,
                       submitted_.size()));
      return;
    }
    const auto i = static_cast<std::size_t>(index);
    if (submitted_[i] != 0) {
      fail(fmt::format("GradientReducer.submit: bucket {} was already submitted in this step",
                       index));
      return;
    }
    submitted_[i] = 1;
    reducer_->submit(i);
  }

  void wait_all() {
    const py::gil_scoped_release released;
    // The arrays not submitted yet are submitted now: every rank reduces every array in
    // every step, so that no rank waits for a reduction another rank never starts.
    for (std::size_t i = 0; i < submitted_.size(); ++i) {
      if (submitted_[i] == 0) reducer_->submit(i);
    }
    std::fill(submitted_.begin(), submitted_.end(), 0);
    try {
      reducer_->wait_all();
    } catch (const ringdp::Error& e) {
      check_.record(PyClass::Ringdp, Failure{e.kind(), e.cause()});
    }
    const ArgumentCheck check = std::exchange(check_, ArgumentCheck{});
    check.agree(*comm_);
  }

  [[nodiscard]] std::size_t size() const noexcept { return submitted_.size(); }
  [[nodiscard]] py::tuple arrays() const { return py::tuple(arrays_); }

 private:
  void fail(std::string message) {
    check_.record(PyClass::Ringdp, Failure{ErrorKind::InvalidArgument, std::move(message)});
  }

  // Keeps the arrays (and their memory) alive while the reducer lives. Like the C++ class,
  // one Python thread uses a reducer at a time.
  py::list arrays_;
  std::unique_ptr<Communicator> comm_;
  std::unique_ptr<GradientReducer> reducer_;
  std::vector<char> submitted_;
  ArgumentCheck check_;
};

}  // namespace

void bind_reducer(py::module_& m) {
  py::class_<Reducer>(m, "GradientReducer", R"(Overlapped averaging of a list of float32 arrays.

GradientReducer(arrays, op="avg", algorithm="auto", fusion_bytes=None,
                pace_while_computing=True, comm=None)

Collective. Each step, submit(i) hands array i over as soon as it is final; a progress
thread reduces submitted arrays (consecutive small ones fused, in index order) while the
caller goes on computing; wait_all() submits the arrays not submitted yet and waits until
every array is reduced. Every rank registers arrays of the same sizes (the same error on
every rank otherwise). The arrays must stay as they are (not resized) while the reducer
lives; it keeps references to them.

Errors of submit() (an unknown index, an index submitted twice in a step) are raised by
wait_all(), on every rank. Between the first submit() of a step and wait_all(), the caller
must not call MPI (mpi4py included) on any communicator.)")
      .def(py::init<const py::sequence&, const std::string&, const std::string&,
                    std::optional<std::size_t>, bool, const py::object&>(),
           py::arg("arrays"), py::arg("op") = "avg", py::arg("algorithm") = "auto",
           py::arg("fusion_bytes") = py::none(), py::arg("pace_while_computing") = true,
           py::arg("comm") = py::none())
      .def("submit", &Reducer::submit, py::arg("index"),
           "Hands array `index` over for reduction; do not write it until wait_all() returns.")
      .def("wait_all", &Reducer::wait_all,
           "Submits the arrays not submitted yet, waits until every array is reduced and ends "
           "the step (GIL released). Collective: raises the step's first error on every rank.")
      .def("__len__", &Reducer::size)
      .def_property_readonly("arrays", &Reducer::arrays, "The registered arrays.");
}

}  // namespace ringdp::python
