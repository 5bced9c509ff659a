/*
 * test_codec.c - frame.c and hs_compat.c: exact layouts, every rejection path, and the
 * malformed-input classes named after the bugs they guard against.
 */
#include <stdlib.h>
#include <string.h>

#include "datapath.h"
#include "frame.h"
#include "harness.h"
#include "hs_compat.h"
#include "keystore.h"

/* ---- outer header (upstream §2.1) ---- */

static void test_header_bit_positions(void)
{
    espnow_sec_hdr_t h = {0};
    uint8_t b[ESPNOW_SEC_HDR_LEN];
    h.type = ESPNOW_SEC_T_SECURITY;
    h.version = 2;
    h.size = 0x2b;
    h.magic = 0xBEEF;
    h.channel = 6;
    h.security = true;
    h.broadcast = true;
    h.group = true;
    memcpy(h.dest, espnow_sec_group_sec, 6);
    memset(h.src, 0x11, 6);
    espnow_sec_hdr_encode(&h, b);
    CHECK_EQ(b[0], 0x2c);       /* type 12, version 2 in bits 4-5, reserved 0 */
    CHECK_EQ(b[1], 0x2b);
    CHECK_EQ(b[2], 0xef);       /* magic little-endian */
    CHECK_EQ(b[3], 0xbe);
    CHECK_EQ(b[4], 0x46);       /* channel 6, security bit 6 */
    CHECK_EQ(b[5], 0x18);       /* broadcast bit 3, group bit 4 */
    CHECK_EQ(b[6], 0x00);
    CHECK_MEM(&b[8], "SEC\0\0\0", 6);

    memset(&h, 0, sizeof(h));
    h.version = 2;
    h.filter_adjacent = true;
    h.filter_weak = true;
    h.ack = true;
    h.retransmit = 31;
    h.ttl = 31;
    h.rssi = -65;
    espnow_sec_hdr_encode(&h, b);
    CHECK_EQ(b[4], 0x30);
    CHECK_EQ(b[5], 0xe0);       /* ack bit 5, retransmit low bits 6-7 */
    CHECK_EQ(b[6], 0xff);       /* retransmit high bits 0-2, ttl 3-7 */
    CHECK_EQ((int8_t)b[7], -65);
}

static void test_header_roundtrip_and_reserved_bits_ignored(void)
{
    uint8_t frame[ESPNOW_SEC_HDR_LEN + 3] = {0};
    espnow_sec_hdr_t h = {.type = 10, .version = 2, .size = 3, .magic = 0x1234, .channel = 11,
                          .broadcast = true, .retransmit = 21, .ttl = 9, .rssi = -3};
    memset(h.dest, 0xff, 6);
    memset(h.src, 0x22, 6);
    espnow_sec_hdr_encode(&h, frame);
    frame[0] |= 0xC0;  /* upstream leaves reserved bits as garbage (§2.1) */
    frame[4] |= 0x80;
    frame[5] |= 0x07;
    espnow_sec_hdr_t d;
    CHECK_EQ(espnow_sec_hdr_decode(frame, sizeof(frame), &d), ESP_OK);
    CHECK_EQ(d.type, 10);
    CHECK_EQ(d.magic, 0x1234);
    CHECK_EQ(d.channel, 11);
    CHECK(d.broadcast && !d.group && !d.security && !d.ack);
    CHECK_EQ(d.retransmit, 21);
    CHECK_EQ(d.ttl, 9);
    CHECK_EQ(d.rssi, -3);
    CHECK_MEM(d.src, h.src, 6);
}

