/*
 * test_vectors_v2.c - the Python reference's protocol v2 vectors (vectors/v2.json,
 * docs/PROTOCOL.md §14), reproduced byte for byte by the C core: handshake transcripts and
 * key schedule, key delivery (CTRL / CTRL_ACK), DATA and SYNC frames, stored records.
 * A file that does not match the expected shape fails (exit 2), it is never skipped.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "json.h"
#include "node_priv.h"

static json_t *s_root;

static const char *jstr(const json_t *o, const char *key)
{
    const json_t *v = json_member(o, key);
    if (v == NULL || v->type != JSON_STRING) {
        printf("    missing string %s in %s\n", key, o ? o->path : "?");
        exit(2);
    }
    return v->s;
}

static long long jint(const json_t *o, const char *key)
{
    const json_t *v = json_member(o, key);
    if (v == NULL || v->type != JSON_INT) {
        printf("    missing integer %s in %s\n", key, o ? o->path : "?");
        exit(2);
    }
    return v->i;
}

static const json_t *jobj(const json_t *o, const char *key)
{
    const json_t *v = json_member(o, key);
    if (v == NULL || (v->type != JSON_OBJECT && v->type != JSON_ARRAY)) {
        printf("    missing object %s in %s\n", key, o ? o->path : "?");
        exit(2);
    }
    return v;
}

static size_t hexv(const json_t *o, const char *key, uint8_t *out)
{
    return unhex(jstr(o, key), out);
}

#define CHECK_HEX(buf, len, o, key)                                                                  \
    do {                                                                                             \
        static uint8_t _want[2048];                                                                  \
        size_t _n = hexv((o), (key), _want);                                                         \
        CHECK_EQ((len), _n);                                                                         \
        if (_n == (size_t)(len) && memcmp((buf), _want, _n) != 0) {                                  \
            printf("    %s differs (%s)\n", (key), (o)->path);                                      \
            h_cur_fail++;                                                                            \
        }                                                                                            \
    } while (0)

static void test_handshakes(void)
{
    const json_t *arr = jobj(s_root, "handshakes");
    CHECK(arr->n >= 1);
    for (size_t i = 0; i < arr->n; i++) {
        const json_t *c = arr->items[i];
        const json_t *in = jobj(c, "inputs");
        uint8_t mac_i[6], mac_r[6], pop[128], e_i_priv[32], e_r_priv[32];
        hexv(in, "mac_i", mac_i);
        hexv(in, "mac_r", mac_r);
        size_t pop_len = hexv(jobj(in, "pop"), "hex", pop);
        hexv(in, "e_i_priv", e_i_priv);
        hexv(in, "e_r_priv", e_r_priv);
        uint32_t sid = (uint32_t)jint(in, "sid");

        uint8_t pop_hash[32], hs1[41], hs2[40], hs3[40], hs4[40], dh[32], dh2[32], th2[32], th3[32], k_ctl[16], pid[4];
        CHECK_EQ(espnow_sec_ks_pop_hash(pop, pop_len, pop_hash), ESP_OK);
        CHECK_HEX(pop_hash, 32, c, "pop_hash");
        espnow_sec_v2_clear_hdr(hs1, ESPNOW_SEC_V2_T_HS1);
        espnow_sec_put_be32(&hs1[4], sid);
        hs1[8] = 1;
        CHECK_EQ(espnow_sec_crypto_x25519_public(e_i_priv, &hs1[9]), ESP_OK);
        CHECK_HEX(hs1, 41, c, "hs1");
        espnow_sec_v2_clear_hdr(hs2, ESPNOW_SEC_V2_T_HS2);
        espnow_sec_put_be32(&hs2[4], sid);
        CHECK_EQ(espnow_sec_crypto_x25519_public(e_r_priv, &hs2[8]), ESP_OK);
        CHECK_HEX(hs2, 40, c, "hs2");
        CHECK_EQ(espnow_sec_crypto_x25519(e_i_priv, &hs2[8], dh), ESP_OK);
        CHECK_EQ(espnow_sec_crypto_x25519(e_r_priv, &hs1[9], dh2), ESP_OK);
        CHECK_MEM(dh, dh2, 32);
        CHECK_HEX(dh, 32, c, "dh");
        CHECK_EQ(espnow_sec_ks_th2(mac_i, mac_r, hs1, hs2, th2), ESP_OK);
        CHECK_HEX(th2, 32, c, "th2");
        espnow_sec_hs_keys_t k;
        CHECK_EQ(espnow_sec_ks_hs_keys(th2, dh, pop_hash, &k), ESP_OK);
        CHECK_HEX(k.k_conf_i, 32, c, "k_conf_i");
        CHECK_HEX(k.k_conf_r, 32, c, "k_conf_r");
        CHECK_HEX(k.k_dev, 32, c, "k_dev");
        espnow_sec_v2_clear_hdr(hs3, ESPNOW_SEC_V2_T_HS3);
        espnow_sec_put_be32(&hs3[4], sid);
        CHECK_EQ(espnow_sec_ks_conf(k.k_conf_i, th2, &hs3[8]), ESP_OK);
        CHECK_HEX(&hs3[8], 32, c, "conf_i");
        CHECK_HEX(hs3, 40, c, "hs3");
        CHECK_EQ(espnow_sec_ks_conf_verify(k.k_conf_i, th2, &hs3[8]), ESP_OK);
        CHECK_EQ(espnow_sec_ks_th3(th2, hs3, th3), ESP_OK);
        CHECK_HEX(th3, 32, c, "th3");
        espnow_sec_v2_clear_hdr(hs4, ESPNOW_SEC_V2_T_HS4);
        espnow_sec_put_be32(&hs4[4], sid);
        CHECK_EQ(espnow_sec_ks_conf(k.k_conf_r, th3, &hs4[8]), ESP_OK);
        CHECK_HEX(hs4, 40, c, "hs4");
        CHECK_EQ(espnow_sec_ks_ctl_key(k.k_dev, mac_i, mac_r, k_ctl), ESP_OK);
        CHECK_HEX(k_ctl, 16, c, "k_ctl");
        CHECK_EQ(espnow_sec_ks_pair_id(k.k_dev, pid), ESP_OK);
        CHECK_HEX(pid, 4, c, "pair_id");
    }
    printf("    handshakes: %zu cases\n", arr->n);
}

/* CTRL KEY plaintext from the vector's op object. */
static size_t ctrl_pt(const json_t *op, uint8_t *pt)
{
    const char *name = jstr(op, "op");
    if (strcmp(name, "KEY") == 0) {
        const json_t *a = json_member(op, "activate");
        pt[0] = ESPNOW_SEC_V2_OP_KEY;
        pt[1] = a != NULL && a->type == JSON_BOOL && a->b ? 1 : 0;
        espnow_sec_put_be16(&pt[2], (uint16_t)jint(op, "epoch"));
        espnow_sec_put_be16(&pt[4], (uint16_t)jint(op, "grace_s"));
        hexv(op, "group_secret", &pt[6]);
        return 38;
    }
    if (strcmp(name, "UNPROVISION") == 0) {
        pt[0] = ESPNOW_SEC_V2_OP_UNPROVISION;
        return 1;
    }
    pt[0] = ESPNOW_SEC_V2_OP_RESET;
    espnow_sec_put_be16(&pt[1], (uint16_t)jint(op, "window_s"));
    return 3;
}

static void check_secured(const json_t *f, const espnow_sec_ccm_key_t *k, const uint8_t src[6], const uint8_t dst[6],
                          uint8_t type, uint16_t epoch, uint64_t ctr, const uint8_t *pt, size_t pt_len)
{
    /* sized for long frames (§7.5): the sealing is pure crypto, whatever this build's radio limit */
    static uint8_t frame[ESPNOW_SEC_MAX_PAYLOAD_V2_LONG + 64], back[ESPNOW_SEC_MAX_PAYLOAD_V2_LONG + 64];
    uint8_t nonce[13], aad[24];
    size_t n = 0;
    espnow_sec_v2_sec_hdr(frame, type, epoch, ctr);
    CHECK_HEX(frame, 12, f, "header");
    CHECK_HEX(pt, pt_len, f, "plaintext");
    espnow_sec_ks_nonce(src, frame, nonce);
    CHECK_HEX(nonce, 13, f, "nonce");
    espnow_sec_ks_aad(frame, dst, src, aad);
    CHECK_HEX(aad, 24, f, "aad");
    CHECK_EQ(espnow_sec_ks_seal(k, src, dst, frame, pt, pt_len, &n), ESP_OK);
    CHECK_HEX(frame, n, f, "frame");
    CHECK_EQ(espnow_sec_ks_open(k, src, dst, frame, n, back), ESP_OK);
    CHECK_MEM(back, pt, pt_len);
}

