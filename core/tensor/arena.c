/* Bump allocator for per-step temporaries, with holes (see bd/arena.h). */
#include "bd/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bd/status.h"

/* Under AddressSanitizer released chunks (holes) and everything a reset
 * empties are poisoned until handed out again: reading a released or reset
 * tensor is reported where it happens. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define ARENA_ALIGN 64
/* The first block: address space, not memory (a page is mapped when first
 * written), large enough that a sampling forward fills one contiguous
 * block, where released chunks merge, instead of several. */
#define ARENA_MIN_BLOCK ((size_t)256 << 20)

struct bd_arena_block {
    bd_arena_block *next; /* the block after this one in the step's order */
    size_t          size; /* usable bytes */
    size_t          used; /* the fill mark: bytes below it are handed out or holes */
    size_t          reached; /* the highest fill mark: bytes above were never handed out */
    unsigned char  *base; /* ARENA_ALIGN-aligned start of the usable bytes */
};

/* A block's bytes come straight from mmap (page-aligned, so ARENA_ALIGN
 * too): address space whose pages are mapped when first written, which
 * malloc would also give for these sizes. Under AddressSanitizer malloc
 * would in addition write the whole block's shadow on every allocation
 * and free (64 MiB of memset for a 256 MiB block, most of test_conv2d's
 * time there); an mmap'd block's shadow is only written where poisoned. */
static bd_arena_block *block_new(size_t size)
{
    bd_arena_block *b = malloc(sizeof *b);
    void *base = b ? mmap(NULL, size, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                   : MAP_FAILED;
    if (base == MAP_FAILED) {
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
        UNPOISON(b->base, b->reached);
        munmap(b->base, b->size);
        free(b);
        b = next;
    }
    free(a->holes);
    memset(a, 0, sizeof *a);
}

/* bytes rounded up to ARENA_ALIGN, at least ARENA_ALIGN */
static size_t chunk_size(size_t bytes)
{
    const size_t need = (bytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    return need ? need : ARENA_ALIGN;
}

/* A block with room for `need` bytes above its fill mark: the last one
 * filled, else the first such, else a new one at the end, twice the size
 * of the last. */
static bd_arena_block *block_with_room(bd_arena *a, size_t need)
{
    if (a->cur && a->cur->size - a->cur->used >= need)
        return a->cur;
    bd_arena_block *b = a->head, *last = NULL;
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

static void hole_remove(bd_arena *a, size_t i)
{
    a->holes[i] = a->holes[--a->n_holes];
}

/* The start of `need` bytes cut from the smallest hole that holds them,
 * or NULL when none does. */
static void *hole_take(bd_arena *a, size_t need)
{
    size_t best = a->n_holes;
    for (size_t i = 0; i < a->n_holes; i++)
        if (a->holes[i].size >= need
            && (best == a->n_holes || a->holes[i].size < a->holes[best].size))
            best = i;
    if (best == a->n_holes)
        return NULL;
    bd_arena_hole *h = &a->holes[best];
    void *p = h->block->base + h->offset;
    h->offset += need;
    h->size -= need;
    if (h->size == 0)
        hole_remove(a, best);
    return p;
}

void *bd_arena_alloc(bd_arena *a, size_t bytes)
{
    if (bytes > SIZE_MAX / 2)
        return bd_fail(BD_E_NOMEM, "arena: request of %zu bytes", bytes), NULL;
    const size_t need = chunk_size(bytes);
    void *p = hole_take(a, need);
    if (!p) {
        bd_arena_block *b = block_with_room(a, need);
        if (!b)
            return NULL;
        a->cur = b;
        p = b->base + b->used;
        b->used += need;
        if (b->used > b->reached)
            b->reached = b->used;
    }
    UNPOISON(p, need);
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

static bd_arena_block *block_of(const bd_arena *a, const void *p)
{
    const unsigned char *c = p;
    for (bd_arena_block *b = a->head; b; b = b->next)
        if (c >= b->base && c < b->base + b->used)
            return b;
    return NULL;
}

bool bd_arena_owns(const bd_arena *a, const void *p) { return block_of(a, p) != NULL; }

/* Record the hole; without memory for the list the bytes stay unused until
 * the reset. */
static void hole_add(bd_arena *a, bd_arena_hole h)
{
    if (a->n_holes == a->cap_holes) {
        const size_t cap = a->cap_holes ? 2 * a->cap_holes : 32;
        bd_arena_hole *holes = realloc(a->holes, cap * sizeof *holes);
        if (!holes)
            return;
        a->holes = holes;
        a->cap_holes = cap;
    }
    a->holes[a->n_holes++] = h;
}

bool bd_arena_release(bd_arena *a, void *p, size_t bytes)
{
    bd_arena_block *b = block_of(a, p);
    if (!b)
        return false;
    bd_arena_hole h = {b, (size_t)((unsigned char *)p - b->base), chunk_size(bytes)};
    POISON(p, h.size);
    a->used -= h.size;
    for (size_t i = 0; i < a->n_holes;) { /* merge with the holes either side */
        const bd_arena_hole o = a->holes[i];
        if (o.block == b && (o.offset + o.size == h.offset
                             || h.offset + h.size == o.offset)) {
            h.size += o.size;
            h.offset = o.offset < h.offset ? o.offset : h.offset;
            hole_remove(a, i);
        } else {
            i++;
        }
    }
    if (h.offset + h.size == b->used)
        b->used = h.offset;
    else
        hole_add(a, h);
    return true;
}

/* Keep every block, emptied: the next step of the same shape takes the
 * same addresses, already mapped. */
void bd_arena_reset(bd_arena *a)
{
    for (bd_arena_block *b = a->head; b; b = b->next) {
        POISON(b->base, b->used);
        b->used = 0;
    }
    a->cur = a->head;
    a->used = 0;
    a->n_holes = 0;
}
