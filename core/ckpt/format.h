/* Internals shared by the .bdc reader, writer, archive and command line.
 * The wire format is specified in core/ckpt/FORMAT.md. */
#ifndef BD_CKPT_FORMAT_H
#define BD_CKPT_FORMAT_H

#include <stdarg.h>

#include "bd/ckpt.h"
#include "bd/run.h" /* bd_write_file_atomic */

/* Files hold little-endian integers and floats, copied as they are. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "bd checkpoints need a little-endian host");

/* ---- .bdc constants ------------------------------------------------------ */

#define BDC_MAGIC        "BDCK"
#define BDC_MAJOR        1
#define BDC_MINOR        0
#define BDC_HEADER_SIZE  64u           /* what this writer emits */
#define BDC_HEADER_MAX   65536u        /* larger headers are refused */
#define BDC_ALIGN        64u           /* default blob alignment */
#define BDC_ALIGN_MAX    (1u << 20)
#define BDC_INDEX_MAX    (64ull << 20) /* index bytes, checked before reading */
#define BDC_KV_MIN       12u           /* smallest key/value record */
#define BDC_REC_MIN      37u           /* smallest tensor record */
#define BDC_RAW_BELOW    4096u         /* smaller tensors are stored raw */
#define BDC_LEVEL_MAX    19
#define BDC_RAW_MAX      (16ull << 30) /* total decoded bytes of one file */
/* A zstd block of at most 128 KiB takes at least 4 bytes (an RLE block), so
 * no frame decodes to more than 32768 times its size. */
#define BDC_ZSTD_MAX_RATIO 32768u

enum { BDC_CODEC_RAW = 0, BDC_CODEC_ZSTD = 1 };
enum { BDC_FILTER_NONE = 0, BDC_FILTER_SHUFFLE = 1 };

typedef struct bdc_header {
    uint16_t major, minor;
    uint32_t header_size, flags, alignment, n_kv;
    uint64_t n_tensors, index_size, data_offset, data_size;
    uint32_t index_crc;
} bdc_header;

/* ---- the in-memory checkpoint -------------------------------------------- */

struct bd_ckpt {
    bd_ckpt_kv     *kvs;      /* sorted by key; strings and arrays owned */
    size_t          n_kv, cap_kv;
    bd_ckpt_tensor *tensors;  /* sorted by name; names and data owned */
    size_t          n_tensors, cap_tensors;
};

/* Set key to a string (type STR, n bytes) or an array (n elements of 8
 * bytes, copied from v as they are). */
bd_status bdc_set_block(bd_ckpt *ck, const char *key, bd_ckpt_type type,
                        const void *v, size_t n);
/* Insert a tensor entry with no data yet (data NULL, nbytes computed) and
 * return it. Fails on a bad or duplicate name, a bad dtype or dims. */
bd_status bdc_tensor_new(bd_ckpt *ck, const char *name, bd_ckpt_dtype dtype,
                         int ndim, const int64_t *dims, bd_ckpt_tensor **out);
/* Key and tensor names: 1..255 bytes of dot-separated [a-z0-9_]+ segments.
 * On failure writes the reason into why. */
bool bdc_name_ok(const char *name, size_t len, char *why, size_t why_len);
/* numel * element size with overflow checks; false if it overflows. */
bool bdc_nbytes(bd_ckpt_dtype dtype, int ndim, const int64_t *dims,
                uint64_t *nbytes);
size_t bdc_elem_size(int dtype);  /* 0 for an unknown dtype */
const char *bdc_dtype_name(int dtype);
const char *bdc_type_name(int type);
/* "(2, 3)" into buf; returns buf. */
const char *bdc_dims_str(int ndim, const int64_t *dims, char *buf, size_t len);

/* ---- little-endian byte buffers ------------------------------------------ */

typedef struct bd_buf {
    uint8_t *data;
    size_t   len, cap;
    bool     failed;  /* an allocation failed; checked once at the end */
} bd_buf;

void bd_buf_put(bd_buf *b, const void *p, size_t n);
void bd_buf_zeros(bd_buf *b, size_t n);
void bd_buf_u8(bd_buf *b, uint8_t v);
void bd_buf_u16(bd_buf *b, uint16_t v);
void bd_buf_u32(bd_buf *b, uint32_t v);
void bd_buf_u64(bd_buf *b, uint64_t v);
void bd_buf_free(bd_buf *b);

static inline uint16_t bd_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t bd_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16
         | (uint32_t)p[3] << 24;
}
static inline uint64_t bd_le64(const uint8_t *p)
{
    return (uint64_t)bd_le32(p) | (uint64_t)bd_le32(p + 4) << 32;
}
static inline void bd_put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- header -------------------------------------------------------------- */

void bdc_header_decode(const uint8_t *p, bdc_header *h);
void bdc_header_encode(const bdc_header *h, uint8_t p[BDC_HEADER_SIZE]);
/* CRC32C of bytes [0, len) with the CRC field (bytes 56..59) read as zero. */
uint32_t bdc_meta_crc(const uint8_t *meta, size_t len);

/* ---- blobs --------------------------------------------------------------- */

