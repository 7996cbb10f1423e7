# Sourced by the scripts: Open MPI settings for running on one machine, as root if need be.
# Open MPI refuses to run as root unless told; containers and CI often are root.
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# Ranks beyond the core count: allow it. Open MPI then marks the job oversubscribed and
# lets idle ranks yield the core by itself (mpi_yield_when_idle). Not forced here: when
# ranks do not outnumber the cores, yielding hands the core to any other runnable process
# at every idle poll; with other work on the machine the 2-rank training run took 27-35 s
# instead of 8-9 s. (The test suite sets it, because ctest runs two MPI jobs side by side.)
export OMPI_MCA_rmaps_base_oversubscribe=1
