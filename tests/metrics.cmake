# Metric plugins' tests (plugins/metrics/*), which compile a plugin's
# plain-C files directly (to test the algorithms) and also load the plugin
# by name (to test it as scripts use it). What a plugin links is declared
# beside it (plugins/CMakeLists.txt).
set(BD_METRICS_SOURCE ${PROJECT_SOURCE_DIR}/plugins/metrics)

# test_metric_<name>: the plugin's own files (besides its entry point), and
# the built plugin, which the test creates by name.
function(bd_metric_test name plugin)
    if(NOT TARGET ${name} OR NOT TARGET bd_${plugin})
        return()
    endif()
    list(TRANSFORM ARGN PREPEND ${BD_METRICS_SOURCE}/${plugin}/)
    target_sources(${name} PRIVATE ${ARGN})
    target_include_directories(${name} PRIVATE ${BD_METRICS_SOURCE}/${plugin}
                               ${PROJECT_SOURCE_DIR}/plugins)
    add_dependencies(${name} bd_${plugin})
endfunction()

bd_metric_test(test_metric_bump bump detect.c)
bd_metric_test(test_metric_percolation percolation cluster.c)
bd_metric_test(test_metric_manifold manifold pca.c knn.c quality.c umap.c
               spectral.c order.c)
bd_metric_test(test_metric_factorization factorization steps.c)
bd_metric_test(test_metric_persistence persistence rips.c)

# The UMAP benchmark runs the algorithms directly and the plugin by name.
if(TARGET bench_umap AND TARGET bd_manifold)
    target_sources(bench_umap PRIVATE ${BD_METRICS_SOURCE}/manifold/pca.c
        ${BD_METRICS_SOURCE}/manifold/knn.c ${BD_METRICS_SOURCE}/manifold/quality.c
        ${BD_METRICS_SOURCE}/manifold/umap.c ${BD_METRICS_SOURCE}/manifold/spectral.c)
    target_include_directories(bench_umap PRIVATE ${BD_METRICS_SOURCE}/manifold)
    add_dependencies(bench_umap bd_manifold)
endif()

# The persistence benchmark times the algorithm directly and the plugin by name.
if(TARGET bench_persistence AND TARGET bd_persistence)
    target_sources(bench_persistence PRIVATE ${BD_METRICS_SOURCE}/persistence/rips.c)
    target_include_directories(bench_persistence PRIVATE ${BD_METRICS_SOURCE}/persistence)
    add_dependencies(bench_persistence bd_persistence)
endif()

# The statistics against the libraries' (tests/reference): every metric
# involved, by name.
if(TARGET test_stats_reference)
    foreach(plugin manifold persistence factorization)
        if(TARGET bd_${plugin})
            add_dependencies(test_stats_reference bd_${plugin})
        endif()
    endforeach()
endif()
