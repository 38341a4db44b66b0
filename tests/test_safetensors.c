/* safetensors files: the writer's output read back bit-exactly, files
 * written by hand in the format's other legal spellings, one test per
 * check of the reader (each failing with its own message; 0-dim and U8
 * tensors of the wrong size too), truncation at
 * every length, and the unet's names in the PyTorch recipe both ways. */
#include "bd/safetensors.h"
#include "test_ckpt_util.h"

static uint8_t *file;
static size_t file_len;

/* A file of the JSON header `json` and `data` bytes 0, 1, 2, ... */
static void make(const char *json, size_t data)
{
    free(file);
    size_t n = strlen(json);
    file_len = 8 + n + data;
    file = malloc(file_len);
    for (int i = 0; i < 8; i++)
        file[i] = (uint8_t)((uint64_t)n >> (8 * i));
    memcpy(file + 8, json, n);
    for (size_t i = 0; i < data; i++)
        file[8 + n + i] = (uint8_t)i;
}

static bd_status load_len(size_t len, bd_ckpt **out)
{
    bd_ckpt *ck = NULL;
    bd_status s = bd_safetensors_load_mem(file, len, "t.safetensors", &ck);
    if (out)
        *out = ck;
    else
        bd_ckpt_free(ck);
    return s;
}

static bd_status load(void) { return load_len(file_len, NULL); }

#define REJECTS(json, data, needle) do { make(json, data); \
    CHECK_FAILS(load(), BD_E_FORMAT, needle); } while (0)

static const char ONE[] = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],"
                          "\"data_offsets\":[0,8]}}";

static void test_round_trip(void)
{
    bd_ckpt *ck = bd_ckpt_new(), *back = NULL;
    int64_t d2[2] = {3, 5}, d0[1] = {0};
    bd_tensor *w = bd_tensor_new(2, d2, false);
    harness_fill(w, -2, 2);
    static const uint8_t bytes[3] = {0, 7, 255};
    const float scalar = 0.25f;
    CHECK_OK(bd_ckpt_add_tensor(ck, "down.0.attn.mha.in_proj_weight", w));
    CHECK_OK(bd_ckpt_add_array(ck, "s", BD_CKPT_F32, 0, NULL, &scalar));
    CHECK_OK(bd_ckpt_add_array(ck, "empty", BD_CKPT_F32, 1, d0, NULL));
    CHECK_OK(bd_ckpt_add_bytes(ck, "raw", bytes, 3));
    CHECK_OK(bd_ckpt_set_str(ck, "bd.config", "{\"a\": \"q\\\"\"}\n\x01"));
    CHECK_OK(bd_ckpt_set_i64(ck, "bd.step", -12));
    CHECK_OK(bd_ckpt_set_f64(ck, "bd.beta", 1e-4));
    uint8_t *enc = NULL;
    size_t len = 0;
    CHECK_OK(bd_safetensors_encode(ck, &enc, &len));
    CHECK(len > 8 && (8 + bd_le64(enc)) % 8 == 0, "data at an 8-byte boundary");
    CHECK_OK(bd_safetensors_load_mem(enc, len, "rt", &back));
    CHECK(back && bd_ckpt_tensor_count(back) == 4, "4 tensors back");
    const bd_ckpt_tensor *t = back ? bd_ckpt_tensor_find(back,
                                     "down.0.attn.mha.in_proj_weight") : NULL;
    CHECK(t && t->ndim == 2 && t->dims[0] == 3 && t->dims[1] == 5
          && memcmp(t->data, w->data, 60) == 0, "weights bit-exact");
    t = back ? bd_ckpt_tensor_find(back, "s") : NULL;
    CHECK(t && t->ndim == 0 && *(const float *)t->data == 0.25f, "scalar");
    t = back ? bd_ckpt_tensor_find(back, "raw") : NULL;
    CHECK(t && t->dtype == BD_CKPT_U8 && memcmp(t->data, bytes, 3) == 0, "u8");
    t = back ? bd_ckpt_tensor_find(back, "empty") : NULL;
    CHECK(t && t->nbytes == 0 && t->dims[0] == 0, "empty tensor");
    const char *v = "";
    if (back) {
        CHECK_OK(bd_ckpt_get_str(back, "bd.config", &v));
        CHECK(strcmp(v, "{\"a\": \"q\\\"\"}\n\x01") == 0, "escaped string: %s", v);
        CHECK_OK(bd_ckpt_get_str(back, "bd.step", &v));
        CHECK(strcmp(v, "-12") == 0, "i64 as a string: %s", v);
        CHECK_OK(bd_ckpt_get_str(back, "bd.beta", &v));
        CHECK(strtod(v, NULL) == 1e-4, "f64 exact: %s", v);
    }
    CHECK_OK(bd_ckpt_set_i64s(ck, "bd.arr", d2, 2));
    free(enc);
    CHECK_FAILS(bd_safetensors_encode(ck, &enc, &len), BD_E_ARG, "'bd.arr' is an array");
    bd_ckpt_free(back);
    bd_ckpt_free(ck);
    bd_tensor_free(w);
}

