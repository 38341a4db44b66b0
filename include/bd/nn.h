/* Named parameters, initialisers, AdamW and an EMA of parameters.
 *
 * Parameter names are dotted paths ("down1.conv1.weight"): lower-case
 * letters, digits, '_' and '.'; stable across runs, they are the names used
 * in checkpoints. Parameters are heap tensors with grads; the set owns them. */
#ifndef BD_NN_H
#define BD_NN_H

#include "bd/rng.h"
#include "bd/tensor.h"

/* Longest parameter name in characters: a bound checkpoint readers can check. */
#define BD_PARAM_NAME_MAX 255

typedef struct bd_params bd_params;

bd_params *bd_params_new(void);
void       bd_params_free(bd_params *p);

/* Add a zero-filled trainable parameter. Fails on a bad or duplicate name. */
bd_status bd_params_add(bd_params *p, const char *name, int ndim,
                        const int64_t *shape, bd_tensor **out);

int         bd_params_count(const bd_params *p);
bd_tensor  *bd_params_at(const bd_params *p, int i);
const char *bd_params_name(const bd_params *p, int i);
bd_tensor  *bd_params_find(const bd_params *p, const char *name); /* or NULL */
int64_t     bd_params_numel(const bd_params *p);                  /* all elements */
void        bd_params_zero_grad(bd_params *p);
double      bd_params_grad_norm(const bd_params *p);              /* global L2 */

/* Initialisers: U(-bound, bound) and N(0, std). */
void bd_init_uniform(bd_tensor *t, bd_rng *rng, float bound);
void bd_init_normal(bd_tensor *t, bd_rng *rng, float std);

/* ---- AdamW (Loshchilov & Hutter): decoupled weight decay ----------------- */

typedef struct bd_adamw_config {
    float lr;           /* default 1e-3 */
    float beta1, beta2; /* 0.9, 0.999 */
    float eps;          /* 1e-8 */
    float weight_decay; /* 0.01 */
    float clip_norm;    /* clip the global grad norm to this; <= 0: off (default 1.0) */
} bd_adamw_config;

typedef struct bd_adamw bd_adamw;

bd_adamw_config bd_adamw_defaults(void);
/* Fails on a non-finite or out-of-range hyperparameter, naming it. */
bd_status bd_adamw_new(bd_params *p, bd_adamw_config cfg, bd_adamw **out);
void      bd_adamw_free(bd_adamw *opt);
/* Clip, then one update at learning rate lr. Fails without changing any
 * parameter if the gradient norm is not finite. *grad_norm may be NULL. */
bd_status bd_adamw_step(bd_adamw *opt, float lr, double *grad_norm);
/* State for checkpoints: first and second moments of parameter i, and the
 * number of steps taken (bias correction). */
bd_tensor *bd_adamw_m(const bd_adamw *opt, int i);
bd_tensor *bd_adamw_v(const bd_adamw *opt, int i);
int64_t    bd_adamw_steps(const bd_adamw *opt);
void       bd_adamw_set_steps(bd_adamw *opt, int64_t steps);

/* ---- EMA: shadow = decay * shadow + (1 - decay) * param ------------------ */

typedef struct bd_ema bd_ema;

bd_status  bd_ema_new(const bd_params *p, float decay, bd_ema **out);
void       bd_ema_free(bd_ema *ema);
void       bd_ema_update(bd_ema *ema);
bd_tensor *bd_ema_at(const bd_ema *ema, int i);  /* shadow of parameter i */
/* Exchange parameter values with the shadows (call twice to undo): sample
 * with EMA weights, then swap back to keep training. */
void       bd_ema_swap(bd_ema *ema);

#endif