static void test_header_rejects(void)
{
    uint8_t frame[300] = {0};
    espnow_sec_hdr_t h = {.type = 10, .version = 2};
    espnow_sec_hdr_t d;
    for (size_t len = 0; len < ESPNOW_SEC_HDR_LEN; len++) {
        CHECK_EQ(espnow_sec_hdr_decode(frame, len, &d), ESP_ERR_ESPNOW_SEC_MALFORMED); /* empty / truncated */
    }
    h.size = (uint8_t)(251 - 20);
    espnow_sec_hdr_encode(&h, frame);
    CHECK_EQ(espnow_sec_hdr_decode(frame, 251, &d), ESP_ERR_ESPNOW_SEC_MALFORMED); /* oversized */
    h.size = 5;
    espnow_sec_hdr_encode(&h, frame);
    CHECK_EQ(espnow_sec_hdr_decode(frame, 25, &d), ESP_OK);
    CHECK_EQ(espnow_sec_hdr_decode(frame, 24, &d), ESP_ERR_ESPNOW_SEC_MALFORMED); /* size byte lies */
    CHECK_EQ(espnow_sec_hdr_decode(frame, 26, &d), ESP_ERR_ESPNOW_SEC_MALFORMED);
    for (uint8_t v = 0; v < 4; v++) {
        h.version = v;
        espnow_sec_hdr_encode(&h, frame);
        CHECK_EQ(espnow_sec_hdr_decode(frame, 25, &d), v == 2 ? ESP_OK : ESP_ERR_NOT_SUPPORTED);
    }
}

/* ---- inner records, INFO, GROUP ---- */

static void test_record_inner_size_larger_than_frame(void)
{
    uint8_t p[11] = {ESPNOW_SEC_R_KEY, 8};
    espnow_sec_record_t r;
    CHECK_EQ(espnow_sec_record_parse(p, 10, &r), ESP_OK);
    CHECK_EQ(r.len, 8);
    CHECK_EQ(espnow_sec_record_parse(p, 9, &r), ESP_ERR_ESPNOW_SEC_MALFORMED);
    CHECK_EQ(espnow_sec_record_parse(p, 11, &r), ESP_ERR_ESPNOW_SEC_MALFORMED); /* trailing byte */
    p[1] = 255;
    CHECK_EQ(espnow_sec_record_parse(p, 10, &r), ESP_ERR_ESPNOW_SEC_MALFORMED);
    CHECK_EQ(espnow_sec_record_parse(p, 1, &r), ESP_ERR_ESPNOW_SEC_MALFORMED);
    CHECK_EQ(espnow_sec_record_parse(p, 0, &r), ESP_ERR_ESPNOW_SEC_MALFORMED);
    uint8_t out[4];
    CHECK_EQ(espnow_sec_record_build(out, sizeof(out), 3, p, 3), 0); /* no room */
    CHECK_EQ(espnow_sec_record_build(out, sizeof(out), 3, p, 2), 4);
}

static void test_info_length_and_type(void)
{
    uint8_t p[9] = {1, 1, 2, 0, 0, 0, 0, 9, 0};
    espnow_sec_info_t info;
    CHECK_EQ(espnow_sec_info_parse(p, 8, &info), ESP_OK);
    CHECK_EQ(info.sec_ver, 1);
    CHECK_EQ(info.client_mac[5], 9);
    for (size_t len = 0; len < 8; len++) {
        CHECK_EQ(espnow_sec_info_parse(p, len, &info), ESP_ERR_ESPNOW_SEC_MALFORMED); /* INFO < 8 bytes */
    }
    CHECK_EQ(espnow_sec_info_parse(p, 9, &info), ESP_ERR_ESPNOW_SEC_MALFORMED);
    p[0] = 0;
    CHECK_EQ(espnow_sec_info_parse(p, 8, &info), ESP_ERR_ESPNOW_SEC_MALFORMED);
}