static void test_key_delivery(void)
{
    const json_t *arr = jobj(s_root, "handshakes");
    size_t n_kd = 0;
    for (size_t i = 0; i < arr->n; i++) {
        const json_t *c = arr->items[i];
        const json_t *kd = json_member(jobj(c, "inputs"), "key_delivery");
        if (kd == NULL) {
            continue;
        }
        n_kd++;
        uint8_t mac_i[6], mac_r[6], k_dev[32], k_ctl[16], pt[64], check[16], g[32];
        hexv(jobj(c, "inputs"), "mac_i", mac_i);
        hexv(jobj(c, "inputs"), "mac_r", mac_r);
        hexv(c, "k_dev", k_dev);
        hexv(c, "k_ctl", k_ctl);
        espnow_sec_ccm_key_t k = {0};
        CHECK_EQ(espnow_sec_ks_import(&k, k_ctl, 16), ESP_OK);
        const json_t *op = jobj(kd, "op");
        size_t n = ctrl_pt(op, pt);
        const json_t *out = jobj(c, "key_delivery");
        check_secured(jobj(out, "ctrl"), &k, mac_i, mac_r, ESPNOW_SEC_V2_T_CTRL, 0, (uint64_t)jint(kd, "ctrl_counter"), pt, n);
        hexv(op, "group_secret", g);
        CHECK_EQ(espnow_sec_ks_key_check(k_dev, (uint16_t)jint(op, "epoch"), g, check), ESP_OK);
        CHECK_HEX(check, 16, out, "key_check");
        uint8_t ack[28] = {0};
        espnow_sec_put_be48(ack, (uint64_t)jint(kd, "ctrl_counter"));
        ack[6] = ESPNOW_SEC_V2_OP_KEY;
        ack[7] = ESPNOW_SEC_V2_ST_OK;
        espnow_sec_put_be16(&ack[8], (uint16_t)jint(op, "epoch"));
        memcpy(&ack[12], check, 16);
        check_secured(jobj(out, "ctrl_ack"), &k, mac_r, mac_i, ESPNOW_SEC_V2_T_CTRL_ACK, 0,
                      (uint64_t)jint(kd, "ack_counter"), ack, sizeof(ack));
        espnow_sec_crypto_ccm_key_destroy(&k);
    }
    printf("    key delivery: %zu cases\n", n_kd);
}

static void test_group_frames(const char *group)
{
    const json_t *arr = jobj(s_root, group);
    size_t long_frames = 0;
    CHECK(arr->n >= 1);
    for (size_t i = 0; i < arr->n; i++) {
        const json_t *c = arr->items[i];
        const json_t *in = jobj(c, "inputs");
        uint8_t g[32], src[6], dst[6], pt[ESPNOW_SEC_MAX_PAYLOAD_V2_LONG], aes[16];
        hexv(in, "group_secret", g);
        hexv(in, "src", src);
        hexv(in, "dst", dst);
        uint16_t epoch = (uint16_t)jint(in, "epoch");
        CHECK_EQ(espnow_sec_ks_grp_key(g, epoch, aes), ESP_OK);
        CHECK_HEX(aes, 16, c, "k_grp");
        size_t n;
        uint8_t type;
        if (strcmp(group, "sync") == 0) {
            hexv(in, "challenge", pt);
            hexv(in, "echo", &pt[8]);
            n = 16;
            type = ESPNOW_SEC_V2_T_SYNC;
        } else {
            n = hexv(in, "payload", pt);
            type = ESPNOW_SEC_V2_T_DATA;
        }
        long_frames += n > ESPNOW_SEC_MAX_PAYLOAD_V2; /* e.g. data-e1-n1450-ucast: sealed all the same */
        espnow_sec_ccm_key_t k = {0};
        CHECK_EQ(espnow_sec_ks_import(&k, aes, 8), ESP_OK);
        check_secured(c, &k, src, dst, type, epoch, (uint64_t)jint(in, "counter"), pt, n);
        espnow_sec_crypto_ccm_key_destroy(&k);
    }
    printf("    %s: %zu cases (%zu of them long frames, §7.5)\n", group, arr->n, long_frames);
}

static void test_data_frames(void)
{
    test_group_frames("data");
}

static void test_sync_frames(void)
{
    test_group_frames("sync");
}

static void test_records(void)
{
    const json_t *arr = jobj(s_root, "records");
    for (size_t i = 0; i < arr->n; i++) {
        const json_t *c = arr->items[i];
        const json_t *f = jobj(jobj(c, "inputs"), "fields");
        const char *rec = jstr(jobj(c, "inputs"), "record");
        uint8_t out[128];
        size_t n = 0;
        if (strcmp(rec, "v2_ctr") == 0) {
            espnow_sec_v2_ctr_encode((uint64_t)jint(f, "reserved"), out);
            n = ESPNOW_SEC_V2_CTR_LEN;
        } else if (strcmp(rec, "v2_grp") == 0) {
            espnow_sec_v2_grp_rec_t g = {0};
            g.cur.epoch = (uint16_t)jint(f, "epoch");
            hexv(f, "secret", g.cur.g);
            g.stg.epoch = (uint16_t)jint(f, "staged_epoch");
            hexv(f, "staged_secret", g.stg.g);
            g.grace_s = (uint16_t)jint(f, "grace_s");
            const json_t *r = json_member(f, "rollout");
            g.rollout = r != NULL && r->type == JSON_BOOL && r->b;
            espnow_sec_v2_grp_encode(&g, out);
            n = ESPNOW_SEC_V2_GRP_LEN;
        } else if (strcmp(rec, "v2_resp") == 0) {
            espnow_sec_v2_resp_rec_t r = {0};
            hexv(f, "mac_i", r.mac_i);
            hexv(f, "k_dev", r.k_dev);
            r.ctl_floor = (uint64_t)jint(f, "ctl_floor");
            r.cur.epoch = (uint16_t)jint(f, "epoch");
            hexv(f, "secret", r.cur.g);
            r.stg.epoch = (uint16_t)jint(f, "staged_epoch");
            hexv(f, "staged_secret", r.stg.g);
            r.grace_s = (uint16_t)jint(f, "grace_s");
            espnow_sec_v2_resp_encode(&r, out);
            n = ESPNOW_SEC_V2_RESP_LEN;
        } else if (strcmp(rec, "v2_dev") == 0) {
            espnow_sec_v2_dev_rec_t d = {0};
            hexv(f, "mac", d.mac);
            hexv(f, "k_dev", d.k_dev);
            hexv(f, "k_dev_pending", d.k_dev_pending);
            const char *st = jstr(f, "state");
            d.state = strcmp(st, "PENDING_KEY") == 0 ? 1 : strcmp(st, "ACTIVE") == 0 ? 2 : 3;
            d.acked_epoch = (uint16_t)jint(f, "acked_epoch");
            d.staged_acked = (uint16_t)jint(f, "staged_acked");
            espnow_sec_v2_dev_encode(&d, out);
            n = ESPNOW_SEC_V2_DEV_LEN;
        } else {
            printf("    unknown record %s\n", rec);
            h_cur_fail++;
            continue;
        }
        CHECK_HEX(out, n, c, "bytes");
    }
    printf("    records: %zu cases\n", arr->n);
}


/* ==== primitives (RFC 5869 A.1-A.3, RFC 4231 1-2, RFC 3610 #1) through crypto.h ==== */

