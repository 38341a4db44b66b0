/* Model bookkeeping shared by every denoiser: taps and teardown. */
#include "bd/model.h"

#include <stdlib.h>
#include <string.h>

void bd_taps_offer(bd_taps *taps, const char *name, bd_tensor *value)
{
    if (!taps)
        return;
    for (int i = 0; i < taps->n; i++)
        if (strcmp(taps->names[i], name) == 0) {
            taps->values[i] = value;
            if (value)
                bd_tape_keep(value);
        }
}

void bd_model_free(bd_model *m)
{
    if (!m)
        return;
    if (m->destroy)
        m->destroy(m->state);
    bd_params_free(m->params);
    bd_config_free(m->config);
    free(m);
}
