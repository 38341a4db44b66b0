# The manifold metric's PCA, kNN and spectral embedding call BLAS and LAPACKE.
target_link_libraries(${BD_PLUGIN_TARGET} PRIVATE PkgConfig::LAPACKE PkgConfig::OPENBLAS)
