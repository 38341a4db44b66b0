/* Checkpoints (.bdc) and checkpoint archives (.bda).
 *
 * A bd_ckpt is an in-memory checkpoint: typed key/values and named tensors,
 * each kept sorted by name. Everything is copied in; nothing references the
 * caller's memory. The file format is specified in core/ckpt/FORMAT.md.
 *
 *   bd_ckpt *ck = bd_ckpt_new();
 *   bd_ckpt_set_i64(ck, "bd.step", step);
 *   bd_ckpt_add_tensor(ck, "down1.conv1.weight", w);
 *   bd_ckpt_save(ck, "runs/demo/ckpt/step_1000.bdc", NULL);   // zstd level 3
 *   bd_ckpt_free(ck);
 *
 *   bd_ckpt_load("runs/demo/ckpt/step_1000.bdc", &ck);        // validates all
 *   bd_ckpt_read_into(ck, "down1.conv1.weight", w);            // resume
 *
 * Names of keys and tensors: 1 to 255 bytes of dot-separated segments of
 * [a-z0-9_] ("bd.step", "optim.m.down1.conv1.weight").
 *
 * Run directories: a run keeps its checkpoints as
 *     runs/<name>/ckpt/step_<N>.bdc        (N the training step, decimal)
 * (core/ckpt/rundir.c names, parses and lists them; bd/session.h writes
 * and prunes them) and `bd_archive_create` packs that folder's
 * step_<N>.bdc files, in step order, into one .bda archive.
 *
 * Errors: a file that fails a check gives BD_E_FORMAT with a message
 * "ckpt '<path>': <check> (found X, expected Y)"; file system failures give
 * BD_E_IO; misuse (missing key, wrong type) gives BD_E_ARG. */
#ifndef BD_CKPT_H
#define BD_CKPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bd/tensor.h"

#define BD_CKPT_MAX_DIMS 8
#define BD_CKPT_NAME_MAX 255

typedef enum bd_ckpt_type {
    BD_CKPT_U64 = 1,
    BD_CKPT_I64 = 2,
    BD_CKPT_F64 = 3,
    BD_CKPT_STR = 4,
    BD_CKPT_ARR_I64 = 5,
    BD_CKPT_ARR_F64 = 6,
} bd_ckpt_type;

typedef enum bd_ckpt_dtype {
    BD_CKPT_F32 = 1,
    BD_CKPT_U8 = 2,  /* opaque bytes, e.g. a serialised state */
} bd_ckpt_dtype;

/* One key/value. n is the string length or the array count (1 for scalars). */
typedef struct bd_ckpt_kv {
    const char  *key;
    bd_ckpt_type type;
    uint64_t     n;
    union {
        uint64_t       u64;
        int64_t        i64;
        double         f64;
        const char    *str;   /* NUL-terminated, n bytes before the NUL */
        const int64_t *i64s;
        const double  *f64s;
    } v;
} bd_ckpt_kv;

/* How a tensor is stored in the file it was loaded from (all zero for a
 * tensor added in memory). */
typedef struct bd_ckpt_storage {
    int      codec;        /* 0 raw, 1 zstd */
    int      filter;       /* 0 none, 1 byte shuffle */
    int      level;        /* zstd level used, 0 when raw */
    uint64_t offset;       /* from the start of the data section */
    uint64_t stored_size;  /* bytes in the file */
    uint32_t crc32c;       /* of the raw bytes */
} bd_ckpt_storage;

/* One tensor. A 0-dim tensor is a scalar (1 element); dims may be 0. */
typedef struct bd_ckpt_tensor {
    const char     *name;
    bd_ckpt_dtype   dtype;
    int             ndim;
    int64_t         dims[BD_CKPT_MAX_DIMS];
    uint64_t        nbytes;  /* raw size: numel * element size */
    const void     *data;    /* nbytes, owned by the checkpoint */
    bd_ckpt_storage stored;
} bd_ckpt_tensor;

typedef struct bd_ckpt bd_ckpt;

bd_ckpt *bd_ckpt_new(void);  /* NULL (error set) when out of memory */
void     bd_ckpt_free(bd_ckpt *ck);

/* ---- key/values: set replaces an existing key of any type ---------------- */

bd_status bd_ckpt_set_u64(bd_ckpt *ck, const char *key, uint64_t v);
bd_status bd_ckpt_set_i64(bd_ckpt *ck, const char *key, int64_t v);
bd_status bd_ckpt_set_f64(bd_ckpt *ck, const char *key, double v);
bd_status bd_ckpt_set_str(bd_ckpt *ck, const char *key, const char *v);
bd_status bd_ckpt_set_i64s(bd_ckpt *ck, const char *key, const int64_t *v,
                           size_t n);
bd_status bd_ckpt_set_f64s(bd_ckpt *ck, const char *key, const double *v,
                           size_t n);

