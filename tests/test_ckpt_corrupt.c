/* The .bdc corruption suite: one test per check of the reader, each failing
 * with its own message; truncation at every length and single-bit flips
 * across the file are all caught. Index edits are resealed (their CRC
 * recomputed) so that the check under test, not the CRC, catches them. */
#include "test_ckpt_util.h"

static uint8_t *base, *img;
static size_t base_len;

/* Three f32 tensors with names of equal length: two zstd, one raw. */
static void make_base(void)
{
    bd_ckpt *ck = bd_ckpt_new();
    static const int64_t arr[3] = {1, 2, 3};
    CHECK_OK(bd_ckpt_set_i64(ck, "k.one", 1));
    CHECK_OK(bd_ckpt_set_i64s(ck, "k.tri", arr, 3));
    CHECK_OK(bd_ckpt_set_str(ck, "k.two", "hello"));
    int64_t d1[2] = {64, 40}, d2[1] = {100}, d3[2] = {32, 32};
    bd_tensor *t = bd_tensor_new(2, d1, false);
    fill_smooth(t->data, t->numel, 0.0);
    CHECK_OK(bd_ckpt_add_tensor(ck, "w.first", t));
    bd_tensor_free(t);
    t = bd_tensor_new(1, d2, false);
    harness_fill(t, -1, 1);
    CHECK_OK(bd_ckpt_add_tensor(ck, "w.raw_2", t));
    bd_tensor_free(t);
    t = bd_tensor_new(2, d3, false);
    fill_smooth(t->data, t->numel, 1.0);
    CHECK_OK(bd_ckpt_add_tensor(ck, "w.third", t));
    bd_tensor_free(t);
    CHECK_OK(bd_ckpt_encode(ck, NULL, &base, &base_len));
    bd_ckpt_free(ck);
    img = malloc(base_len);
}

static void fresh(void) { memcpy(img, base, base_len); }

static bd_status load(size_t len)
{
    bd_ckpt *ck = NULL;
    bd_status s = bd_ckpt_load_mem(img, len, "t.bdc", &ck);
    bd_ckpt_free(ck);
    return s;
}

