#pragma once
/// \file
/// The umbrella header: everything of ringdp's public C++ API.

#include "ringdp/comm/abort.hpp"
#include "ringdp/comm/agreement.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/comm/environment.hpp"
#include "ringdp/comm/error.hpp"
#include "ringdp/version.hpp"
