# Metric plugins (plugins/metrics/*): the libraries the numeric ones link,
# and their tests, which compile a plugin's plain-C files directly (to test
# the algorithms) and also load the plugin by name (to test it as scripts
# use it).
set(BD_METRICS_SOURCE ${PROJECT_SOURCE_DIR}/plugins/metrics)

foreach(plugin manifold factorization)
    if(TARGET bd_${plugin})
        target_link_libraries(bd_${plugin} PRIVATE PkgConfig::LAPACKE
                              PkgConfig::OPENBLAS)
    endif()
endforeach()

# test_metric_<name>: the plugin's own files (besides its entry point), and
# the built plugin, which the test creates by name.
function(bd_metric_test name plugin)
    if(NOT TARGET ${name} OR NOT TARGET bd_${plugin})
        return()
    endif()
    list(TRANSFORM ARGN PREPEND ${BD_METRICS_SOURCE}/${plugin}/)
    target_sources(${name} PRIVATE ${ARGN})
    target_include_directories(${name} PRIVATE ${BD_METRICS_SOURCE}/${plugin})
    add_dependencies(${name} bd_${plugin})
endfunction()

bd_metric_test(test_metric_bump bump detect.c)
bd_metric_test(test_metric_percolation percolation cluster.c)
bd_metric_test(test_metric_manifold manifold pca.c knn.c quality.c umap.c
               spectral.c order.c)
bd_metric_test(test_metric_factorization factorization steps.c)

# The UMAP benchmark runs the algorithms directly and the plugin by name.
if(TARGET bench_umap AND TARGET bd_manifold)
    target_sources(bench_umap PRIVATE ${BD_METRICS_SOURCE}/manifold/pca.c
        ${BD_METRICS_SOURCE}/manifold/knn.c ${BD_METRICS_SOURCE}/manifold/quality.c
        ${BD_METRICS_SOURCE}/manifold/umap.c ${BD_METRICS_SOURCE}/manifold/spectral.c)
    target_include_directories(bench_umap PRIVATE ${BD_METRICS_SOURCE}/manifold)
    add_dependencies(bench_umap bd_manifold)
endif()
