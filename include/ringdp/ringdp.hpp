#pragma once
/// \file
/// The umbrella header: everything of ringdp's public C++ API.

#include "ringdp/collectives/collectives.hpp"
#include "ringdp/collectives/tuning.hpp"
#include "ringdp/collectives/types.hpp"
#include "ringdp/comm/abort.hpp"
#include "ringdp/comm/agreement.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/comm/environment.hpp"
#include "ringdp/comm/error.hpp"
#include "ringdp/nn/activations.hpp"
#include "ringdp/nn/adam.hpp"
#include "ringdp/nn/dense.hpp"
#include "ringdp/nn/init.hpp"
#include "ringdp/nn/layer.hpp"
#include "ringdp/nn/loss.hpp"
#include "ringdp/nn/model_spec.hpp"
#include "ringdp/nn/optimizer.hpp"
#include "ringdp/nn/sequential.hpp"
#include "ringdp/nn/sgd.hpp"
#include "ringdp/nn/types.hpp"
#include "ringdp/version.hpp"