static void test_group_count_exceeding_frame(void)
{
    uint8_t macs[3][6] = {{1, 1, 1, 1, 1, 1}, {2, 2, 2, 2, 2, 2}, {3, 3, 3, 3, 3, 3}};
    uint8_t buf[64];
    size_t n = espnow_sec_group_build(buf, sizeof(buf), 1, espnow_sec_group_sec, (const uint8_t (*)[6])macs, 3);
    CHECK_EQ(n, 8 + 18);
    espnow_sec_group_t g;
    CHECK_EQ(espnow_sec_group_parse(buf, n, &g), ESP_OK);
    CHECK(espnow_sec_group_contains(&g, macs[2]));
    uint8_t other[6] = {4, 4, 4, 4, 4, 4};
    CHECK(!espnow_sec_group_contains(&g, other));
    buf[7] = 4; /* count says 4, frame holds 3 */
    CHECK_EQ(espnow_sec_group_parse(buf, n, &g), ESP_ERR_ESPNOW_SEC_MALFORMED);
    buf[7] = 255;
    CHECK_EQ(espnow_sec_group_parse(buf, n, &g), ESP_ERR_ESPNOW_SEC_MALFORMED);
    buf[7] = 3;
    buf[0] = 7; /* unknown op */
    CHECK_EQ(espnow_sec_group_parse(buf, n, &g), ESP_ERR_ESPNOW_SEC_MALFORMED);
    CHECK_EQ(espnow_sec_group_parse(buf, 7, &g), ESP_ERR_ESPNOW_SEC_MALFORMED);
    uint8_t many[33][6] = {{0}};
    CHECK_EQ(espnow_sec_group_build(buf, sizeof(buf), 1, espnow_sec_group_sec, (const uint8_t (*)[6])many, 33), 0);
}

/* ---- security1 protobuf (protocomm-security.md §1; upstream §2.4 size table) ---- */

static void test_sec1_wire_sizes_and_prefixes(void)
{
    espnow_sec_sec1_t m = {0};
    uint8_t out[ESPNOW_SEC_COMPAT_MSG_MAX];
    size_t len = 0;
    memset(m.pub, 0xA5, 32);
    memset(m.random, 0x5A, 16);
    memset(m.verify, 0x3C, 32);

    m.msg = ESPNOW_SEC_SEC1_CMD0;
    CHECK_EQ(espnow_sec_compat_build(&m, out, sizeof(out), &len), ESP_OK);
    CHECK_EQ(len, 41);
    CHECK_MEM(out, "\x10\x01\x5a\x25\xa2\x01\x22\x0a\x20", 9);
    CHECK_MEM(&out[9], m.pub, 32);

    m.msg = ESPNOW_SEC_SEC1_RESP0;
    CHECK_EQ(espnow_sec_compat_build(&m, out, sizeof(out), &len), ESP_OK);
    CHECK_EQ(len, 61);
    CHECK_MEM(out, "\x10\x01\x5a\x39\x08\x01\xaa\x01\x34\x12\x20", 11);
    CHECK_MEM(&out[11], m.pub, 32);
    CHECK_MEM(&out[43], "\x1a\x10", 2);
    CHECK_MEM(&out[45], m.random, 16);

    m.msg = ESPNOW_SEC_SEC1_CMD1;
    CHECK_EQ(espnow_sec_compat_build(&m, out, sizeof(out), &len), ESP_OK);
    CHECK_EQ(len, 43);
    CHECK_MEM(out, "\x10\x01\x5a\x27\x08\x02\xb2\x01\x22\x12\x20", 11);

    m.msg = ESPNOW_SEC_SEC1_RESP1;
    CHECK_EQ(espnow_sec_compat_build(&m, out, sizeof(out), &len), ESP_OK);
    CHECK_EQ(len, 43);
    CHECK_MEM(out, "\x10\x01\x5a\x27\x08\x03\xba\x01\x22\x1a\x20", 11);

    CHECK_EQ(espnow_sec_compat_build(&m, out, 42, &len), ESP_ERR_INVALID_SIZE);
}

static void test_sec1_roundtrip(void)
{
    for (int msg = 0; msg < 4; msg++) {
        espnow_sec_sec1_t m = {.msg = (espnow_sec_sec1_msg_t)msg}, back;
        for (int i = 0; i < 32; i++) {
            m.pub[i] = (uint8_t)(i + 1);
            m.verify[i] = (uint8_t)(0x80 + i);
        }
        for (int i = 0; i < 16; i++) {
            m.random[i] = (uint8_t)(0x40 + i);
        }
        uint8_t out[64];
        size_t len = 0;
        CHECK_EQ(espnow_sec_compat_build(&m, out, sizeof(out), &len), ESP_OK);
        CHECK_EQ(espnow_sec_compat_parse(out, len, &back), ESP_OK);
        CHECK_EQ(back.msg, msg);
        if (msg == 0 || msg == 1) {
            CHECK_MEM(back.pub, m.pub, 32);
        }
        if (msg == 1) {
            CHECK_MEM(back.random, m.random, 16);
        }
        if (msg >= 2) {
            CHECK_MEM(back.verify, m.verify, 32);
        }
        /* truncated at every length: rejected, never read past the (heap, exact) buffer */
        for (size_t cut = 0; cut < len; cut++) {
            uint8_t *p = malloc(cut ? cut : 1);
            memcpy(p, out, cut);
            CHECK_EQ(espnow_sec_compat_parse(p, cut, &back), ESP_ERR_ESPNOW_SEC_MALFORMED);
            free(p);
        }
    }
}