static void test_primitives(void)
{
    const json_t *arr = jobj(s_root, "primitives");
    int n_hkdf = 0, n_hmac = 0, n_ccm = 0;
    CHECK(arr->n >= 1);
    for (size_t i = 0; i < arr->n; i++) {
        const json_t *c = arr->items[i];
        const json_t *in = jobj(c, "inputs");
        const char *alg = jstr(in, "alg");
        static uint8_t a[256], b[256], d[256], out[512];
        if (strcmp(alg, "hkdf_sha256") == 0) {
            size_t ikm_len = hexv(in, "ikm", a);
            size_t salt_len = hexv(in, "salt", b);
            size_t info_len = hexv(in, "info", d);
            size_t len = (size_t)jint(in, "length");
            /* RFC 5869 §2.2: an absent salt is HashLen zeros; HMAC pads the key to the block,
             * so 32 zero bytes give the same PRK (crypto.h wants a salt of >= 1 byte). */
            if (salt_len == 0) {
                memset(b, 0, ESPNOW_SEC_SHA256_LEN);
                salt_len = ESPNOW_SEC_SHA256_LEN;
            }
            uint8_t prk[ESPNOW_SEC_SHA256_LEN], hkey[ESPNOW_SEC_SHA256_LEN];
            const uint8_t *k = b;
            size_t k_len = salt_len;
            if (salt_len > 64) {
                /* RFC 2104 §2: a key longer than the block is hashed first (crypto.h takes <= 64) */
                CHECK_EQ(espnow_sec_crypto_sha256(b, salt_len, hkey), ESP_OK);
                k = hkey;
                k_len = sizeof(hkey);
            }
            CHECK_EQ(espnow_sec_crypto_hmac_sha256(k, k_len, a, ikm_len, prk), ESP_OK); /* Extract */
            CHECK_HEX(prk, sizeof(prk), c, "prk");
            CHECK(len <= sizeof(out));
            CHECK_EQ(espnow_sec_crypto_hkdf_sha256(b, salt_len, a, ikm_len, d, info_len, out, len), ESP_OK);
            CHECK_HEX(out, len, c, "okm");
            n_hkdf++;
        } else if (strcmp(alg, "hmac_sha256") == 0) {
            size_t key_len = hexv(in, "key", a);
            size_t msg_len = hexv(in, "data", b);
            CHECK_EQ(espnow_sec_crypto_hmac_sha256(a, key_len, b, msg_len, out), ESP_OK);
            CHECK_HEX(out, ESPNOW_SEC_SHA256_LEN, c, "mac");
            CHECK_EQ(espnow_sec_crypto_hmac_sha256_verify(a, key_len, b, msg_len, out, ESPNOW_SEC_SHA256_LEN), ESP_OK);
            out[31] ^= 1;
            CHECK(espnow_sec_crypto_hmac_sha256_verify(a, key_len, b, msg_len, out, ESPNOW_SEC_SHA256_LEN) != ESP_OK);
            n_hmac++;
        } else if (strcmp(alg, "aes128_ccm") == 0) {
            uint8_t key[16], nonce[16], back[256];
            CHECK_EQ(hexv(in, "key", key), 16);
            size_t nonce_len = hexv(in, "nonce", nonce);
            size_t aad_len = hexv(in, "aad", a);
            size_t pt_len = hexv(in, "plaintext", b);
            size_t tag = (size_t)jint(in, "tag_len");
            CHECK_EQ(nonce_len, ESPNOW_SEC_V2_NONCE_LEN);
            espnow_sec_ccm_key_t k = {0};
            CHECK_EQ(espnow_sec_crypto_ccm_key_import(&k, key, 16, tag), ESP_OK);
            CHECK_EQ(espnow_sec_crypto_ccm_seal(&k, nonce, nonce_len, a, aad_len, b, pt_len, out), ESP_OK);
            CHECK_HEX(out, pt_len + tag, c, "sealed");
            CHECK_EQ(espnow_sec_crypto_ccm_open(&k, nonce, nonce_len, a, aad_len, out, pt_len + tag, back), ESP_OK);
            CHECK_MEM(back, b, pt_len);
            out[pt_len + tag - 1] ^= 1;
            CHECK(espnow_sec_crypto_ccm_open(&k, nonce, nonce_len, a, aad_len, out, pt_len + tag, back) != ESP_OK);
            espnow_sec_crypto_ccm_key_destroy(&k);
            n_ccm++;
        } else {
            printf("    unknown primitive %s (%s)\n", alg, c->path);
            h_cur_fail++;
        }
    }
    printf("    primitives: %d HKDF, %d HMAC, %d CCM\n", n_hkdf, n_hmac, n_ccm);
}

/* ==== a scripted env: clock, RNG, store, radio, events and logs recorded ==== */

#define SE_MAX_RECS 24
#define SE_MAX_OUT 16
#define SE_MAX_EV 16
#define SE_MAX_LOG 16
#define SE_MAX_DRAWS 64

typedef struct {
    char name[16];
    uint8_t data[160];
    size_t len;
    bool erased; /* writes[]: an erase */
} se_rec_t;

typedef struct {
    uint8_t dst[6];
    uint8_t frame[ESPNOW_SEC_FRAME_MAX];
    size_t len;
} se_out_t;

typedef struct {
    uint32_t now;
    /* RNG: the script's draws, in order and of the exact length; or filler (setup) */
    bool filler;
    size_t n_draws, used;
    uint8_t draw[SE_MAX_DRAWS][64];
    size_t draw_len[SE_MAX_DRAWS];
    int rng_errors;
    /* store */
    se_rec_t recs[SE_MAX_RECS];
    size_t n_recs;
    se_rec_t writes[SE_MAX_RECS];
    size_t n_writes;
    /* radio, events (Python-shaped text), logs */
    se_out_t out[SE_MAX_OUT];
    size_t n_out;
    char ev[SE_MAX_EV][400];
    size_t n_ev;
    char log[SE_MAX_LOG][200];
    size_t n_log;
    /* the frame being received (DataReceived.epoch comes from its header) */
    const uint8_t *rx_frame;
    size_t rx_len;
} senv_t;

static uint32_t se_now(void *ctx)
{
    return ((senv_t *)ctx)->now;
}

static void se_random(void *ctx, uint8_t *buf, size_t len)
{
    senv_t *e = ctx;
    if (e->filler) {
        memset(buf, 0x5a, len);
        return;
    }
    if (e->used >= e->n_draws || e->draw_len[e->used] != len) {
        printf("    RNG: draw %zu of %zu bytes, script has %s\n", e->used, len,
               e->used >= e->n_draws ? "no more draws" : "another length");
        e->rng_errors++;
        memset(buf, 0x5a, len);
        e->used++;
        return;
    }
    memcpy(buf, e->draw[e->used], len);
    e->used++;
}

static esp_err_t se_send(void *ctx, const uint8_t dst[6], const uint8_t *frame, size_t len)
{
    senv_t *e = ctx;
    if (e->n_out < SE_MAX_OUT && len <= ESPNOW_SEC_FRAME_MAX) {
        memcpy(e->out[e->n_out].dst, dst, 6);
        memcpy(e->out[e->n_out].frame, frame, len);
        e->out[e->n_out].len = len;
    }
    e->n_out++;
    return ESP_OK;
}

static se_rec_t *se_find(senv_t *e, const char *name)
{
    for (size_t i = 0; i < e->n_recs; i++) {
        if (strcmp(e->recs[i].name, name) == 0) {
            return &e->recs[i];
        }
    }
    return NULL;
}

static esp_err_t se_load(void *ctx, const char *name, uint8_t *buf, size_t cap, size_t *out_len)
{
    se_rec_t *r = se_find(ctx, name);
    if (r == NULL) {
        return ESP_ERR_NOT_FOUND;
    }
    if (r->len > cap) {
        return ESP_ERR_INVALID_SIZE;
    }
    memcpy(buf, r->data, r->len);
    *out_len = r->len;
    return ESP_OK;
}