/* Recompute the index CRC, as a crafted file would. */
static bd_status sealed(void)
{
    bd_put_le32(img + 56, bdc_meta_crc(img, bd_le64(img + 40)));
    return load(base_len);
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t data_offset(void) { return bd_le64(base + 40); }
static uint64_t meta_end(void) { return 64 + bd_le64(base + 32); }

/* Fields of a record or key/value, found by name in the index. */
static uint8_t *after_name(const char *name)
{
    size_t n = strlen(name);
    uint8_t *p = find_bytes(img + 64, meta_end() - 64, name, n);
    if (!p) {
        printf("no '%s' in the index\n", name);
        exit(2);
    }
    return p + n;
}

typedef struct rec {
    uint8_t *dtype, *ndim, *dims, *codec, *filter, *level, *reserved;
    uint8_t *offset, *stored, *raw, *crc;
} rec;

static rec record(const char *name)
{
    uint8_t *p = after_name(name), *q = p + 2 + 8 * p[1];
    return (rec){.dtype = p, .ndim = p + 1, .dims = p + 2, .codec = q,
                 .filter = q + 1, .level = q + 2, .reserved = q + 3,
                 .offset = q + 4, .stored = q + 12, .raw = q + 20,
                 .crc = q + 28};
}

/* The blob of a tensor in img. */
static uint8_t *blob(const char *name)
{
    return img + data_offset() + bd_le64(record(name).offset);
}

/* ---- header -------------------------------------------------------------- */

static void test_header(void)
{
    fresh();
    CHECK_OK(load(base_len));
    CHECK_FAILS(load(63), BD_E_FORMAT,
                "file truncated inside the header (found 63 bytes, the header needs 64)");
    fresh(); img[0] = 'X';
    CHECK_FAILS(load(base_len), BD_E_FORMAT,
                "bad magic (found 58 44 43 4b 'XDCK', expected 'BDCK')");
    fresh(); img[4] = 2;
    CHECK_FAILS(load(base_len), BD_E_FORMAT,
                "format version 2.0 is newer than this reader (reads 1.x)");
    fresh(); img[4] = 0;
    CHECK_FAILS(load(base_len), BD_E_FORMAT, "format version 0.0 is older");
    fresh(); img[6] = 7;
    CHECK_OK(sealed());  /* a newer minor version is read */
    fresh(); img[8] = 32;
    CHECK_FAILS(load(base_len), BD_E_FORMAT, "header_size out of range (found 32");
    fresh(); img[16] = 100;
    CHECK_FAILS(load(base_len), BD_E_FORMAT,
                "bad alignment (found 100, expected a power of two from 64 to 1048576)");
    fresh(); put64(img + 32, 1ull << 40);
    CHECK_FAILS(load(base_len), BD_E_FORMAT,
                "index_size above the cap (found 1099511627776");
    fresh(); put64(img + 40, data_offset() + 64);
    CHECK_FAILS(load(base_len), BD_E_FORMAT, "bad data_offset (found");
    fresh(); put64(img + 48, bd_le64(base + 48) + 1000);
    CHECK_FAILS(load(base_len), BD_E_FORMAT, "file size mismatch (data_offset");
    fresh(); img[12] ^= 1;
    CHECK_FAILS(load(base_len), BD_E_FORMAT, "index crc32c mismatch");
}

static void test_huge_counts(void)
{
    fresh(); bd_put_le32(img + 20, 0xFFFFFFFFu);
    CHECK_FAILS(load(base_len), BD_E_FORMAT,
                "n_kv too large for the index (found 4294967295");
    fresh(); put64(img + 24, 1ull << 60);
    CHECK_FAILS(load(base_len), BD_E_FORMAT,
                "n_tensors too large for the index (found 1152921504606846976");
    fresh(); put64(after_name("k.tri") + 1, 1ull << 61);
    CHECK_FAILS(sealed(), BD_E_FORMAT,
                "kv 'k.tri': array count too large (found 2305843009213693952");
    fresh(); put64(after_name("k.two") + 1, 1ull << 40);
    CHECK_FAILS(sealed(), BD_E_FORMAT, "index ends inside string of kv 'k.two'");
}

/* ---- truncation ---------------------------------------------------------- */

static void test_truncation(void)
{
    uint64_t pad = data_offset() - meta_end();
    CHECK(pad > 0, "the base file has padding after its index (%llu)",
          (unsigned long long)pad);
    fresh();
    CHECK_FAILS(load(40), BD_E_FORMAT, "file truncated inside the header");
    CHECK_FAILS(load(100), BD_E_FORMAT, "file truncated inside the index");
    CHECK_FAILS(load(meta_end() + pad / 2), BD_E_FORMAT,
                "file truncated inside the index padding");
    const char *names[3] = {"w.first", "w.raw_2", "w.third"};
    for (int i = 0; i < 3; i++) {
        rec r = record(names[i]);
        uint64_t mid = data_offset() + bd_le64(r.offset) + bd_le64(r.stored) / 2;
        CHECK_FAILS(load(mid), BD_E_FORMAT, "file size mismatch (data_offset");
    }
    int caught = 0;
    for (size_t n = 0; n < base_len; n++)
        caught += load(n) == BD_E_FORMAT;
    CHECK(caught == (int)base_len, "every truncation fails (%d of %zu)", caught,
          base_len);
}

/* ---- index --------------------------------------------------------------- */

static void test_index_crc_and_padding(void)
{
    fresh(); after_name("k.one")[3] ^= 0x08;  /* a bit of a value */
    CHECK_FAILS(load(base_len), BD_E_FORMAT,
                "index crc32c mismatch (computed 0x");
    fresh(); *record("w.third").level ^= 1;
    CHECK_FAILS(load(base_len), BD_E_FORMAT, "index crc32c mismatch");
    fresh(); img[meta_end()] = 1;
    CHECK_FAILS(sealed(), BD_E_FORMAT, "padding after the index is not zero");
}

static void test_kv_records(void)
{
    fresh(); after_name("k.one")[-5] = 'K';
    CHECK_FAILS(sealed(), BD_E_FORMAT, "kv 0: bad key name 'K.one'");
    fresh(); memcpy(after_name("k.tri") - 5, "k.one", 5);
    CHECK_FAILS(sealed(), BD_E_FORMAT, "kv 1: duplicate key name 'k.one'");
    fresh(); memcpy(after_name("k.tri") - 5, "k.aaa", 5);
    CHECK_FAILS(sealed(), BD_E_FORMAT,
                "kv 1: key names out of order ('k.aaa' after 'k.one')");
    fresh(); after_name("k.one")[0] = 9;
    CHECK_FAILS(sealed(), BD_E_FORMAT,
                "kv 'k.one': unknown kv type (found 9, expected 1 to 6)");
    fresh(); after_name("hello")[-2] = 0;
    CHECK_FAILS(sealed(), BD_E_FORMAT, "kv 'k.two': string holds a NUL byte");
    fresh(); after_name("k.one")[-7] = 0;  /* key length 0 */
    CHECK_FAILS(sealed(), BD_E_FORMAT, "kv 0: bad key name '' (length 0");
}

static void test_tensor_records(void)
{
    fresh(); after_name("w.raw_2")[-3] = '-';
    CHECK_FAILS(sealed(), BD_E_FORMAT, "tensor record 1: bad tensor name 'w.ra-_2'");
    fresh(); memcpy(after_name("w.raw_2") - 7, "w.first", 7);
    CHECK_FAILS(sealed(), BD_E_FORMAT, "duplicate tensor name 'w.first'");
    fresh(); memcpy(after_name("w.third") - 7, "w.aaaaa", 7);
    CHECK_FAILS(sealed(), BD_E_FORMAT, "tensor names out of order");
    fresh(); *record("w.first").dtype = 3;
    CHECK_FAILS(sealed(), BD_E_FORMAT,
                "tensor 'w.first': unknown dtype (found 3, expected 1 f32 or 2 u8)");
    fresh(); *record("w.first").ndim = 9;
    CHECK_FAILS(sealed(), BD_E_FORMAT, "too many dims (found ndim 9, at most 8)");
    fresh(); put64(record("w.first").dims, (uint64_t)-1);
    CHECK_FAILS(sealed(), BD_E_FORMAT, "negative dim (found dim 0 = -1)");
    fresh(); put64(record("w.first").dims, 1ull << 62);
    put64(record("w.first").dims + 8, 1ull << 62);
    CHECK_FAILS(sealed(), BD_E_FORMAT,
                "dims overflow ((4611686018427387904, 4611686018427387904) x 4");
    fresh(); put64(record("w.first").dims + 8, 41);
    CHECK_FAILS(sealed(), BD_E_FORMAT,
                "raw_size does not match dims (found 10240, expected (64, 41) x 4 = 10496)");
    fresh(); *record("w.first").codec = 5;
    CHECK_FAILS(sealed(), BD_E_FORMAT, "unknown codec (found 5");
    fresh(); *record("w.first").filter = 3;
    CHECK_FAILS(sealed(), BD_E_FORMAT, "unknown filter (found 3");
    fresh(); *record("w.raw_2").filter = 1;
    CHECK_FAILS(sealed(), BD_E_FORMAT, "filter 1 on a raw blob");
    fresh(); *record("w.first").reserved = 0x80;
    CHECK_FAILS(sealed(), BD_E_FORMAT, "reserved byte is not zero (found 0x80)");
    fresh(); put64(record("w.first").dims, 1ull << 31);
    put64(record("w.first").dims + 8, 4);
    put64(record("w.first").raw, 1ull << 35);
    CHECK_FAILS(sealed(), BD_E_FORMAT,
                "tensor above the cap of 17179869184 raw bytes (found 34359738368)");
    fresh(); put64(record("w.first").stored, 1ull << 40);
    CHECK_FAILS(sealed(), BD_E_FORMAT, "zstd blob larger than any frame");
}

static void test_offsets(void)
{
    rec r;
    fresh(); r = record("w.raw_2");
    put64(r.offset, bd_le64(record("w.first").offset));
    CHECK_FAILS(sealed(), BD_E_FORMAT, "tensor 'w.raw_2': overlapping offsets");
    fresh(); r = record("w.raw_2");
    put64(r.offset, bd_le64(r.offset) + 64);
    CHECK_FAILS(sealed(), BD_E_FORMAT, "tensor 'w.raw_2': gap before the blob");
    fresh(); r = record("w.raw_2");
    put64(r.offset, bd_le64(r.offset) + 1);
    CHECK_FAILS(sealed(), BD_E_FORMAT, "tensor 'w.raw_2': misaligned offset");
    fresh(); r = record("w.raw_2");
    put64(r.stored, bd_le64(r.stored) + 1);
    CHECK_FAILS(sealed(), BD_E_FORMAT, "raw blob size mismatch (stored_size 401");
    fresh(); r = record("w.third");
    put64(r.stored, bd_le64(r.stored) + 100);
    CHECK_FAILS(sealed(), BD_E_FORMAT,
                "tensor 'w.third': blob past the end of the data section");
    fresh(); r = record("w.third");
    put64(r.stored, bd_le64(r.stored) - 1);
    CHECK_FAILS(sealed(), BD_E_FORMAT, "data section has trailing bytes");
    fresh(); put64(img + 24, 2);
    CHECK_FAILS(sealed(), BD_E_FORMAT, "index has trailing bytes");
}

/* ---- blobs --------------------------------------------------------------- */

static void test_frames(void)
{
    rec r;
    fresh(); blob("w.first")[0] ^= 0xFF;
    CHECK_FAILS(load(base_len), BD_E_FORMAT,
                "tensor 'w.first': not a zstd frame (found magic 0xfd2fb5d7");
    fresh(); blob("w.first")[4] &= (uint8_t)~0x04;
    CHECK_FAILS(load(base_len), BD_E_FORMAT, "zstd frame has no checksum");
    fresh(); blob("w.first")[4] |= 0x01;
    CHECK_FAILS(load(base_len), BD_E_FORMAT, "zstd frame needs a dictionary");
    fresh(); r = record("w.first");
    put64(r.dims + 8, 39);
    put64(r.raw, 64 * 39 * 4);
    CHECK_FAILS(sealed(), BD_E_FORMAT,
                "zstd frame content size mismatch (found 10240, expected raw_size 9984)");
    fresh(); r = record("w.first");
    put64(r.dims, 1ull << 26);
    put64(r.raw, (1ull << 26) * 40 * 4);
    CHECK_FAILS(sealed(), BD_E_FORMAT, "cannot hold 10737418240 bytes (ratio above");
    /* The frame plus the padding after it: a frame shorter than its blob. */
    fresh(); r = record("w.first");
    uint64_t end = bd_le64(r.offset) + bd_le64(r.stored);
    uint64_t pad = bd_le64(record("w.raw_2").offset) - end;
    CHECK(pad > 0, "w.first is followed by padding (%llu)", (unsigned long long)pad);
    put64(r.stored, bd_le64(r.stored) + pad);
    CHECK_FAILS(sealed(), BD_E_FORMAT, "zstd frame size mismatch (frame is");
    fresh(); img[data_offset() + end] = 0xAA;
    CHECK_FAILS(load(base_len), BD_E_FORMAT, "padding between blobs is not zero");
    /* The last blob cut short, with the sizes made consistent. */
    fresh(); r = record("w.third");
    put64(r.stored, bd_le64(r.stored) - 1);
    put64(img + 48, bd_le64(img + 48) - 1);
    bd_put_le32(img + 56, bdc_meta_crc(img, data_offset()));
    CHECK_FAILS(load(base_len - 1), BD_E_FORMAT,
                "tensor 'w.third': zstd frame is truncated or corrupt");
}

static void test_payload_bits(void)
{
    fresh();
    uint8_t *b = blob("w.first");
    b[bd_le64(record("w.first").stored) / 2] ^= 0x10;
    CHECK_FAILS(load(base_len), BD_E_FORMAT,
                "tensor 'w.first': zstd frame does not decode");
    fresh(); blob("w.raw_2")[17] ^= 0x01;
    CHECK_FAILS(load(base_len), BD_E_FORMAT,
                "tensor 'w.raw_2': crc32c mismatch of the raw bytes");
    fresh(); record("w.third").crc[0] ^= 1;
    CHECK_FAILS(sealed(), BD_E_FORMAT,
                "tensor 'w.third': crc32c mismatch of the raw bytes");
    /* Any single flipped bit anywhere is caught. */
    int caught = 0, tried = 0;
    for (size_t i = 0; i < base_len; i += 5, tried++) {
        fresh();
        img[i] ^= (uint8_t)(1u << (i % 8));
        caught += load(base_len) == BD_E_FORMAT;
    }
    CHECK(caught == tried, "every flipped bit is caught (%d of %d)", caught, tried);
}

int main(void)
{
    make_base();
    RUN(test_header);
    RUN(test_huge_counts);
    RUN(test_truncation);
    RUN(test_index_crc_and_padding);
    RUN(test_kv_records);
    RUN(test_tensor_records);
    RUN(test_offsets);
    RUN(test_frames);
    RUN(test_payload_bits);
    free(base);
    free(img);
    return harness_summary();
}