static size_t hexmsg(const char *hex, uint8_t *out)
{
    return unhex(hex, out);
}

#define K32 "0101010101010101010101010101010101010101010101010101010101010101"

/* protocomm test_security1.c bug classes: oneof/msg confusion, missing payload, bad sizes. */
static void test_sec1_malformed_classes(void)
{
    uint8_t b[128];
    espnow_sec_sec1_t m;
    size_t n;
    /* a well-formed Cmd0 first, as the reference */
    n = hexmsg("10015a25a20122" "0a20" K32, b);
    CHECK_EQ(espnow_sec_compat_parse(b, n, &m), ESP_OK);
    /* oneof type confusion: msg = Resp0 but the payload is sc0 */
    n = hexmsg("10015a27" "0801" "a20122" "0a20" K32, b);
    CHECK_EQ(espnow_sec_compat_parse(b, n, &m), ESP_ERR_ESPNOW_SEC_MALFORMED);
    /* msg = Cmd1 with the Resp1 payload */
    n = hexmsg("10015a27" "0802" "ba0122" "1a20" K32, b);
    CHECK_EQ(espnow_sec_compat_parse(b, n, &m), ESP_ERR_ESPNOW_SEC_MALFORMED);
    /* missing sc1 payload (NULL dereference class) */
    n = hexmsg("10015a02" "0802", b);
    CHECK_EQ(espnow_sec_compat_parse(b, n, &m), ESP_ERR_ESPNOW_SEC_MALFORMED);
    /* present but empty sc0: client_pubkey of length 0 */
    n = hexmsg("10015a03" "a20100", b);
    CHECK_EQ(espnow_sec_compat_parse(b, n, &m), ESP_ERR_ESPNOW_SEC_MALFORMED);
    /* no sec1 at all, and the wrong scheme version */
    n = hexmsg("1001", b);
    CHECK_EQ(espnow_sec_compat_parse(b, n, &m), ESP_ERR_ESPNOW_SEC_MALFORMED);
    n = hexmsg("10025a25a20122" "0a20" K32, b);
    CHECK_EQ(espnow_sec_compat_parse(b, n, &m), ESP_ERR_ESPNOW_SEC_MALFORMED);
    /* a Sec0 (field 10) payload: unknown to us, oneof unset */
    n = hexmsg("5203a20100", b);
    CHECK_EQ(espnow_sec_compat_parse(b, n, &m), ESP_ERR_ESPNOW_SEC_MALFORMED);
    /* 31-byte client key */
    n = hexmsg("10015a24a20121" "0a1f" "01010101010101010101010101010101010101010101010101010101010101", b);
    CHECK_EQ(espnow_sec_compat_parse(b, n, &m), ESP_ERR_ESPNOW_SEC_MALFORMED);
    /* Resp0 with a 15-byte random */
    n = hexmsg("10015a38" "0801" "aa0133" "1220" K32 "1a0f" "000102030405060708090a0b0c0d0e", b);
    CHECK_EQ(espnow_sec_compat_parse(b, n, &m), ESP_ERR_ESPNOW_SEC_MALFORMED);
    /* Resp1 with status != Success */
    n = hexmsg("10015a29" "0803" "ba0124" "0805" "1a20" K32, b);
    CHECK_EQ(espnow_sec_compat_parse(b, n, &m), ESP_ERR_ESPNOW_SEC_MALFORMED);
    /* unknown msg value */
    n = hexmsg("10015a27" "0809" "b20122" "1220" K32, b);
    CHECK_EQ(espnow_sec_compat_parse(b, n, &m), ESP_ERR_ESPNOW_SEC_MALFORMED);
    /* length prefix pointing past the end */
    n = hexmsg("10015a7f" "0802", b);
    CHECK_EQ(espnow_sec_compat_parse(b, n, &m), ESP_ERR_ESPNOW_SEC_MALFORMED);
    /* unknown trailing fields are skipped (protobuf rules) */
    n = hexmsg("10015a25a20122" "0a20" K32 "f8010a", b);
    CHECK_EQ(espnow_sec_compat_parse(b, n, &m), ESP_OK);
    /* stuffed with unknown fields: bounded arena, rejected or parsed, never a crash */
    n = hexmsg("10015a25a20122" "0a20" K32, b);
    uint8_t big[230];
    memcpy(big, b, n);
    for (size_t i = n; i + 2 <= sizeof(big); i += 2) {
        big[i] = 0xf8; /* field 31, varint */
        big[i + 1] = 0x01;
    }
    (void)espnow_sec_compat_parse(big, sizeof(big) - (sizeof(big) - n) % 2, &m);
    CHECK_EQ(espnow_sec_compat_parse(b, 0, &m), ESP_ERR_ESPNOW_SEC_MALFORMED);
}