static void se_log_write(senv_t *e, const char *name, const uint8_t *buf, size_t len, bool erased)
{
    if (e->n_writes < SE_MAX_RECS) {
        se_rec_t *w = &e->writes[e->n_writes];
        snprintf(w->name, sizeof(w->name), "%s", name);
        w->len = len;
        w->erased = erased;
        if (!erased) {
            memcpy(w->data, buf, len);
        }
    }
    e->n_writes++;
}

static esp_err_t se_save(void *ctx, const char *name, const uint8_t *buf, size_t len)
{
    senv_t *e = ctx;
    se_rec_t *r = se_find(e, name);
    if (len > sizeof(r->data)) {
        return ESP_ERR_INVALID_SIZE;
    }
    if (r == NULL) {
        if (e->n_recs == SE_MAX_RECS) {
            return ESP_ERR_NO_MEM;
        }
        r = &e->recs[e->n_recs++];
        snprintf(r->name, sizeof(r->name), "%s", name);
    }
    memcpy(r->data, buf, len);
    r->len = len;
    se_log_write(e, name, buf, len, false);
    return ESP_OK;
}

static esp_err_t se_erase(void *ctx, const char *name)
{
    senv_t *e = ctx;
    se_rec_t *r = se_find(e, name);
    if (r != NULL) {
        *r = e->recs[--e->n_recs];
    }
    se_log_write(e, name, NULL, 0, true);
    return ESP_OK;
}

static void hexs(char *out, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        snprintf(&out[2 * i], 3, "%02x", b[i]);
    }
    out[2 * n] = '\0';
}

/*
 * The one table between the C core and the Python reference's strings:
 * drop reasons (§2.6: the reason's name in lower case), PEER_FAILED reasons, events.
 */
static const char *const s_drop_names[ESPNOW_SEC_DROP_COUNT] = {
    [ESPNOW_SEC_DROP_MALFORMED] = "malformed",
    [ESPNOW_SEC_DROP_FOREIGN] = "foreign",
    [ESPNOW_SEC_DROP_AUTH] = "auth",
    [ESPNOW_SEC_DROP_REPLAY] = "replay",
    [ESPNOW_SEC_DROP_DUPLICATE] = "duplicate",
    [ESPNOW_SEC_DROP_UNSYNCED] = "unsynced",
    [ESPNOW_SEC_DROP_EPOCH] = "epoch",
    [ESPNOW_SEC_DROP_TABLE_FULL] = "table_full",
    [ESPNOW_SEC_DROP_STATE] = "state",
    [ESPNOW_SEC_DROP_RATE_LIMITED] = "rate_limited",
    [ESPNOW_SEC_DROP_PLAINTEXT] = "plaintext",
};

static const char *fail_name(espnow_sec_fail_reason_t r)
{
    switch (r) {
    case ESPNOW_SEC_FAIL_TIMEOUT: return "timeout";
    case ESPNOW_SEC_FAIL_POP_MISMATCH: return "pop_mismatch";
    case ESPNOW_SEC_FAIL_BAD_KEY: return "bad_key";
    case ESPNOW_SEC_FAIL_MALFORMED: return "malformed";
    case ESPNOW_SEC_FAIL_KEY_ECHO: return "key_echo";
    case ESPNOW_SEC_FAIL_STORE: return "store_fail";
    default: return "?";
    }
}

/* Events as "Name key=value ..." in the Python dataclasses' field order. */
static void se_event(void *ctx, const espnow_sec_event_t *ev)
{
    senv_t *e = ctx;
    char mac[13], *o = e->n_ev < SE_MAX_EV ? e->ev[e->n_ev] : NULL;
    e->n_ev++;
    if (o == NULL) {
        return;
    }
    hexs(mac, ev->data.peer.mac, 6);
    switch (ev->id) {
    case ESPNOW_SEC_EVENT_PEER_SECURED:
        snprintf(o, 400, "PeerSecured mac=%s", mac);
        break;
    case ESPNOW_SEC_EVENT_PEER_FAILED:
        snprintf(o, 400, "PeerFailed mac=%s reason=%s", mac, fail_name(ev->data.peer.reason));
        break;
    case ESPNOW_SEC_EVENT_UNPROVISIONED:
        snprintf(o, 400, "Unprovisioned by=%s", mac);
        break;
    case ESPNOW_SEC_EVENT_DEVICE_REMOVED:
        snprintf(o, 400, "DeviceRemoved mac=%s acked=%s", mac, ev->data.peer.reason == ESPNOW_SEC_FAIL_NONE ? "true" : "false");
        break;
    case ESPNOW_SEC_EVENT_REKEY_DONE:
        /* A responder's REKEY_DONE is the reference's EpochActivated (it activated an epoch). */
        snprintf(o, 400, "EpochActivated epoch=%u", ev->data.rekey.epoch);
        break;
    case ESPNOW_SEC_EVENT_SCAN_DONE:
        snprintf(o, 400, "ScanDone found=%u scan_ms=%u", (unsigned)ev->data.scan.found, (unsigned)ev->data.scan.scan_ms);
        break;
    default:
        snprintf(o, 400, "event %d", (int)ev->id);
        break;
    }
}

static void se_deliver(void *ctx, const espnow_sec_rx_info_t *info, const uint8_t *data, size_t len)
{
    senv_t *e = ctx;
    char src[13], hex[2 * 64 + 1];
    char *o = e->n_ev < SE_MAX_EV ? e->ev[e->n_ev] : NULL;
    e->n_ev++;
    if (o == NULL) {
        return;
    }
    hexs(src, info->src, 6);
    hexs(hex, data, len < 64 ? len : 64);
    bool enc = info->protection == ESPNOW_SEC_RX_ENCRYPTED;
    unsigned epoch = enc && e->rx_frame != NULL && e->rx_len >= 6 ? espnow_sec_get_be16(&e->rx_frame[4]) : 0;
    snprintf(o, 400, "DataReceived src=%s data=%s protection=%s broadcast=%s epoch=%u", src, hex,
             enc ? "encrypted" : "plaintext", info->broadcast ? "true" : "false", epoch);
}

static void se_logf(void *ctx, espnow_sec_log_level_t level, const char *fmt, va_list ap)
{
    senv_t *e = ctx;
    (void)level;
    if (e->n_log < SE_MAX_LOG) {
        vsnprintf(e->log[e->n_log++], sizeof(e->log[0]), fmt, ap);
    }
}

static void se_clear_step(senv_t *e)
{
    e->n_out = e->n_writes = e->n_ev = e->n_log = 0;
}

static espnow_sec_env_t se_env(senv_t *e)
{
    espnow_sec_env_t env = {
        .ctx = e,
        .now_ms = se_now,
        .random = se_random,
        .send = se_send,
        .store_load = se_load,
        .store_save = se_save,
        .store_erase = se_erase,
        .event = se_event,
        .deliver = se_deliver,
        .log = se_logf,
    };
    return env;
}

static bool log_has(const senv_t *e, const char *text)
{
    for (size_t i = 0; i < e->n_log; i++) {
        if (strstr(e->log[i], text) != NULL) {
            return true;
        }
    }
    return false;
}

/* ==== classification (§2.1): the class, the drop and the log line, through the node ==== */

static const char *class_name(espnow_sec_frame_class_t c, bool v2_node)
{
    switch (c) {
    case ESPNOW_SEC_CLASS_EMPTY: return "malformed";
    case ESPNOW_SEC_CLASS_V2: return v2_node ? "v2" : "foreign";
    case ESPNOW_SEC_CLASS_COMPAT: return v2_node ? "foreign" : "compat";
    default: return "foreign";
    }
}

