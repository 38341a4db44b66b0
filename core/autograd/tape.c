/* The tape: nodes recorded in forward order, replayed in reverse. */
#include "bd/tape.h"

#include <stdlib.h>
#include <string.h>

struct bd_tape {
    bd_arena  arena;     /* tensors, and with grad on the ops' saved state */
    bd_arena  scratch;   /* with grad off: the running op's state, emptied as it ends */
    bd_node  *nodes;     /* heap array; grows while warming up, then reused */
    size_t    n_nodes;
    size_t    cap_nodes;
    bool      grad_enabled;
    bool      consumed;  /* backward ran since the last reset */
};

bd_tape *bd_tape_new(void)
{
    bd_tape *tp = calloc(1, sizeof *tp);
    if (!tp)
        return bd_fail(BD_E_NOMEM, "tape: out of memory"), NULL;
    bd_arena_init(&tp->arena);
    bd_arena_init(&tp->scratch);
    tp->grad_enabled = true;
    return tp;
}

void bd_tape_free(bd_tape *tp)
{
    if (!tp)
        return;
    bd_arena_free(&tp->arena);
    bd_arena_free(&tp->scratch);
    free(tp->nodes);
    free(tp);
}

void bd_tape_reset(bd_tape *tp)
{
    bd_arena_reset(&tp->arena);
    bd_arena_reset(&tp->scratch);
    tp->n_nodes = 0;
    tp->consumed = false;
}

bool bd_tape_set_grad(bd_tape *tp, bool enabled)
{
    bool was = tp->grad_enabled;
    tp->grad_enabled = enabled;
    return was;
}

bool bd_tape_grad_enabled(const bd_tape *tp) { return tp->grad_enabled; }

size_t bd_tape_arena_used(const bd_tape *tp) { return tp->arena.used; }
size_t bd_tape_arena_peak(const bd_tape *tp)
{
    return tp->arena.peak + tp->scratch.peak;
}

void *bd_tape_alloc(bd_tape *tp, size_t bytes)
{
    return bd_arena_alloc(tp->grad_enabled ? &tp->arena : &tp->scratch, bytes);
}

void bd_tape_op_done(bd_tape *tp)
{
    if (!tp->grad_enabled)
        bd_arena_reset(&tp->scratch);
}

/* A tape tensor is one arena chunk: the header, then its data (aligned). */
enum { TENSOR_HEAD = 64 };
_Static_assert(sizeof(bd_tensor) <= TENSOR_HEAD, "bd_tensor outgrew its chunk head");

static size_t tensor_chunk(int64_t numel)
{
    return TENSOR_HEAD + (size_t)numel * sizeof(float);
}

bd_tensor *bd_tape_tensor(bd_tape *tp, int ndim, const int64_t *shape)
{
    int64_t numel;
    if (bd_shape_check("tensor", ndim, shape, &numel) != BD_OK)
        return NULL;
    unsigned char *chunk = bd_arena_alloc(&tp->arena, tensor_chunk(numel));
    if (!chunk)
        return NULL;
    bd_tensor *t = (bd_tensor *)chunk;
    memset(t, 0, sizeof *t);
    for (int i = 0; i < BD_MAX_DIMS; i++)
        t->shape[i] = i < ndim ? shape[i] : 1;
    t->ndim = ndim;
    t->numel = numel;
    t->data = (float *)(chunk + TENSOR_HEAD);
    t->flags = BD_TENSOR_ARENA;
    return t;
}

bd_tensor *bd_tape_view(bd_tape *tp, const bd_tensor *x)
{
    bd_tensor *t = bd_arena_alloc(&tp->arena, sizeof *t);
    if (!t)
        return NULL;
    *t = *x;
    t->grad = NULL;
    t->flags = 0;
    return t;
}

void bd_tape_release(bd_tape *tp, bd_tensor *t)
{
    if (!t || tp->grad_enabled || tp->n_nodes
        || (t->flags & (BD_TENSOR_ARENA | BD_TENSOR_KEPT)) != BD_TENSOR_ARENA)
        return;
    if (bd_arena_release(&tp->arena, t, tensor_chunk(t->numel)))
        t->flags &= ~(uint32_t)BD_TENSOR_ARENA; /* a second release does nothing */
}