/* ---- derivation and the CTR stream ---- */

static void test_sym_key_and_pop(void)
{
    uint8_t a_priv[32], b_pub[32], shared[32], sym[32], hash[32];
    unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", a_priv);
    unhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f", b_pub);
    unhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742", shared);
    /* empty PoP: nothing is XORed (protocomm-security.md §4.5), so sym_key is RFC 7748's */
    CHECK_EQ(espnow_sec_compat_derive_pop(a_priv, b_pub, NULL, 0, sym), ESP_OK);
    CHECK_MEM(sym, shared, 32);
    CHECK_EQ(espnow_sec_compat_derive_pop(a_priv, b_pub, (const uint8_t *)"abcd1234", 8, sym), ESP_OK);
    CHECK_EQ(espnow_sec_compat_pop_hash((const uint8_t *)"abcd1234", 8, hash), ESP_OK);
    for (int i = 0; i < 32; i++) {
        CHECK_EQ(sym[i], shared[i] ^ hash[i]);
    }
    uint8_t zero[32] = {0};
    CHECK_EQ(espnow_sec_compat_derive_pop(a_priv, zero, NULL, 0, sym), ESP_ERR_INVALID_ARG); /* all-zero key */
}

static void test_ctr_records_share_one_stream(void)
{
    uint8_t key[32], iv[16], app[32], dev_pub[32], cli_pub[32];
    for (int i = 0; i < 32; i++) {
        key[i] = (uint8_t)i;
        app[i] = (uint8_t)(0xA0 + i);
        dev_pub[i] = (uint8_t)(0x10 + i);
        cli_pub[i] = (uint8_t)(0x50 + i);
    }
    for (int i = 0; i < 16; i++) {
        iv[i] = (uint8_t)(0xF0 + i);
    }
    espnow_sec_compat_ctr_t c;
    espnow_sec_compat_ctr_init(&c, key, iv);
    /* The four items are consecutive pieces of one stream: [0,32) [32,64) [64,96) [96,128). */
    uint8_t zeros[128] = {0}, ks[128];
    CHECK_EQ(espnow_sec_compat_ctr_at(&c, 0, zeros, ks, 128), ESP_OK);
    uint8_t v[32], rec[34];
    CHECK_EQ(espnow_sec_compat_client_verify(&c, dev_pub, v), ESP_OK);
    for (int i = 0; i < 32; i++) {
        CHECK_EQ(v[i], dev_pub[i] ^ ks[i]);
    }
    CHECK_EQ(espnow_sec_compat_check_verify(&c, ESPNOW_SEC_COMPAT_OFF_CMD1, v, dev_pub), ESP_OK);
    v[0] ^= 1;
    CHECK_EQ(espnow_sec_compat_check_verify(&c, ESPNOW_SEC_COMPAT_OFF_CMD1, v, dev_pub), ESP_ERR_ESPNOW_SEC_AUTH);
    CHECK_EQ(espnow_sec_compat_device_verify(&c, cli_pub, v), ESP_OK);
    for (int i = 0; i < 32; i++) {
        CHECK_EQ(v[i], cli_pub[i] ^ ks[32 + i]);
    }
    CHECK_EQ(espnow_sec_compat_key_record(&c, app, rec), ESP_OK);
    CHECK_EQ(rec[0], 3);
    CHECK_EQ(rec[1], 32);
    for (int i = 0; i < 32; i++) {
        CHECK_EQ(rec[2 + i], app[i] ^ ks[64 + i]);
    }
    uint8_t back[32];
    CHECK_EQ(espnow_sec_compat_open_key(&c, &rec[2], back), ESP_OK);
    CHECK_MEM(back, app, 32);
    CHECK_EQ(espnow_sec_compat_key_resp_record(&c, app, rec), ESP_OK);
    CHECK_EQ(rec[0], 4);
    for (int i = 0; i < 32; i++) {
        CHECK_EQ(rec[2 + i], app[i] ^ ks[96 + i]);
    }
    CHECK_EQ(espnow_sec_compat_check_key_resp(&c, &rec[2], app), ESP_OK);
    rec[33] ^= 0x80;
    CHECK_EQ(espnow_sec_compat_check_key_resp(&c, &rec[2], app), ESP_ERR_ESPNOW_SEC_AUTH);
    /* _next() in odd pieces continues the stream byte by byte (protocomm §4.3: a 5-byte
     * request leaves the response starting mid-block). */
    uint8_t out[128];
    size_t pieces[] = {32, 32, 5, 27, 13, 19};
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        CHECK_EQ(espnow_sec_compat_ctr_next(&c, &zeros[c.offset], &out[c.offset], pieces[i]), ESP_OK);
    }
    CHECK_EQ(c.offset, 128);
    CHECK_MEM(out, ks, 128);
    espnow_sec_compat_ctr_wipe(&c);
    CHECK(espnow_sec_ct_is_zero(&c, sizeof(c)));
}