static void test_classification(void)
{
    static const char *const class_logs[] = {"v2 frame ignored", "compat frame ignored", "unknown v2 revision"};
    static const uint8_t own[6] = {2, 0, 0, 0, 0, 2}, stranger[6] = {2, 0, 0, 0, 0, 0xee};
    const json_t *arr = jobj(s_root, "classification");
    CHECK(arr->n >= 1);
    senv_t *e = calloc(1, sizeof(*e));
    espnow_sec_env_t env = se_env(e);
    espnow_sec_node_t *node = malloc(espnow_sec_node_size());
    e->filler = true;
    for (size_t i = 0; i < arr->n; i++) {
        const json_t *c = arr->items[i];
        uint8_t body[64];
        size_t len = hexv(jobj(c, "inputs"), "bytes", body);
        for (int mode = 0; mode < 2; mode++) {
            bool v2 = mode == 0;
            const json_t *want = jobj(c, v2 ? "v2" : "compat");
            const char *cls = jstr(want, "class");
            const char *log = jstr(want, "log");
            espnow_sec_node_config_t cfg = {.role = ESPNOW_SEC_ROLE_RESPONDER, .channel = 1, .pop = "espnow_pop",
                                            .protocol = v2 ? ESPNOW_SEC_PROTOCOL_V2 : ESPNOW_SEC_PROTOCOL_COMPAT};
            memcpy(cfg.self_mac, own, 6);
            CHECK_EQ(espnow_sec_node_init(node, &env, &cfg), ESP_OK);
            if (strcmp(class_name(espnow_sec_classify(body, len), v2), cls) != 0) {
                printf("    %s (%s node): class %s, vector %s\n", c->path, v2 ? "v2" : "compat",
                       class_name(espnow_sec_classify(body, len), v2), cls);
                h_cur_fail++;
            }
            se_clear_step(e);
            espnow_sec_stats_t before, after;
            espnow_sec_node_get_stats(node, &before);
            espnow_sec_node_on_frame(node, stranger, own, len ? body : (const uint8_t *)"", len, -40, 1);
            espnow_sec_node_get_stats(node, &after);
            bool foreign = after.rx_foreign > before.rx_foreign;
            bool malformed = after.rx_malformed > before.rx_malformed;
            bool ok;
            if (strcmp(cls, "foreign") == 0) {
                ok = foreign && !malformed;
            } else if (strcmp(cls, "malformed") == 0) {
                ok = malformed && !foreign;
            } else {
                ok = !foreign; /* v2 / compat: past classification (later steps may drop it) */
            }
            if (*log != '\0') {
                ok = ok && log_has(e, log);
            } else {
                for (size_t k = 0; k < sizeof(class_logs) / sizeof(class_logs[0]); k++) {
                    ok = ok && !log_has(e, class_logs[k]);
                }
            }
            if (!ok) {
                printf("    %s (%s node): want %s / \"%s\"; rx_foreign +%u rx_malformed +%u, log \"%s\"\n", c->path,
                       v2 ? "v2" : "compat", cls, log, after.rx_foreign - before.rx_foreign,
                       after.rx_malformed - before.rx_malformed, e->n_log ? e->log[e->n_log - 1] : "");
                h_cur_fail++;
            }
            espnow_sec_node_deinit(node);
        }
    }
    printf("    classification: %zu cases x 2 node modes\n", arr->n);
    free(node);
    free(e);
}

/* ==== control: CTRL of every op, CTRL_ACK of every status ==== */

static uint8_t status_code(const char *name)
{
    static const char *const names[] = {"OK", "STALE_EPOCH", "EPOCH_CONFLICT", "STORE_FAIL", "BAD_OP"};
    for (uint8_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(name, names[i]) == 0) {
            return i; /* §5.2: 0 OK .. 4 BAD_OP, the order of ESPNOW_SEC_V2_ST_* */
        }
    }
    printf("    unknown CTRL_ACK status %s\n", name);
    exit(2);
}

static void test_control(void)
{
    const json_t *arr = jobj(s_root, "control");
    CHECK(arr->n >= 1);
    _Static_assert(ESPNOW_SEC_V2_ST_BAD_OP == 4 && ESPNOW_SEC_V2_ST_STORE_FAIL == 3, "§5.2 status codes");
    int n_ctrl = 0, n_ack = 0;
    for (size_t i = 0; i < arr->n; i++) {
        const json_t *c = arr->items[i];
        const json_t *in = jobj(c, "inputs");
        uint8_t mac_i[6], mac_r[6], k_dev[32], k_ctl[16], pt[64];
        hexv(in, "mac_i", mac_i);
        hexv(in, "mac_r", mac_r);
        hexv(in, "k_dev", k_dev);
        CHECK_EQ(espnow_sec_ks_ctl_key(k_dev, mac_i, mac_r, k_ctl), ESP_OK);
        CHECK_HEX(k_ctl, 16, c, "k_ctl");
        espnow_sec_ccm_key_t k = {0};
        CHECK_EQ(espnow_sec_ks_import(&k, k_ctl, ESPNOW_SEC_V2_TAG_CTL), ESP_OK);
        const json_t *op = json_member(in, "op");
        if (op != NULL) {
            size_t n = ctrl_pt(op, pt);
            check_secured(jobj(c, "ctrl"), &k, mac_i, mac_r, ESPNOW_SEC_V2_T_CTRL, 0, (uint64_t)jint(in, "counter"), pt, n);
            n_ctrl++;
        }
        const json_t *ack = json_member(in, "ack");
        if (ack != NULL) {
            uint8_t a[ESPNOW_SEC_V2_CTRL_ACK_PT] = {0};
            espnow_sec_put_be48(a, (uint64_t)jint(ack, "req_counter"));
            a[6] = (uint8_t)jint(ack, "op");
            a[7] = status_code(jstr(ack, "status"));
            espnow_sec_put_be16(&a[8], (uint16_t)jint(ack, "cur_epoch"));
            espnow_sec_put_be16(&a[10], (uint16_t)jint(ack, "staged_epoch"));
            const json_t *kc = json_member(ack, "key_check_of");
            if (kc != NULL) {
                uint8_t g[32];
                hexv(kc, "group_secret", g);
                CHECK_EQ(espnow_sec_ks_key_check(k_dev, (uint16_t)jint(kc, "epoch"), g, &a[12]), ESP_OK);
            }
            check_secured(jobj(c, "ctrl_ack"), &k, mac_r, mac_i, ESPNOW_SEC_V2_T_CTRL_ACK, 0, (uint64_t)jint(ack, "counter"),
                          a, sizeof(a));
            n_ack++;
        }
        espnow_sec_crypto_ccm_key_destroy(&k);
    }
    printf("    control: %zu cases, %d CTRL, %d CTRL_ACK\n", arr->n, n_ctrl, n_ack);
}

/* ==== replay windows (§8.2, §8.3) through replay.c ==== */

static void test_replay(void)
{
    const json_t *arr = jobj(s_root, "replay");
    CHECK(arr->n >= 1);
    size_t steps = 0;
    for (size_t i = 0; i < arr->n; i++) {
        const json_t *c = arr->items[i];
        const json_t *in = jobj(c, "inputs");
        const json_t *st = jobj(in, "steps");
        const json_t *res = jobj(c, "results");
        CHECK_EQ(st->n, res->n);
        espnow_sec_rp_entry_t e = {0};
        espnow_sec_rp_sync(&e, (uint64_t)jint(in, "sync_at"), 0);
        for (size_t j = 0; j < st->n && j < res->n; j++) {
            const json_t *s = st->items[j];
            const json_t *r = res->items[j];
            uint64_t ctr = (uint64_t)jint(s, "c");
            if (strcmp(jstr(s, "op"), "sync") == 0) {
                espnow_sec_rp_sync(&e, ctr, (uint32_t)j);
            } else {
                bool ok = espnow_sec_rp_check(&e, ctr);
                if (ok) {
                    espnow_sec_rp_commit(&e, ctr, (uint32_t)j);
                }
                if (strcmp(jstr(r, "result"), ok ? "accept" : "replay") != 0) {
                    printf("    %s: counter %llu %s, vector %s\n", r->path, (unsigned long long)ctr,
                           ok ? "accepted" : "replay", jstr(r, "result"));
                    h_cur_fail++;
                }
            }
            char bm[17];
            snprintf(bm, sizeof(bm), "%016llx", (unsigned long long)e.bitmap);
            CHECK_EQ(e.max, jint(r, "max"));
            if (strcmp(bm, jstr(r, "bitmap")) != 0) {
                printf("    %s: bitmap %s, vector %s\n", r->path, bm, jstr(r, "bitmap"));
                h_cur_fail++;
            }
            steps++;
        }
    }
    printf("    replay: %zu cases, %zu steps\n", arr->n, steps);
}

