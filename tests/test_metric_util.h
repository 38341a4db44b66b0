/* Shared by the metric tests: read a result by name, and measure a batch
 * through a metric plugin. */
#ifndef BD_TEST_METRIC_UTIL_H
#define BD_TEST_METRIC_UTIL_H

#include "bd/registry.h"
#include "harness.h"

/* The number called `name` in r (NAN and a failed check if absent). */
HARNESS_FN double number(const bd_metric_result *r, const char *name)
{
    for (int i = 0; i < bd_metric_result_count(r); i++)
        if (strcmp(bd_metric_result_name(r, i), name) == 0)
            return bd_metric_result_number(r, i);
    CHECK(0, "result has no '%s'", name);
    return NAN;
}

/* The array called `name` in r (NULL and a failed check if absent). */
HARNESS_FN const bd_tensor *array(const bd_metric_result *r, const char *name)
{
    for (int i = 0; i < bd_metric_result_count(r); i++)
        if (strcmp(bd_metric_result_name(r, i), name) == 0)
            return bd_metric_result_array(r, i);
    CHECK(0, "result has no array '%s'", name);
    return NULL;
}

/* Create metric `name` from cfg (consumed), measure one batch, return the
 * result (empty if a step failed, with the failure checked). */
HARNESS_FN bd_metric_result *measure_with(const char *name, bd_config *cfg,
                                          bd_tensor *x, bd_tensor *labels)
{
    bd_metric *m = NULL;
    bd_metric_result *r = bd_metric_result_new();
    CHECK_OK(bd_metric_create(name, cfg, &m));
    if (m) {
        CHECK_OK(bd_metric_update(m, x, labels, NULL));
        CHECK_OK(bd_metric_compute(m, r));
    }
    bd_metric_free(m);
    bd_config_free(cfg);
    return r;
}

#endif