/* Getters fail with BD_E_ARG naming the key if it is missing or of another
 * type. Pointers stay valid until the key is set again or ck is freed. */
bd_status bd_ckpt_get_u64(const bd_ckpt *ck, const char *key, uint64_t *v);
bd_status bd_ckpt_get_i64(const bd_ckpt *ck, const char *key, int64_t *v);
bd_status bd_ckpt_get_f64(const bd_ckpt *ck, const char *key, double *v);
bd_status bd_ckpt_get_str(const bd_ckpt *ck, const char *key, const char **v);
bd_status bd_ckpt_get_i64s(const bd_ckpt *ck, const char *key,
                           const int64_t **v, size_t *n);
bd_status bd_ckpt_get_f64s(const bd_ckpt *ck, const char *key,
                           const double **v, size_t *n);

size_t            bd_ckpt_kv_count(const bd_ckpt *ck);
const bd_ckpt_kv *bd_ckpt_kv_at(const bd_ckpt *ck, size_t i);  /* sorted */
const bd_ckpt_kv *bd_ckpt_kv_find(const bd_ckpt *ck, const char *key);

/* ---- tensors: adding a name twice fails ---------------------------------- */

/* Copy a float32 tensor's data (not its grad). */
bd_status bd_ckpt_add_tensor(bd_ckpt *ck, const char *name, const bd_tensor *t);
/* Copy any tensor: dtype, 0..8 dims (each >= 0), data of numel elements. */
bd_status bd_ckpt_add_array(bd_ckpt *ck, const char *name, bd_ckpt_dtype dtype,
                            int ndim, const int64_t *dims, const void *data);
/* Copy n opaque bytes as a 1-dim U8 tensor. */
bd_status bd_ckpt_add_bytes(bd_ckpt *ck, const char *name, const void *data,
                            size_t n);

size_t                bd_ckpt_tensor_count(const bd_ckpt *ck);
const bd_ckpt_tensor *bd_ckpt_tensor_at(const bd_ckpt *ck, size_t i); /* sorted */
const bd_ckpt_tensor *bd_ckpt_tensor_find(const bd_ckpt *ck, const char *name);

/* A new heap bd_tensor with a copy of a float32 tensor of 1..4 dims, each
 * >= 1. Fails with BD_E_ARG naming the tensor otherwise. */
bd_status bd_ckpt_get_tensor(const bd_ckpt *ck, const char *name,
                             bd_tensor **out);
/* Copy a float32 tensor into t, whose shape must match exactly. */
bd_status bd_ckpt_read_into(const bd_ckpt *ck, const char *name, bd_tensor *t);

/* ---- files --------------------------------------------------------------- */

typedef struct bd_ckpt_save_opts {
    int level;  /* zstd level 1..19; 0 stores every tensor raw (default 3) */
} bd_ckpt_save_opts;

bd_ckpt_save_opts bd_ckpt_save_defaults(void);

/* Write atomically: <path>.tmp-<pid>-<n> in the same folder, fsync, rename over
 * path, fsync the folder. On failure the old file (if any) is untouched and
 * the temp file removed. A killed writer may leave a stale .tmp-<pid>-<n> file.
 * The output depends only on ck, opts and the zstd version. opts may be NULL. */
bd_status bd_ckpt_save(const bd_ckpt *ck, const char *path,
                       const bd_ckpt_save_opts *opts);

/* The file image bd_ckpt_save would write, in a malloc'd buffer. */
bd_status bd_ckpt_encode(const bd_ckpt *ck, const bd_ckpt_save_opts *opts,
                         uint8_t **bytes, size_t *len);

/* Read and validate every check of FORMAT.md; nothing is returned unless all
 * pass. The file is read, never mapped. */
bd_status bd_ckpt_load(const char *path, bd_ckpt **out);
/* The same from memory; `name` stands for the path in messages. */
bd_status bd_ckpt_load_mem(const void *bytes, size_t len, const char *name,
                           bd_ckpt **out);
/* Load and discard: BD_OK when the file passes every check. */
bd_status bd_ckpt_verify(const char *path);

/* CRC32C (Castagnoli) of n bytes, continuing from crc (0 to start). */
uint32_t bd_crc32c(uint32_t crc, const void *data, size_t n);

/* ---- a run's checkpoint folder: <dir>/step_<N>.bdc ---------------------- */

/* "<dir>/step_<N>.bdc" (dir NULL: "step_<N>.bdc") into buf; BD_E_ARG when
 * it does not fit in len. */
bd_status bd_ckpt_step_path(char *buf, size_t len, const char *dir,
                            uint64_t step);
/* N of a file name "step_<N>.bdc" (1 to 19 digits); false for any other. */
bool bd_ckpt_step_of(const char *name, uint64_t *step);