/* ---- data frame and key record layouts ---- */

static void test_data_frame_layout(void)
{
    uint8_t app[32], nonce[8], frame[250], pt[5] = {'h', 'e', 'l', 'l', 'o'};
    for (int i = 0; i < 32; i++) {
        app[i] = (uint8_t)(i * 7);
    }
    for (int i = 0; i < 8; i++) {
        nonce[i] = (uint8_t)(0xC0 + i);
    }
    espnow_sec_ccm_key_t k = {0};
    CHECK_EQ(espnow_sec_data_key_import(&k, app), ESP_OK);
    espnow_sec_hdr_t h = {.magic = 0x0102, .channel = 1, .broadcast = true};
    memset(h.dest, 0xff, 6);
    memset(h.src, 0x02, 6);
    size_t len = 0;
    CHECK_EQ(espnow_sec_data_frame_build(&h, &k, nonce, pt, 5, frame, sizeof(frame), &len), ESP_OK);
    CHECK_EQ(len, 20 + 5 + 12);
    CHECK_EQ(frame[0], 0x2a);      /* DATA, version 2 */
    CHECK_EQ(frame[1], 17);        /* size = n + 12 */
    CHECK_EQ(frame[4] & 0x40, 0x40);
    CHECK_MEM(&frame[20 + 5 + 4], nonce, 8); /* nonce after the tag */
    /* layout only: the payload is the CCM module's C || T for this key and nonce (no AAD);
     * the values themselves are pinned by vectors/compat.json in test_vectors.c */
    uint8_t ct[9];
    CHECK_EQ(espnow_sec_crypto_ccm_seal(&k, nonce, 8, NULL, 0, pt, 5, ct), ESP_OK);
    CHECK_MEM(&frame[20], ct, 9);
    uint8_t back[250];
    size_t n = 0;
    CHECK_EQ(espnow_sec_data_open(&k, &frame[20], len - 20, back, &n), ESP_OK);
    CHECK_EQ(n, 5);
    CHECK_MEM(back, pt, 5);
    uint8_t big[219] = {0};
    CHECK_EQ(espnow_sec_data_frame_build(&h, &k, nonce, big, 219, frame, sizeof(frame), &len),
             ESP_ERR_ESPNOW_SEC_TOO_LONG);
    CHECK_EQ(espnow_sec_data_frame_build(&h, &k, nonce, big, 218, frame, sizeof(frame), &len), ESP_OK);
    CHECK_EQ(len, 250);
    CHECK_EQ(frame[1], 230);
    for (size_t cut = 0; cut < 12; cut++) {
        CHECK_EQ(espnow_sec_data_open(&k, &frame[20], cut, back, &n), ESP_ERR_ESPNOW_SEC_MALFORMED);
    }
    espnow_sec_crypto_ccm_key_destroy(&k);
}