/* Byte planes of width-byte elements: out[b * n + i] = in[i * width + b]. */
void bd_shuffle(const uint8_t *in, uint8_t *out, size_t n, size_t width);
void bd_unshuffle(const uint8_t *in, uint8_t *out, size_t n, size_t width);

/* One zstd frame with content size and checksum, optionally using `prefix`
 * as a raw-content dictionary. *out is malloc'd. */
bd_status bd_zstd_compress(const void *src, size_t n, int level,
                           const void *prefix, size_t prefix_len,
                           uint8_t **out, size_t *out_len);
/* The checks on a frame that come before allocating its output: exactly
 * one frame of `stored` bytes, declaring raw_size as its content size (no
 * more than such a frame can hold), with a checksum and no dictionary. */
bd_status bd_zstd_check(const uint8_t *frame, uint64_t stored,
                        uint64_t raw_size, const char *where);
/* Decode exactly one frame of `stored` bytes into dst of raw_size bytes,
 * checking that it is a single frame of that size, that it declares
 * raw_size as its content size, that it carries a checksum and that the
 * checksum matches. Messages start with `where`. */
bd_status bd_zstd_decompress(const uint8_t *frame, uint64_t stored,
                             void *dst, uint64_t raw_size,
                             const void *prefix, size_t prefix_len,
                             const char *where);

/* The blob of a tensor stored with (codec, filter, level): deterministic for
 * a given zstd version. *out is malloc'd. */
bd_status bdc_blob_encode(const bd_ckpt_tensor *t, int codec, int filter,
                          int level, uint8_t **out, size_t *out_len);
/* Decode t's blob (t->stored.stored_size bytes) into a new t->data and
 * check its CRC32C. `where` starts the messages. */
bd_status bdc_blob_decode(bd_ckpt_tensor *t, const uint8_t *blob,
                          const char *where);

/* ---- reader -------------------------------------------------------------- */

/* Validate the header and index held in meta[0, meta_len) of a file of
 * file_size bytes (meta_len >= data_offset is required) and build a
 * checkpoint whose tensors have their storage filled in and no data. The
 * header is returned in *hdr. */
bd_status bdc_parse(const uint8_t *meta, size_t meta_len, uint64_t file_size,
                    const char *name, bdc_header *hdr, bd_ckpt **out);
/* Check that n bytes are zero; `what` names them in the message. */
bd_status bdc_zero_padding(const uint8_t *p, size_t n, const char *name,
                           const char *what, uint64_t at);

/* Fail with BD_E_FORMAT and "<kind> '<name>': <formatted message>". */
bd_status bd_format_fail(const char *kind, const char *name, const char *fmt,
                         ...) __attribute__((format(printf, 3, 4)));

/* ---- .bda archives ------------------------------------------------------- */

#define BDA_MAGIC       "BDAR"
#define BDA_MAJOR       5  /* reads 1.x to 4.x too: 2.0 added the EMA
                              coding, 3.0 analysis entries, 4.0 the trend
                              coding, 5.0 the key-ema coding and split
                              residuals */
#define BDA_MINOR       0
#define BDA_HEADER_SIZE 64u
#define BDA_HEADER_MAX  4096u
#define BDA_INDEX_MAX   (256ull << 20)
#define BDA_ENTRY_MIN   48u  /* an entry's fixed part */
#define BDA_TENSOR_REC  9u   /* u8 coding, u64 stored */
/* The largest .bdc meta region: header, index and alignment padding. */
#define BDA_META_MAX    ((uint64_t)BDC_HEADER_MAX + BDC_INDEX_MAX + BDC_ALIGN_MAX)

/* How a tensor's payload is coded: the coding byte's low 7 bits; bit 7
 * (BDA_SPLIT, 5.0) stores the residuals of a delta, ema, trend or key-ema
 * payload of an f32 tensor split (bda_split_encode) rather than as one
 * frame of their byte planes. */
enum { BDA_KEY = 0, BDA_DELTA = 1, BDA_VERBATIM = 2, BDA_EMA = 3, BDA_TREND = 4,
       BDA_EMA_KEY = 5 };
#define BDA_SPLIT       0x80u
#define BDA_EMA_COEFS   8u  /* an EMA payload starts with two f32 coefficients */
#define BDA_TREND_COEFS 4u  /* a trend payload with one */
#define BDA_EMA_KEY_COEFS 4u  /* a key-ema payload with one */
/* An analysis entry (3.0) holds a checkpoint of kind BDA_ANALYSIS: the
 * training checkpoint without its optimizer state (tensors named
 * BDA_OPTIMIZER...), written by an archive with optimizer_at_keys. */
#define BDA_ANALYSIS  "analysis"
#define BDA_OPTIMIZER "optim."

/* The delta of n bytes of a tensor from its previous version, and back (in
 * place). f32: zigzag differences of order-preserving integers; u8: XOR. */
void bda_delta_encode(int dtype, const uint8_t *cur, const uint8_t *prev,
                      uint8_t *out, uint64_t n);
