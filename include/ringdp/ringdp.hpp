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
#include "ringdp/version.hpp"
