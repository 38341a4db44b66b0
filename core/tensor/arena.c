/* Bump allocator for per-step temporaries (see bd/arena.h). */
#include "bd/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bd/status.h"

#define ARENA_ALIGN 64
#define ARENA_MIN_BLOCK ((size_t)1 << 20)

struct bd_arena_block {
    bd_arena_block *prev;
    size_t          size; /* usable bytes after the header */
    size_t          used;
    unsigned char  *base; /* ARENA_ALIGN-aligned start of the usable bytes */
};

static bd_arena_block *block_new(size_t size)
{
    bd_arena_block *b = malloc(sizeof *b);
    void *base = NULL;
    if (!b || posix_memalign(&base, ARENA_ALIGN, size) != 0) {
        free(b);
        return NULL;
    }
    b->prev = NULL;
    b->size = size;
    b->used = 0;
    b->base = base;
    return b;
}

static void blocks_free(bd_arena_block *b)
{
    while (b) {
        bd_arena_block *prev = b->prev;
        free(b->base);
        free(b);
        b = prev;
    }
}

void bd_arena_init(bd_arena *a) { memset(a, 0, sizeof *a); }

void bd_arena_free(bd_arena *a)
{
    blocks_free(a->head);
    memset(a, 0, sizeof *a);
}

void *bd_arena_alloc(bd_arena *a, size_t bytes)
{
    if (bytes > SIZE_MAX / 2)
        return bd_fail(BD_E_NOMEM, "arena: request of %zu bytes", bytes), NULL;
    size_t need = (bytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (need == 0)
        need = ARENA_ALIGN;
    bd_arena_block *b = a->head;
    if (!b || b->size - b->used < need) {
        size_t size = need > ARENA_MIN_BLOCK ? need : ARENA_MIN_BLOCK;
        if (b && size < b->size * 2)
            size = b->size * 2;
        bd_arena_block *nb = block_new(size);
        if (!nb)
            return bd_fail(BD_E_NOMEM, "arena: cannot allocate a block of %zu"
                           " bytes", size), NULL;
        nb->prev = b;
        a->head = b = nb;
        a->capacity += size;
    }
    void *p = b->base + b->used;
    b->used += need;
    a->used += need;
    if (a->used > a->peak)
        a->peak = a->used;
    return p;
}

void *bd_arena_calloc(bd_arena *a, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return bd_fail(BD_E_NOMEM, "arena: %zu x %zu bytes overflows", count,
                       size), NULL;
    void *p = bd_arena_alloc(a, count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

/* Keep one block. If the step spilled over several, replace them by a single
 * block that holds everything the step used, so the next step fits. */
void bd_arena_reset(bd_arena *a)
{
    bd_arena_block *b = a->head;
    if (b && b->prev) {
        size_t total = a->capacity;
        blocks_free(b);
        a->head = block_new(total);
        a->capacity = a->head ? total : 0;
    } else if (b) {
        b->used = 0;
    }
    a->used = 0;
}