void bda_delta_decode(int dtype, uint8_t *cur, const uint8_t *prev, uint64_t n);
/* The version of t in prev (which may be NULL) that a delta can be taken
 * against: same name, dtype and size, with data; or NULL. */
const bd_ckpt_tensor *bda_previous(const bd_ckpt *prev, const bd_ckpt_tensor *t);

/* What an EMA payload of `ema.<p>` is predicted from: ema.<p> in the
 * previous entry, <p> in this entry and in the previous one. */
typedef struct bda_ema_refs {
    const float *ema_prev, *w, *w_prev;
} bda_ema_refs;
/* The references of t in (cur, prev): false unless t is an f32 `ema.<p>`
 * (<p> not itself an `ema.` name) and all three exist with t's size and
 * data. */
bool bda_ema_refs_find(const bd_ckpt *cur, const bd_ckpt *prev,
                       const bd_ckpt_tensor *t, bda_ema_refs *r);
/* Coefficients of the prediction
 * ema_prev + c[0] (w - ema_prev) + c[1] (w_prev - ema_prev) for ema that
 * make its residuals cheap to code (any coefficients decode). */
void bda_ema_fit(const float *ema, const bda_ema_refs *r, uint64_t n,
                 float c[2]);
/* The residuals of n floats from their prediction, and back (in place);
 * residuals are coded as deltas are. */
void bda_ema_encode(const float *ema, const bda_ema_refs *r, const float c[2],
                    uint8_t *out, uint64_t n);
void bda_ema_decode(uint8_t *ema, const bda_ema_refs *r, const float c[2],
                    uint64_t n);

/* What a trend payload (4.0) of an f32 tensor is predicted from: its
 * versions in the previous entry (w1) and in the one before (w2). */
typedef struct bda_trend_refs {
    const float *w1, *w2;
} bda_trend_refs;
/* The references of t in prev and prev2 (either may be NULL): false unless
 * t is f32 and both exist with its size and data. */
bool bda_trend_refs_find(const bd_ckpt *prev, const bd_ckpt *prev2,
                         const bd_ckpt_tensor *t, bda_trend_refs *r);
/* The coefficient c of the prediction w1 + c (w1 - w2) for x that makes
 * its residuals cheap to code (any coefficient decodes). */
float bda_trend_fit(const float *x, const bda_trend_refs *r, uint64_t n);
/* The residuals of n floats from their prediction, and back (in place). */
void bda_trend_encode(const float *x, const bda_trend_refs *r, float c,
                      uint8_t *out, uint64_t n);
void bda_trend_decode(uint8_t *x, const bda_trend_refs *r, float c, uint64_t n);

/* A key-ema payload (5.0) of `ema.<p>` is predicted from <p> in the same
 * entry alone, so it may be in a key entry. The weights it is predicted
 * from in cur: <p>, an f32 tensor of t's size with data (t f32, <p> not an
 * `ema.` name); or NULL. */
const float *bda_ema_key_ref(const bd_ckpt *cur, const bd_ckpt_tensor *t);
/* The coefficient c of the prediction w + c w for ema (any decodes). */
float bda_ema_key_fit(const float *ema, const float *w, uint64_t n);
/* The residuals of n floats from their prediction, and back (in place). */
void bda_ema_key_encode(const float *ema, const float *w, float c, uint8_t *out,
                        uint64_t n);
void bda_ema_key_decode(uint8_t *ema, const float *w, float c, uint64_t n);

/* Split residuals (5.0): n residuals (u32, as the codings above write
 * them) as a u64 size, one zstd frame of their classes (a byte each: the
 * value below 4, else its bit length and the bit below its leading one)
 * and the bits below those, packed. *out is malloc'd. */
bd_status bda_split_encode(const uint8_t *residuals, uint64_t n, int level,
                           uint8_t **out, size_t *out_len);
/* Back into residuals (n x u32), checking every size and the padding;
 * messages start with `where`. */
bd_status bda_split_decode(const uint8_t *payload, uint64_t stored, uint64_t n,
                           uint8_t *residuals, const char *where);

/* ---- files --------------------------------------------------------------- */

/* A file written under a temporary name and renamed into place on commit. */
typedef struct bd_atomic {
    int      fd;
    char    *path, *tmp;
    uint64_t size;  /* bytes appended by bd_atomic_write */
} bd_atomic;

bd_status bd_atomic_open(bd_atomic *f, const char *path);
/* Append n bytes (after any written so far by bd_atomic_write). */
bd_status bd_atomic_write(bd_atomic *f, const void *p, size_t n);
bd_status bd_atomic_pwrite(bd_atomic *f, const void *p, size_t n, uint64_t at);
/* fsync, rename over the target, fsync the folder; frees f. */
bd_status bd_atomic_commit(bd_atomic *f);
/* Close and remove the temporary file; frees f. */
void bd_atomic_abort(bd_atomic *f);

/* Whole file into a malloc'd buffer. */
bd_status bd_read_file(const char *path, uint8_t **bytes, size_t *len);
/* Exactly n bytes at offset `at` of fd. */
bd_status bd_pread_exact(int fd, void *p, size_t n, uint64_t at,
                         const char *path);

#endif