/* Spacing, field order, escapes and an empty file as other writers do it. */
static void test_other_spellings(void)
{
    bd_ckpt *ck = NULL;
    make("{ }      ", 0);
    CHECK_OK(load_len(file_len, &ck));
    CHECK(ck && bd_ckpt_tensor_count(ck) == 0, "no tensors");
    bd_ckpt_free(ck);
    make("{\n \"__metadata__\" : {\"format\": \"pt\", \"note\": \"\\u00e9\\ud83d\\ude00"
         "\\/\\t\"},\n \"b\": {\"data_offsets\": [8, 9], \"shape\": [], \"dtype\": \"U8\"},"
         "\n \"a\":{\"shape\":[1, 2],\"dtype\":\"F32\",\"data_offsets\":[0,8]}\n}  ", 9);
    CHECK_OK(load_len(file_len, &ck));
    const char *v = "";
    if (ck)
        CHECK_OK(bd_ckpt_get_str(ck, "note", &v));
    CHECK(strcmp(v, "\xc3\xa9\xf0\x9f\x98\x80/\t") == 0, "\\u escapes to UTF-8");
    const bd_ckpt_tensor *b = ck ? bd_ckpt_tensor_find(ck, "b") : NULL;
    CHECK(b && b->ndim == 0 && ((const uint8_t *)b->data)[0] == 8, "u8 scalar");
    bd_ckpt_free(ck);
}

static void test_file_level(void)
{
    make(ONE, 8);
    CHECK_OK(load());
    CHECK_FAILS(load_len(5, NULL), BD_E_FORMAT, "shorter than the 8-byte header");
    CHECK_FAILS(load_len(20, NULL), BD_E_FORMAT, "past the end of the file");
    file[5] = 1;  /* 2^40 + n */
    CHECK_FAILS(load(), BD_E_FORMAT, "expected at most 104857600");
    make(ONE, 8);
    for (size_t len = 0; len < file_len; len++)
        if (load_len(len, NULL) != BD_E_FORMAT)
            CHECK(false, "truncated to %zu bytes: not refused", len);
    harness_passed++;
}

static void test_bad_json(void)
{
    REJECTS("[]", 0, "bad JSON at byte 0 (found '[', expected '{' opening");
    REJECTS("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8,
            "(found the end, expected ',' or '}')");
    REJECTS("{\"w\" {}}", 0, "expected ':'");
    REJECTS("{\"w\":{\"dtype\":\"F32\" \"shape\":[]}}", 0, "expected ',' or '}'");
    REJECTS("{\"w\":{\"dtype\":F32}}", 0, "expected a string");
    REJECTS("{\"w\":{\"dtype\":\"F32}}", 0, "has no closing quote");
    REJECTS("{\"w\":{\"shape\":[1,],\"dtype\":\"F32\"}}", 0, "expected an integer");
    REJECTS("{}x", 0, "byte 0x78 at 2 after the JSON object");
    REJECTS("{\"a\tb\":{}}", 0, "control byte 0x09 in a string");
    REJECTS("{\"a\\xb\":{}}", 0, "bad escape in a string at byte 3");
    REJECTS("{\"__metadata__\":{\"k\":\"\\u0000\"}}", 0, "bad escape");
    REJECTS("{\"__metadata__\":{\"k\":\"\\udc00\"}}", 0, "bad escape");
    REJECTS("{\"__metadata__\":{\"k\":\"\\ud800x\"}}", 0, "bad escape");
}

