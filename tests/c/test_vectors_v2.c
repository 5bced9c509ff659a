/*
 * test_vectors_v2.c - the Python reference's protocol v2 vectors (vectors/v2.json,
 * docs/PROTOCOL.md §14), reproduced byte for byte by the C core: handshake transcripts and
 * key schedule, key delivery (CTRL / CTRL_ACK), DATA and SYNC frames, stored records.
 * A file that does not match the expected shape fails (exit 2), it is never skipped.
 */
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
        uint8_t _want[512];                                                                          \
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
    uint8_t frame[ESPNOW_SEC_V2_FRAME_MAX], nonce[13], aad[24], back[ESPNOW_SEC_V2_FRAME_MAX];
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
    for (size_t i = 0; i < arr->n; i++) {
        const json_t *c = arr->items[i];
        const json_t *kd = json_member(jobj(c, "inputs"), "key_delivery");
        if (kd == NULL) {
            continue;
        }
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
}

static void test_group_frames(const char *group)
{
    const json_t *arr = jobj(s_root, group);
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
        if (n > ESPNOW_SEC_V2_MAX_PAYLOAD) {
            continue; /* long-frame case: this build carries 250-byte frames */
        }
        espnow_sec_ccm_key_t k = {0};
        CHECK_EQ(espnow_sec_ks_import(&k, aes, 8), ESP_OK);
        check_secured(c, &k, src, dst, type, epoch, (uint64_t)jint(in, "counter"), pt, n);
        espnow_sec_crypto_ccm_key_destroy(&k);
    }
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
    espnow_sec_crypto_init();
    RUN(test_handshakes);
    RUN(test_key_delivery);
    RUN(test_data_frames);
    RUN(test_sync_frames);
    RUN(test_records);
    json_free(s_root);
    HARNESS_END();
}