typedef struct bd_ckpt_step {
    uint64_t step;
    char    *path;  /* "<dir>/<the file's name>" */
} bd_ckpt_step;

/* dir's step_<N>.bdc files by step, ascending, in a malloc'd list (NULL
 * and 0 when there are none). BD_E_IO when dir cannot be listed, BD_E_ARG
 * naming both files when two name the same step (step_7, step_07). */
bd_status bd_ckpt_list_steps(const char *dir, bd_ckpt_step **steps, size_t *n);
void      bd_ckpt_steps_free(bd_ckpt_step *steps, size_t n);
/* The pid of a file name "<file>.bdc.tmp-<pid>[-<n>]", bd_ckpt_save's temp file
 * while it writes <file>.bdc; -1 for any other name. */
long bd_ckpt_temp_writer(const char *name);

/* ---- archives (.bda) ----------------------------------------------------- */

typedef struct bd_archive_opts {
    int level;      /* zstd level 1..19 for the archive's frames (default 9) */
    int key_every;  /* a key checkpoint every K entries, K >= 1 (default 20) */
    bool optimizer_at_keys; /* keep the optimizer state (optim.* tensors)
                               in key entries only; the other entries hold
                               analysis checkpoints: bd.kind "analysis",
                               weights, EMA and keys bit-exact, which load
                               for sampling but cannot resume (false) */
} bd_archive_opts;

bd_archive_opts bd_archive_defaults(void);

/* Pack the checkpoint files paths[0..n) (each validated first), taken as
 * steps steps[0..n) in strictly increasing order, into out (atomically). */
bd_status bd_archive_write(const char *out, const char *const *paths,
                           const uint64_t *steps, size_t n,
                           const bd_archive_opts *opts);
/* Pack <run_dir>/ckpt/step_<N>.bdc, in step order. */
bd_status bd_archive_create(const char *run_dir, const char *out,
                            const bd_archive_opts *opts);

/* An open archive: its index is read and validated; payloads are read and
 * checked when decoded. */
typedef struct bd_archive bd_archive;

typedef struct bd_archive_entry {
    uint64_t step;
    uint64_t file_size;     /* bytes of the original .bdc */
    uint64_t stored_size;   /* bytes it takes in the archive */
    uint64_t n_tensors;
    bool     key;           /* decodable without earlier entries */
    bool     analysis;      /* an analysis checkpoint: no optimizer state */
} bd_archive_entry;

bd_status bd_archive_open(const char *path, bd_archive **out);
void      bd_archive_close(bd_archive *a);
size_t    bd_archive_count(const bd_archive *a);
bd_archive_entry bd_archive_entry_at(const bd_archive *a, size_t i);
/* Rebuild the checkpoint of `step`, bit-identical to the archived file
 * (for an analysis entry: to the analysis checkpoint the writer made of
 * it), decoding only the entries from the nearest key entry at or before
 * it. */
bd_status bd_archive_extract_mem(bd_archive *a, uint64_t step, uint8_t **bytes,
                                 size_t *len);
/* The same, written atomically to out_path. */
bd_status bd_archive_extract(const char *path, uint64_t step,
                             const char *out_path);
/* The same, loaded (and checked) as bd_ckpt_load_mem does; `name` stands
 * for the checkpoint in messages. */
bd_status bd_archive_load(const char *path, uint64_t step, const char *name,
                          bd_ckpt **out);
/* Check every entry of an archive, in order: each one's frames decoded
 * (each tensor's CRC) and its checkpoint rebuilt against the CRC of the
 * original file; report(ctx, entry, NULL) for a good entry, with the
 * message for a damaged one (entries coded against a damaged one are
 * reported as not checked). *n_bad counts the entries that failed. */
typedef void (*bd_archive_verify_fn)(void *ctx, bd_archive_entry e,
                                     const char *failure);
bd_status bd_archive_verify(bd_archive *a, bd_archive_verify_fn report,
                            void *ctx, size_t *n_bad);
/* Whether ck is an analysis checkpoint (bd.kind "analysis"): one an
 * archive stored without its optimizer state; it cannot resume. */
bool bd_ckpt_is_analysis(const bd_ckpt *ck);
/* One float32 tensor of one step, decoding only that tensor's chain. */
bd_status bd_archive_read_tensor(const char *path, uint64_t step,
                                 const char *name, bd_tensor **out);

/* ---- command line -------------------------------------------------------- */

/* `bdrun ckpt ...`: argv[0] is the command's name (for usage text), argv[1]
 * the subcommand: inspect, verify, diff, export, archive, ls, extract.
 * Returns 0 on success, 1 on failure (or, for diff, a difference), 2 on a
 * usage error. Output goes to stdout, errors to stderr. */
int bd_ckpt_main(int argc, char **argv);

#endif
