#pragma once
/// \file
/// The umbrella header: everything of ringdp's public C++ API.

#include "ringdp/comm/abort.hpp"
#include "ringdp/comm/agreement.hpp"
#include "ringdp/comm/communicator.hpp"
#include "ringdp/comm/environment.hpp"
#include "ringdp/comm/error.hpp"
#include "ringdp/data/h5_dataset.hpp"
#include "ringdp/data/hdf5_lock.hpp"
#include "ringdp/data/loader.hpp"
#include "ringdp/data/sampler.hpp"
#include "ringdp/data/synth.hpp"
#include "ringdp/version.hpp"