static void test_key_record_checksum(void)
{
    espnow_sec_key_record_t r, back;
    for (int i = 0; i < 32; i++) {
        r.key[i] = (uint8_t)i;
    }
    memcpy(r.provisioner, "\x02\x00\x00\x00\x00\x01", 6);
    uint8_t buf[ESPNOW_SEC_KEY_RECORD_LEN];
    espnow_sec_keyrec_encode(&r, buf);
    /* docs/keystore.md: "ESK1", version 1, key, MAC, CRC-32 LE over bytes 0-42 */
    CHECK_EQ(sizeof(buf), 47);
    CHECK_MEM(buf, "ESK1\x01", 5);
    CHECK_MEM(&buf[5], r.key, 32);
    CHECK_MEM(&buf[37], r.provisioner, 6);
    uint32_t crc = espnow_sec_crc32(buf, 43);
    CHECK_EQ(buf[43] | (buf[44] << 8) | (buf[45] << 16) | ((uint32_t)buf[46] << 24), crc);
    CHECK_EQ(espnow_sec_keyrec_decode(buf, sizeof(buf), &back), ESP_OK);
    CHECK_MEM(back.key, r.key, 32);
    CHECK_MEM(back.provisioner, r.provisioner, 6);
    for (size_t i = 0; i < sizeof(buf) * 8; i++) {
        buf[i / 8] ^= (uint8_t)(1u << (i % 8));
        CHECK_EQ(espnow_sec_keyrec_decode(buf, sizeof(buf), &back), ESP_ERR_ESPNOW_SEC_STORE_CORRUPT);
        buf[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    CHECK_EQ(espnow_sec_keyrec_decode(buf, sizeof(buf) - 1, &back), ESP_ERR_ESPNOW_SEC_STORE_CORRUPT);
    /* CRC-32 check value of "123456789" (the standard one for the IEEE polynomial) */
    CHECK_EQ(espnow_sec_crc32((const uint8_t *)"123456789", 9), 0xCBF43926u);
}

static void test_error_names(void)
{
    CHECK(strcmp(espnow_sec_err_to_name(ESP_ERR_ESPNOW_SEC_TOO_LONG), "ESP_ERR_ESPNOW_SEC_TOO_LONG") == 0);
    CHECK(strcmp(espnow_sec_err_to_name(ESP_ERR_ESPNOW_SEC_STORE_CORRUPT), "ESP_ERR_ESPNOW_SEC_STORE_CORRUPT") == 0);
    CHECK(espnow_sec_err_to_name(0x7777) != NULL);
    for (int r = 0; r <= ESPNOW_SEC_FAIL_CRYPTO + 1; r++) {
        CHECK(espnow_sec_fail_reason_str((espnow_sec_fail_reason_t)r) != NULL);
    }
}

int main(void)
{
    espnow_sec_crypto_init();
    RUN(test_header_bit_positions);
    RUN(test_header_roundtrip_and_reserved_bits_ignored);
    RUN(test_header_rejects);
    RUN(test_record_inner_size_larger_than_frame);
    RUN(test_info_length_and_type);
    RUN(test_group_count_exceeding_frame);
    RUN(test_sec1_wire_sizes_and_prefixes);
    RUN(test_sec1_roundtrip);
    RUN(test_sec1_malformed_classes);
    RUN(test_sym_key_and_pop);
    RUN(test_ctr_records_share_one_stream);
    RUN(test_data_frame_layout);
    RUN(test_key_record_checksum);
    RUN(test_error_names);
    HARNESS_END();
}