static void test_bad_entries(void)
{
    REJECTS("{\"w\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
            "tensor 'w': dtype 'F16', expected F32 or U8");
    REJECTS("{\"w\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
            "dtype 'Q7'");
    REJECTS("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],"
            "\"data_offsets\":[0,8]}}", 8, "shape has more than 8 values");
    REJECTS("{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8,
            "shape is negative");
    REJECTS("{\"w\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8,
            "shape at byte 29 is not an integer");
    REJECTS("{\"w\":{\"dtype\":\"F32\",\"shape\":[02],\"data_offsets\":[0,8]}}", 8,
            "leading zero");
    REJECTS("{\"w\":{\"dtype\":\"F32\",\"shape\":[9007199254740993],"
            "\"data_offsets\":[0,8]}}", 8, "is 2^53 or more");
    REJECTS("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4,8]}}", 8,
            "data_offsets has more than 2 values");
    REJECTS("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8]}}", 8,
            "data_offsets has 1 values, expected 2");
    REJECTS("{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "tensor 'w': no 'data_offsets'");
    REJECTS("{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F32\"}}", 8, "field 'dtype' given twice");
    REJECTS("{\"w\":{\"offsets\":[0,8]}}", 8, "unknown field 'offsets'");
    REJECTS("{\"W\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
            "tensor name 'W': byte 0x57 at 0");
    REJECTS("{\"w\":[]}", 0, "expected '{' opening a tensor");
}

static void test_bad_metadata(void)
{
    REJECTS("{\"__metadata__\":{\"k\":3}}", 0, "expected a string");
    REJECTS("{\"__metadata__\":[]}", 0, "'{' opening __metadata__");
    REJECTS("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0,
            "metadata key 'k' given twice");
    REJECTS("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "__metadata__ given twice");
    REJECTS("{\"__metadata__\":{\"Key\":\"a\"}}", 0, "metadata key 'Key'");
}

static void test_bad_layout(void)
{
    REJECTS("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
            "data_offsets [0, 8) hold 8 bytes, expected 12 for shape (3) of F32");
    REJECTS("{\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,8]}}", 8,
            "data_offsets [0, 8) hold 8 bytes, expected 4 for shape () of F32");
    REJECTS("{\"s\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,0]}}", 0,
            "data_offsets [0, 0) hold 0 bytes, expected 1 for shape () of U8");
    REJECTS("{\"u\":{\"dtype\":\"U8\",\"shape\":[2,3],\"data_offsets\":[0,4]}}", 4,
            "hold 4 bytes, expected 6 for shape (2, 3) of U8");
    REJECTS("{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8,
            "end before they begin");
    REJECTS(ONE, 4, "data_offsets [0, 8) past the end of the data (4 bytes)");
    REJECTS("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
            "tensors 'a' and 'b' overlap ([0, 8) and [4, 12))");
    REJECTS("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
            "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12,
            "data bytes [4, 8) belong to no tensor");
    REJECTS(ONE, 12, "data bytes [8, 12) after the last tensor");
    REJECTS("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
            "\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0,
            "tensor 'a' given twice");
    REJECTS("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
            "\"data_offsets\":[0,8]}}", 8, "is more than");
}

static void test_torch_names(void)
{
    static const char *const pairs[][2] = {
        {"stem.conv1.weight", "stem.net.0.weight"},
        {"down1.conv_a.norm2.bias", "down.0.conv.0.net.4.bias"},
        {"down3.conv_b.conv2.weight", "down.2.conv.1.net.3.weight"},
        {"mid2.norm1.weight", "mid.1.net.1.weight"},
        {"up1.emb.bias", "up.0.emb.bias"},
        {"up3.attn.qkv.weight", "up.2.attn.mha.in_proj_weight"},
        {"up3.attn.qkv.bias", "up.2.attn.mha.in_proj_bias"},
        {"down2.attn.proj.weight", "down.1.attn.mha.out_proj.weight"},
        {"down2.attn.norm1.bias", "down.1.attn.ln.bias"},
        {"down2.attn.norm2.weight", "down.1.attn.ff.0.weight"},
        {"up2.attn.ff1.weight", "up.1.attn.ff.1.weight"},
        {"up2.attn.ff2.bias", "up.1.attn.ff.3.bias"},
        {"head.bias", "head.bias"}};
    char out[128];
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
        CHECK(bd_unet_torch_name(pairs[i][0], true, out, sizeof out)
              && strcmp(out, pairs[i][1]) == 0, "%s -> %s", pairs[i][0], out);
        CHECK(bd_unet_torch_name(pairs[i][1], false, out, sizeof out)
              && strcmp(out, pairs[i][0]) == 0, "%s <- %s", pairs[i][0], out);
    }
    static const char *const not_names[] = {"freq", "down4.emb.weight",
        "stem.conv1.weight.x", "stem.conv1", "head.weights", "up.3.emb.bias", ""};
    for (size_t i = 0; i < sizeof not_names / sizeof *not_names; i++)
        CHECK(!bd_unet_torch_name(not_names[i], true, out, sizeof out)
              && !bd_unet_torch_name(not_names[i], false, out, sizeof out),
              "'%s' is no name", not_names[i]);
    CHECK(!bd_unet_torch_name("up3.attn.qkv.weight", true, out, 10), "too short");
}

int main(void)
{
    RUN(test_round_trip);
    RUN(test_other_spellings);
    RUN(test_file_level);
    RUN(test_bad_json);
    RUN(test_bad_entries);
    RUN(test_bad_metadata);
    RUN(test_bad_layout);
    RUN(test_torch_names);
    free(file);
    return harness_summary();
}
