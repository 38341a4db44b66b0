# Install rules: headers, libbd, bdrun, the plugins, a CMake package
# (find_package(bd) gives bd::plugin, bd::bd and bd_add_plugin) and a
# pkg-config file (bd.pc). Both packages are relocatable: they find the
# prefix from where they were installed.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(BD_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/bd)
set(BD_INSTALL_PLUGINDIR ${CMAKE_INSTALL_LIBDIR}/bd/plugins)

# An installed bdrun whose build folder is gone loads the installed plugins.
target_compile_definitions(bd PRIVATE
    BD_PLUGIN_INSTALL_DIR="${CMAKE_INSTALL_FULL_LIBDIR}/bd/plugins")

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/bd
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS bd bd_plugin_api EXPORT bdTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
if(TARGET bdrun)
    install(TARGETS bdrun RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
# bd's own scripts (bdrun sample, the shared Lua modules), found by an
# installed bdrun in ../share/bd/scripts.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/scripts/lib
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bd/scripts)
install(FILES ${PROJECT_SOURCE_DIR}/scripts/sample.lua
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bd/scripts)
get_property(BD_PLUGIN_TARGETS GLOBAL PROPERTY BD_PLUGIN_TARGETS)
if(BD_PLUGIN_TARGETS)
    install(TARGETS ${BD_PLUGIN_TARGETS}
            LIBRARY DESTINATION ${BD_INSTALL_PLUGINDIR})
endif()

install(EXPORT bdTargets NAMESPACE bd:: DESTINATION ${BD_INSTALL_CMAKEDIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/bdConfig.cmake.in
    ${PROJECT_BINARY_DIR}/bdConfig.cmake
    INSTALL_DESTINATION ${BD_INSTALL_CMAKEDIR}
    PATH_VARS BD_INSTALL_PLUGINDIR)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/bdConfigVersion.cmake
    VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/bdConfig.cmake
              ${PROJECT_BINARY_DIR}/bdConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/bdPlugin.cmake
        DESTINATION ${BD_INSTALL_CMAKEDIR})

# bd.pc finds its prefix from its own folder (${pcfiledir}).
file(RELATIVE_PATH BD_PC_TO_PREFIX
     /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
string(REGEX REPLACE "/$" "" BD_PC_TO_PREFIX ${BD_PC_TO_PREFIX})
# libbd built with MPI (cmake/bdMPI.cmake) links Open MPI's C library.
set(BD_PC_REQUIRES_MPI "")
if(BD_MPI)
    set(BD_PC_REQUIRES_MPI " ompi-c")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/bd.pc.in
               ${PROJECT_BINARY_DIR}/bd.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/bd.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