/* ==== scripts: one C node per script, driven step by step ==== */

/*
 * The reference's V2Config fields (§13 defaults) and this build's compile-time values. A
 * script's `config` may override any of them; it runs in the build variant whose values all
 * equal the script's (its overrides, the defaults elsewhere).
 */
typedef struct {
    const char *key;
    long long py_default;
    long long build;
} cfg_key_t;

static const cfg_key_t s_cfg_keys[] = {
    {"require_pop", 1, ESPNOW_SEC_V2_REQUIRE_POP},
    {"long_frames", 0, ESPNOW_SEC_V2_LONG_FRAMES},
    {"max_responders", 32, ESPNOW_SEC_MAX_RESPONDERS},
    {"max_devices", 32, ESPNOW_SEC_MAX_DEVICES},
    {"max_handshakes", 16, ESPNOW_SEC_MAX_HANDSHAKES},
    {"responder_sessions", 2, ESPNOW_SEC_RESPONDER_SESSIONS},
    {"scan_duration_ms", 1000, ESPNOW_SEC_SCAN_DURATION_MS},
    {"scan_interval_ms", 200, ESPNOW_SEC_SCAN_INTERVAL_MS},
    {"scan_reply_jitter_ms", 50, ESPNOW_SEC_SCAN_REPLY_JITTER_MS},
    {"retry_max", 6, ESPNOW_SEC_RETRY_MAX},
    {"retry_base_ms", 150, ESPNOW_SEC_RETRY_BASE_MS},
    {"retry_cap_ms", 1200, ESPNOW_SEC_RETRY_CAP_MS},
    {"hs_attempts", 3, ESPNOW_SEC_HS_ATTEMPTS},
    {"session_timeout_ms", 8000, ESPNOW_SEC_SESSION_TIMEOUT_MS},
    {"session_min_hold_ms", 2000, ESPNOW_SEC_SESSION_MIN_HOLD_MS},
    {"linger_ms", 10000, ESPNOW_SEC_LINGER_MS},
    {"pop_burst", 5, ESPNOW_SEC_POP_BURST},
    {"pop_refill_ms", 10000, ESPNOW_SEC_POP_REFILL_MS},
    {"pop_backoff_base_ms", 1000, ESPNOW_SEC_POP_BACKOFF_BASE_MS},
    {"pop_backoff_max_ms", 60000, ESPNOW_SEC_POP_BACKOFF_MAX_MS},
    {"pop_fail_table", 8, ESPNOW_SEC_POP_FAIL_TABLE},
    {"pop_forget_ms", 600000, ESPNOW_SEC_POP_FORGET_MS},
    {"counter_block", 1024, ESPNOW_SEC_COUNTER_BLOCK},
    {"replay_senders", 32, ESPNOW_SEC_REPLAY_SENDERS},
    {"replay_idle_s", 600, ESPNOW_SEC_REPLAY_IDLE_S},
    {"sync_retry_ms", 200, ESPNOW_SEC_SYNC_RETRY_MS},
    {"sync_retries", 5, ESPNOW_SEC_SYNC_RETRIES},
    {"sync_jitter_ms", 100, ESPNOW_SEC_SYNC_JITTER_MS},
    {"sync_spread_ms", 5000, ESPNOW_SEC_SYNC_SPREAD_MS},
    {"sync_bcast_valid_ms", 4000, ESPNOW_SEC_SYNC_BCAST_VALID_MS},
    {"sync_on_join", 1, ESPNOW_SEC_SYNC_ON_JOIN},
    {"epoch_grace_s", 30, ESPNOW_SEC_EPOCH_GRACE_S},
    {"rekey_timeout_ms", 10000, ESPNOW_SEC_REKEY_TIMEOUT_MS},
    {"announce_repeat", 3, ESPNOW_SEC_ANNOUNCE_REPEAT},
    {"announce_gap_ms", 200, ESPNOW_SEC_ANNOUNCE_GAP_MS},
    {"straggler_gap_ms", 5000, ESPNOW_SEC_STRAGGLER_GAP_MS},
    {"repair_window_s", 120, ESPNOW_SEC_REPAIR_WINDOW_S},
};
#define N_CFG_KEYS (sizeof(s_cfg_keys) / sizeof(s_cfg_keys[0]))

/* The build variants of tests/c/CMakeLists.txt (VEC_VARIANT indexes this table). */
typedef struct {
    const char *name;
    const char *key; /* NULL: all defaults */
    long long val;
} variant_t;

static const variant_t s_variants[] = {
    {"test_vectors_v2 (defaults)", NULL, 0},
    {"test_vectors_v2_nosync (sync_on_join = n)", "sync_on_join", 0},
    {"test_vectors_v2_sessions8 (responder_sessions = 8)", "responder_sessions", 8},
};
#define N_VARIANTS (sizeof(s_variants) / sizeof(s_variants[0]))

#ifndef VEC_VARIANT
#define VEC_VARIANT 0
#endif

static long long variant_value(size_t v, const cfg_key_t *k)
{
    return s_variants[v].key != NULL && strcmp(s_variants[v].key, k->key) == 0 ? s_variants[v].val : k->py_default;
}

/* The variant a script needs; exits 2 on a config key this driver does not know. */
static size_t script_variant(const json_t *setup)
{
    const json_t *cfg = json_member(setup, "config");
    for (size_t i = 0; cfg != NULL && i < cfg->n; i++) {
        bool known = false;
        for (size_t k = 0; k < N_CFG_KEYS; k++) {
            known = known || strcmp(cfg->keys[i], s_cfg_keys[k].key) == 0;
        }
        if (!known || (cfg->items[i]->type != JSON_INT && cfg->items[i]->type != JSON_BOOL)) {
            printf("    %s: config key %s unknown to this driver\n", cfg->path, cfg->keys[i]);
            exit(2);
        }
    }
    for (size_t v = 0; v < N_VARIANTS; v++) {
        bool all = true;
        for (size_t k = 0; k < N_CFG_KEYS && all; k++) {
            const json_t *o = json_member(cfg, s_cfg_keys[k].key);
            long long want = o == NULL ? s_cfg_keys[k].py_default : o->type == JSON_BOOL ? o->b : o->i;
            all = want == variant_value(v, &s_cfg_keys[k]);
        }
        if (all) {
            return v;
        }
    }
    return N_VARIANTS;
}

/*
 * Where the reference and PROTOCOL.md disagree (the C core follows the spec), the step's
 * field is compared with the C value given here instead (exactly); each is printed when it
 * applies. Anything else that differs fails.
 */
typedef struct {
    const char *script;
    size_t step;
    const char *field;
    const char *c_value; /* the field as the C core produces it (canonical text) */
    const char *why;
} known_diff_t;

static const known_diff_t s_known[] = {
    /* none at present; an entry is {script, step, field, C value, why}. The terminator keeps
     * the array non-empty. */
    {NULL, 0, NULL, NULL, NULL},
};

static int s_known_used;

static const known_diff_t *known_diff(const char *script, size_t step, const char *field, const char *c_value)
{
    for (size_t i = 0; i < sizeof(s_known) / sizeof(s_known[0]); i++) {
        const known_diff_t *k = &s_known[i];
        if (k->script != NULL && strcmp(k->script, script) == 0 && k->step == step && strcmp(k->field, field) == 0 &&
            strcmp(k->c_value, c_value) == 0) {
            return k;
        }
    }
    return NULL;
}

