# The persistence metric's optional PCA is the manifold metric's pca.c,
# which calls BLAS and LAPACKE.
target_sources(${BD_PLUGIN_TARGET} PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../manifold/pca.c)
target_include_directories(${BD_PLUGIN_TARGET} PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../manifold)
target_link_libraries(${BD_PLUGIN_TARGET} PRIVATE PkgConfig::LAPACKE PkgConfig::OPENBLAS)
