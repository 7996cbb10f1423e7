# The Fortran module (`use ringdp`, lib/fortran/) is optional: it is built when a Fortran
# compiler (Debian's gfortran) and MPI's Fortran bindings with the mpi_f08 module are found,
# so that the C and C++ build never depends on them. Sets RINGDP_HAVE_FORTRAN. Included from
# the top-level CMakeLists.txt, because a language must be enabled in the directory that
# holds every target using it (lib/fortran, apps/examples, tests/).
option(RINGDP_FORTRAN "Build the Fortran module when a Fortran compiler and MPI's mpi_f08 are found" ON)
set(RINGDP_HAVE_FORTRAN OFF)
if(NOT RINGDP_FORTRAN)
  message(STATUS "ringdp: Fortran module skipped (RINGDP_FORTRAN=OFF)")
  return()
endif()
include(CheckLanguage)
check_language(Fortran)
if(NOT CMAKE_Fortran_COMPILER)
  message(STATUS "ringdp: Fortran module skipped: no Fortran compiler found (apt-get install gfortran)")
  return()
endif()
enable_language(Fortran)
find_package(MPI COMPONENTS Fortran QUIET)
if(NOT MPI_Fortran_FOUND OR NOT MPI_Fortran_HAVE_F08_MODULE)
  message(STATUS "ringdp: Fortran module skipped: MPI's Fortran bindings with the mpi_f08 module were not found for ${CMAKE_Fortran_COMPILER}")
  return()
endif()
set(RINGDP_HAVE_FORTRAN ON)
message(STATUS "ringdp: Fortran module enabled (${CMAKE_Fortran_COMPILER_ID} ${CMAKE_Fortran_COMPILER_VERSION}, MPI mpi_f08)")