/* Canonical text of a JSON event object: "Name key=value ..." (file order). */
static void event_text(const json_t *ev, char *out, size_t cap)
{
    size_t n = (size_t)snprintf(out, cap, "%s", jstr(ev, "event"));
    for (size_t i = 0; i < ev->n && n < cap; i++) {
        const json_t *v = ev->items[i];
        if (strcmp(ev->keys[i], "event") == 0) {
            continue;
        }
        if (v->type == JSON_STRING) {
            n += (size_t)snprintf(&out[n], cap - n, " %s=%s", ev->keys[i], v->s);
        } else if (v->type == JSON_INT) {
            n += (size_t)snprintf(&out[n], cap - n, " %s=%lld", ev->keys[i], v->i);
        } else if (v->type == JSON_BOOL) {
            n += (size_t)snprintf(&out[n], cap - n, " %s=%s", ev->keys[i], v->b ? "true" : "false");
        } else {
            n += (size_t)snprintf(&out[n], cap - n, " %s=?", ev->keys[i]);
        }
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Compare one step's outcome; returns the mismatches. */
static int check_step(const char *script, size_t j, const json_t *r, senv_t *e, const uint32_t *before,
                      const uint32_t *after, esp_err_t op_err, bool is_op)
{
    int bad = 0;
    char c_text[1024], v_text[1024];
    /* out */
    const json_t *out = jobj(r, "out");
    for (size_t k = 0; k < out->n || k < e->n_out; k++) {
        uint8_t dst[6] = {0}, frame[ESPNOW_SEC_FRAME_MAX];
        size_t flen = 0;
        if (k < out->n) {
            hexv(out->items[k], "dst", dst);
            flen = hexv(out->items[k], "frame", frame);
        }
        bool same = k < out->n && k < e->n_out && k < SE_MAX_OUT && memcmp(dst, e->out[k].dst, 6) == 0 &&
                    flen == e->out[k].len && memcmp(frame, e->out[k].frame, flen) == 0;
        if (!same) {
            char h[2 * ESPNOW_SEC_FRAME_MAX + 1] = "(none)", d[13] = "";
            if (k < e->n_out && k < SE_MAX_OUT) {
                hexs(h, e->out[k].frame, e->out[k].len);
                hexs(d, e->out[k].dst, 6);
            }
            printf("    %s step %zu: out[%zu] C %s %s\n", script, j, k, d, h);
            printf("    %s step %zu: out[%zu] vector %s %s\n", script, j, k,
                   k < out->n ? jstr(out->items[k], "dst") : "", k < out->n ? jstr(out->items[k], "frame") : "(none)");
            bad++;
        }
    }
    /* drops: the reasons whose counter moved, sorted (as the reference lists them) */
    const char *names[ESPNOW_SEC_DROP_COUNT];
    size_t nn = 0;
    for (int d = 0; d < ESPNOW_SEC_DROP_COUNT; d++) {
        if (after[d] > before[d]) {
            names[nn++] = s_drop_names[d];
        }
    }
    qsort(names, nn, sizeof(names[0]), cmp_str);
    size_t n = (size_t)snprintf(c_text, sizeof(c_text), "[");
    for (size_t k = 0; k < nn; k++) {
        n += (size_t)snprintf(&c_text[n], sizeof(c_text) - n, "%s%s", k ? "," : "", names[k]);
    }
    snprintf(&c_text[n], sizeof(c_text) - n, "]");
    const json_t *drops = jobj(r, "drops");
    n = (size_t)snprintf(v_text, sizeof(v_text), "[");
    for (size_t k = 0; k < drops->n; k++) {
        n += (size_t)snprintf(&v_text[n], sizeof(v_text) - n, "%s%s", k ? "," : "", drops->items[k]->s);
    }
    snprintf(&v_text[n], sizeof(v_text) - n, "]");
    if (strcmp(c_text, v_text) != 0) {
        const known_diff_t *kd = known_diff(script, j, "drops", c_text);
        if (kd != NULL) {
            printf("    known disagreement %s step %zu drops: C %s, vector %s (%s)\n", script, j, c_text, v_text, kd->why);
            s_known_used++;
        } else {
            printf("    %s step %zu: drops C %s, vector %s\n", script, j, c_text, v_text);
            bad++;
        }
    }
    /* events */
    const json_t *evs = jobj(r, "events");
    for (size_t k = 0; k < evs->n || k < e->n_ev; k++) {
        if (k < evs->n) {
            event_text(evs->items[k], v_text, sizeof(v_text));
        }
        const char *c_ev = k < e->n_ev && k < SE_MAX_EV ? e->ev[k] : "(none)";
        if (k >= evs->n || strcmp(c_ev, v_text) != 0) {
            const known_diff_t *kd = known_diff(script, j, "events", c_ev);
            if (kd != NULL) {
                printf("    known disagreement %s step %zu event: C %s (%s)\n", script, j, c_ev, kd->why);
                s_known_used++;
                continue;
            }
            printf("    %s step %zu: event[%zu] C %s, vector %s\n", script, j, k, c_ev, k < evs->n ? v_text : "(none)");
            bad++;
        }
    }
    /* storage writes, in order, as "name=hex" / "name=(erase)" joined by commas */
    static char c_wr[4096], v_wr[4096];
    const json_t *wr = jobj(r, "writes");
    n = 0;
    c_wr[0] = v_wr[0] = '\0';
    for (size_t k = 0; k < e->n_writes && k < SE_MAX_RECS; k++) {
        char h[2 * 160 + 1] = "(erase)";
        if (!e->writes[k].erased) {
            hexs(h, e->writes[k].data, e->writes[k].len);
        }
        n += (size_t)snprintf(&c_wr[n], sizeof(c_wr) - n, "%s%s=%s", k ? "," : "", e->writes[k].name, h);
    }
    n = 0;
    for (size_t k = 0; k < wr->n; k++) {
        const json_t *data = json_member(wr->items[k], "data");
        n += (size_t)snprintf(&v_wr[n], sizeof(v_wr) - n, "%s%s=%s", k ? "," : "", jstr(wr->items[k], "name"),
                              data != NULL && data->type == JSON_STRING ? data->s : "(erase)");
    }
    if (strcmp(c_wr, v_wr) != 0) {
        const known_diff_t *kd = known_diff(script, j, "writes", c_wr);
        if (kd != NULL) {
            printf("    known disagreement %s step %zu writes: C %s\n", script, j, c_wr);
            printf("        vector %s (%s)\n", v_wr, kd->why);
            s_known_used++;
        } else {
            printf("    %s step %zu: writes C %s\n", script, j, c_wr);
            printf("    %s step %zu: writes vector %s\n", script, j, v_wr);
            bad++;
        }
    }
    /* an operation the reference refused */
    const json_t *err = json_member(r, "error");
    if (is_op && (err != NULL) != (op_err != ESP_OK)) {
        printf("    %s step %zu: operation returned %s, vector error %s\n", script, j, espnow_sec_err_to_name(op_err),
               err != NULL && err->type == JSON_STRING ? err->s : "(none)");
        bad++;
    }
    return bad;
}

static int run_script(const json_t *sc, size_t *n_steps)
{
    const char *id = jstr(sc, "id");
    const json_t *setup = jobj(jobj(sc, "inputs"), "setup");
    const json_t *steps = jobj(jobj(sc, "inputs"), "steps");
    const json_t *results = jobj(sc, "results");
    int bad = 0;
    if (steps->n != results->n) {
        printf("    %s: %zu steps, %zu results\n", id, steps->n, results->n);
        return 1;
    }
    senv_t *e = calloc(1, sizeof(*e));
    espnow_sec_env_t env = se_env(e);
    espnow_sec_node_t *node = calloc(1, espnow_sec_node_size());
    /* setup */
    espnow_sec_node_config_t cfg = {.channel = 1, .protocol = ESPNOW_SEC_PROTOCOL_V2};
    const char *role = jstr(setup, "role");
    cfg.role = strcmp(role, "initiator") == 0 ? ESPNOW_SEC_ROLE_INITIATOR : ESPNOW_SEC_ROLE_RESPONDER;
    hexv(setup, "mac", cfg.self_mac);
    char pop[ESPNOW_SEC_POP_MAX + 1] = {0};
    size_t pop_len = hexv(jobj(setup, "pop"), "hex", (uint8_t *)pop);
    CHECK(pop_len <= ESPNOW_SEC_POP_MAX && strlen(pop) == pop_len);
    cfg.pop = pop;
    const json_t *store = json_member(setup, "store");
    for (size_t k = 0; store != NULL && k < store->n && e->n_recs < SE_MAX_RECS; k++) {
        se_rec_t *r = &e->recs[e->n_recs++];
        snprintf(r->name, sizeof(r->name), "%s", store->keys[k]);
        r->len = unhex(store->items[k]->s, r->data);
    }
    const json_t *rng = jobj(setup, "rng");
    for (size_t k = 0; k < rng->n && k < SE_MAX_DRAWS; k++) {
        e->draw_len[k] = unhex(rng->items[k]->s, e->draw[k]);
    }
    e->n_draws = rng->n;
    const json_t *t0 = json_member(setup, "t0");
    e->now = t0 != NULL && t0->type == JSON_INT ? (uint32_t)t0->i : 0;
    /*
     * The reference builds the machine from its records without start(): no boot SYNC (and no
     * draw for it) before the first step; `reboot` steps do start() it. The C node schedules
     * its boot SYNC inside init, so init runs on a filler RNG and that SYNC is cancelled.
     */
    e->filler = true;
    esp_err_t err = espnow_sec_node_init(node, &env, &cfg);
    CHECK_EQ(err, ESP_OK);
    memset(node->v2.defer, 0, sizeof(node->v2.defer));
    node->v2.bcast_valid = false;
    e->filler = false;
    const json_t *win = json_member(setup, "windows");
    for (size_t k = 0; win != NULL && k < win->n; k++) {
        uint8_t mac[6];
        hexv(win->items[k], "mac", mac);
        espnow_sec_v2_sync_peer(node, mac, (uint64_t)jint(win->items[k], "max"));
    }
    if (e->n_writes != 0 || e->n_out != 0) {
        printf("    %s: setup wrote %zu records / sent %zu frames\n", id, e->n_writes, e->n_out);
        bad++;
    }
    for (size_t j = 0; j < steps->n && err == ESP_OK; j++) {
        const json_t *st = steps->items[j];
        const char *a = jstr(st, "action");
        uint8_t src[6], dst[6], frame[ESPNOW_SEC_V2_FRAME_MAX + 64];
        uint32_t before[ESPNOW_SEC_DROP_COUNT];
        esp_err_t op_err = ESP_OK;
        bool is_op = false;
        se_clear_step(e);
        e->rx_frame = NULL;
        e->now = (uint32_t)jint(st, "t");
        memcpy(before, node->v2.drops, sizeof(before));
        if (strcmp(a, "rx") == 0) {
            hexv(st, "src", src);
            hexv(st, "dst", dst);
            size_t n = hexv(st, "frame", frame);
            e->rx_frame = frame;
            e->rx_len = n;
            espnow_sec_node_on_frame(node, src, dst, frame, n, -40, 1);
        } else if (strcmp(a, "tick") == 0) {
            (void)espnow_sec_node_tick(node);
        } else if (strcmp(a, "send_data") == 0) {
            hexv(st, "dst", dst);
            size_t n = hexv(st, "payload", frame);
            (void)espnow_sec_node_tick(node);
            op_err = espnow_sec_node_send(node, dst, frame, n);
            is_op = true;
        } else if (strcmp(a, "reboot") == 0) {
            /* RAM gone; boot again at t from the same store (a secured responder schedules its boot SYNC) */
            espnow_sec_node_deinit(node);
            memset(before, 0, sizeof(before));
            err = espnow_sec_node_init(node, &env, &cfg);
            CHECK_EQ(err, ESP_OK);
        } else if (strcmp(a, "provision") == 0) {
            op_err = espnow_sec_node_provision(node, ESPNOW_SEC_SCAN_DURATION_MS);
            is_op = true;
        } else if (strcmp(a, "rekey") == 0) {
            op_err = espnow_sec_node_rekey(node);
            is_op = true;
        } else if (strcmp(a, "remove") == 0) {
            hexv(st, "mac", dst);
            op_err = espnow_sec_node_remove_device(node, dst);
            is_op = true;
        } else {
            printf("    %s step %zu: unknown action %s\n", id, j, a);
            exit(2);
        }
        bad += check_step(id, j, results->items[j], e, before, node->v2.drops, op_err, is_op);
        (*n_steps)++;
    }
    if (e->used != e->n_draws || e->rng_errors != 0) {
        printf("    %s: %zu of %zu scripted RNG draws used, %d bad draws\n", id, e->used, e->n_draws, e->rng_errors);
        bad++;
    }
    espnow_sec_node_deinit(node);
    free(node);
    free(e);
    return bad;
}

static void test_scripts(void)
{
    const json_t *arr = jobj(s_root, "scripts");
    CHECK(arr->n >= 1);
    /* this build must be the variant it claims to be */
    for (size_t k = 0; k < N_CFG_KEYS; k++) {
        if (s_cfg_keys[k].build != variant_value(VEC_VARIANT, &s_cfg_keys[k])) {
            printf("    build: %s = %lld, variant %s wants %lld\n", s_cfg_keys[k].key, s_cfg_keys[k].build,
                   s_variants[VEC_VARIANT].name, variant_value(VEC_VARIANT, &s_cfg_keys[k]));
            h_cur_fail++;
        }
    }
    size_t ran = 0, elsewhere = 0, steps = 0, failed = 0;
    for (size_t i = 0; i < arr->n; i++) {
        const json_t *sc = arr->items[i];
        size_t v = script_variant(jobj(jobj(sc, "inputs"), "setup"));
        if (v == N_VARIANTS) {
            printf("    %s: its config matches no build variant of tests/c/CMakeLists.txt\n", jstr(sc, "id"));
            h_cur_fail++;
            continue;
        }
        if (v != VEC_VARIANT) {
            printf("    %-44s -> %s\n", jstr(sc, "id"), s_variants[v].name);
            elsewhere++;
            continue;
        }
        size_t before = steps;
        int bad = run_script(sc, &steps);
        printf("    %-44s %3zu steps %s\n", jstr(sc, "id"), steps - before, bad ? "FAILED" : "ok");
        failed += bad != 0;
        h_cur_fail += bad;
        ran++;
    }
    printf("    scripts: %zu run here (%zu steps, %zu failed), %zu in other build variants; %d known disagreements applied\n",
           ran, steps, failed, elsewhere, s_known_used);
}

int main(void)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/v2.json", ESPNOW_SEC_VECTORS_DIR);
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        printf("vectors/v2.json not found: run the Python reference's vector generator\n");
        return 2;
    }
    fseek(fp, 0, SEEK_END);
    long sz = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *text = malloc((size_t)sz);
    if (fread(text, 1, (size_t)sz, fp) != (size_t)sz) {
        return 2;
    }
    fclose(fp);
    char err[256];
    s_root = json_parse(text, (size_t)sz, err, sizeof(err));
    free(text);
    if (s_root == NULL) {
        printf("vectors/v2.json: %s\n", err);
        return 2;
    }
    if (s_root->type != JSON_OBJECT || json_member(s_root, "format_version") == NULL ||
        json_member(s_root, "format_version")->i != 1) {
        printf("vectors/v2.json: format_version is not 1\n");
        return 2;
    }
    espnow_sec_crypto_init();
    printf("build variant %d: %s\n", VEC_VARIANT, s_variants[VEC_VARIANT].name);
    if (VEC_VARIANT == 0) {
        /* every group of the file; the other variants only run the scripts needing them */
        static const char *const groups[] = {"primitives", "classification", "handshakes", "control", "data",
                                             "sync", "records", "replay", "scripts"};
        for (size_t i = 0; i < s_root->n; i++) {
            bool known = false;
            for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
                known = known || strcmp(s_root->keys[i], groups[g]) == 0;
            }
            if (!known && s_root->items[i]->type == JSON_ARRAY) {
                printf("vectors/v2.json: group %s is not reproduced by this test\n", s_root->keys[i]);
                return 2;
            }
        }
        RUN(test_primitives);
        RUN(test_classification);
        RUN(test_handshakes);
        RUN(test_key_delivery);
        RUN(test_control);
        RUN(test_data_frames);
        RUN(test_sync_frames);
        RUN(test_records);
        RUN(test_replay);
    }
    RUN(test_scripts);
    json_free(s_root);
    HARNESS_END();
}