bd_tensor *bd_tape_tensor_like(bd_tape *tp, const bd_tensor *like)
{
    return bd_tape_tensor(tp, like->ndim, like->shape);
}

bool bd_tape_needs_node(const bd_tape *tp, bd_tensor *const *in, int n_in)
{
    if (!tp->grad_enabled)
        return false;
    for (int i = 0; i < n_in; i++)
        if (in[i] && (in[i]->flags & BD_TENSOR_REQUIRES_GRAD))
            return true;
    return false;
}

static bd_status grow_nodes(bd_tape *tp)
{
    size_t cap = tp->cap_nodes ? tp->cap_nodes * 2 : 256;
    bd_node *nodes = realloc(tp->nodes, cap * sizeof *nodes);
    if (!nodes)
        return bd_fail(BD_E_NOMEM, "tape: cannot grow to %zu nodes", cap);
    tp->nodes = nodes;
    tp->cap_nodes = cap;
    return BD_OK;
}

bd_status bd_tape_record(bd_tape *tp, bd_backward_fn backward, bd_tensor *out,
                         bd_tensor *const *in, int n_in, void *ctx)
{
    if (n_in > BD_NODE_MAX_INPUTS)
        return bd_fail(BD_E_ARG, "tape: %d inputs, at most %d", n_in,
                       BD_NODE_MAX_INPUTS);
    if (tp->n_nodes == tp->cap_nodes)
        BD_TRY(grow_nodes(tp));
    bd_node *node = &tp->nodes[tp->n_nodes++];
    memset(node, 0, sizeof *node);
    node->backward = backward;
    node->out = out;
    node->n_in = n_in;
    node->ctx = ctx;
    for (int i = 0; i < n_in; i++)
        node->in[i] = in[i];
    out->flags |= BD_TENSOR_REQUIRES_GRAD;
    return BD_OK;
}

/* Give a temporary that requires grad a grad buffer, unwritten: its first
 * writer assigns or zeroes it (bd_grad_first, bd_grad_of). */
static bd_status ensure_grad(bd_tape *tp, bd_tensor *t)
{
    if (!t || !(t->flags & BD_TENSOR_REQUIRES_GRAD) || t->grad)
        return BD_OK;
    t->grad = bd_arena_alloc(&tp->arena, (size_t)t->numel * sizeof(float));
    if (!t->grad)
        return BD_E_NOMEM;
    t->flags |= BD_TENSOR_GRAD_UNSET;
    return BD_OK;
}

float *bd_grad_first(const bd_tensor *t, bool *assign)
{
    *assign = false;
    if (!t || !(t->flags & BD_TENSOR_REQUIRES_GRAD))
        return NULL;
    bd_tensor *w = (bd_tensor *)t; /* tape tensors are never const objects */
    *assign = (w->flags & BD_TENSOR_GRAD_UNSET) != 0;
    w->flags &= ~(uint32_t)BD_TENSOR_GRAD_UNSET;
    return w->grad;
}

float *bd_grad_of(const bd_tensor *t)
{
    bool assign;
    float *g = bd_grad_first(t, &assign);
    if (assign)
        memset(g, 0, (size_t)t->numel * sizeof *g);
    return g;
}

bd_status bd_tape_backward(bd_tape *tp, bd_tensor *loss)
{
    if (tp->consumed)
        return bd_fail(BD_E_STATE, "backward: already ran on this tape; reset"
                       " it and run the forward pass again");
    if (loss->numel != 1)
        return bd_fail(BD_E_ARG, "backward: loss has %lld elements, expected 1",
                       (long long)loss->numel);
    if (!(loss->flags & BD_TENSOR_REQUIRES_GRAD))
        return bd_fail(BD_E_STATE, "backward: loss does not depend on anything"
                       " that requires grad (was grad mode off?)");
    BD_TRY(ensure_grad(tp, loss));
    bd_grad_of(loss)[0] += 1.0f;
    for (size_t i = tp->n_nodes; i-- > 0;) {
        const bd_node *node = &tp->nodes[i];
        if (!node->out->grad)
            continue; /* no gradient reached this node */
        bd_grad_of(node->out); /* zeroed if no consumer wrote it */
        for (int k = 0; k < node->n_in; k++)
            BD_TRY(ensure_grad(tp, node->in[k]));
        node->backward(node);
    }
    tp->consumed = true;
    return BD_OK;
}
