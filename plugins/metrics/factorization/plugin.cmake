# The factorization metric's step fits call BLAS (cblas).
target_link_libraries(${BD_PLUGIN_TARGET} PRIVATE PkgConfig::OPENBLAS)
