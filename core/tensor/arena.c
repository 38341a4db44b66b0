/* Bump allocator for per-step temporaries (see bd/arena.h). */
#include "bd/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bd/status.h"

#define ARENA_ALIGN 64
#define ARENA_MIN_BLOCK ((size_t)1 << 20)

struct bd_arena_block {
    bd_arena_block *next; /* the block after this one in the step's order */
    size_t          size; /* usable bytes */
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
    *b = (bd_arena_block){.size = size, .base = base};
    return b;
}

void bd_arena_init(bd_arena *a) { memset(a, 0, sizeof *a); }

void bd_arena_free(bd_arena *a)
{
    for (bd_arena_block *b = a->head; b;) {
        bd_arena_block *next = b->next;
        free(b->base);
        free(b);
        b = next;
    }
    memset(a, 0, sizeof *a);
}

/* A block after a->cur (or the first) with room for `need` bytes, taking
 * a new one, twice the size of the last, when none has. */
static bd_arena_block *block_with_room(bd_arena *a, size_t need)
{
    bd_arena_block *b = a->cur ? a->cur : a->head, *last = NULL;
    for (; b; last = b, b = b->next)
        if (b->size - b->used >= need)
            return b;
    size_t size = need > ARENA_MIN_BLOCK ? need : ARENA_MIN_BLOCK;
    if (last && size < last->size * 2)
        size = last->size * 2;
    b = block_new(size);
    if (!b)
        return bd_fail(BD_E_NOMEM, "arena: cannot allocate a block of %zu"
                       " bytes", size), NULL;
    if (last)
        last->next = b;
    else
        a->head = b;
    a->capacity += size;
    return b;
}

void *bd_arena_alloc(bd_arena *a, size_t bytes)
{
    if (bytes > SIZE_MAX / 2)
        return bd_fail(BD_E_NOMEM, "arena: request of %zu bytes", bytes), NULL;
    size_t need = (bytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (need == 0)
        need = ARENA_ALIGN;
    bd_arena_block *b = a->cur;
    if (!b || b->size - b->used < need) {
        b = block_with_room(a, need);
        if (!b)
            return NULL;
        a->cur = b;
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

/* Keep every block, emptied: the next step of the same shape takes the
 * same addresses, already mapped. */
void bd_arena_reset(bd_arena *a)
{
    for (bd_arena_block *b = a->head; b; b = b->next)
        b->used = 0;
    a->cur = a->head;
    a->used = 0;
}
