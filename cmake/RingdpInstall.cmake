# Install the library, its headers, a CMake package (find_package(ringdp)) and ringdp.pc;
# the Fortran module with ringdp-fortran.pc when it is built.
include(CMakePackageConfigHelpers)

set(RINGDP_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/ringdp)
set(RINGDP_EXPORT_TARGETS ringdp)
if(TARGET ringdp_interpose)
  list(APPEND RINGDP_EXPORT_TARGETS ringdp_interpose)
endif()

install(TARGETS ${RINGDP_EXPORT_TARGETS} EXPORT ringdpTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/ringdp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_BINARY_DIR}/include/ringdp/version.hpp
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/ringdp)
install(EXPORT ringdpTargets NAMESPACE ringdp:: DESTINATION ${RINGDP_INSTALL_CMAKEDIR})

configure_package_config_file(cmake/ringdpConfig.cmake.in
  ${PROJECT_BINARY_DIR}/ringdpConfig.cmake INSTALL_DESTINATION ${RINGDP_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/ringdpConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/ringdpConfig.cmake ${PROJECT_BINARY_DIR}/ringdpConfigVersion.cmake
        DESTINATION ${RINGDP_INSTALL_CMAKEDIR})

# pkg-config: the HDF5 link line is private (of the public headers only ringdp/io/h5_handle.hpp
# and h5_storage.hpp include hdf5.h; a program using them links HDF5 itself).
configure_file(cmake/ringdp.pc.in ${PROJECT_BINARY_DIR}/ringdp.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/ringdp.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The Fortran module, when built: its own export set and pkg-config file, so that a C or C++
# consumer never needs MPI's Fortran bindings (find_package(ringdp COMPONENTS Fortran)).
if(TARGET ringdp_fortran)
  install(TARGETS ringdp_fortran EXPORT ringdpFortranTargets
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(EXPORT ringdpFortranTargets NAMESPACE ringdp:: DESTINATION ${RINGDP_INSTALL_CMAKEDIR})
  configure_file(cmake/ringdp-fortran.pc.in ${PROJECT_BINARY_DIR}/ringdp-fortran.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/ringdp-fortran.pc
          DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endif()

if(EXISTS ${PROJECT_SOURCE_DIR}/data/mnist10k.h5)
  install(FILES ${PROJECT_SOURCE_DIR}/data/mnist10k.h5 DESTINATION ${CMAKE_INSTALL_DATADIR}/ringdp)
endif()
