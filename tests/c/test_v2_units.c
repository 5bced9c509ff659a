/*
 * test_v2_units.c - unit tests of the protocol v2 building blocks, against docs/PROTOCOL.md:
 *   replay.c   §8.1-§8.3, §8.5: window edges, check without commit, sync, the bounded table
 *   epoch.c    §9.1, §9.3, §9.4: current / staged / previous selection, the grace boundary,
 *              activation, install, wipe
 *   keysched.c §2.5 nonce and AAD byte layouts and §4.3 labels, typed in from the document
 *              (not from the code), and each derivation recomputed from the raw primitives.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "node_priv.h"

static const uint8_t MAC_A[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x03};
static const uint8_t MAC_B[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};

/* ==== replay.c ==== */

static espnow_sec_rp_entry_t synced(uint64_t max)
{
    espnow_sec_rp_entry_t e = {0};
    espnow_sec_rp_sync(&e, max, 0);
    return e;
}

static void test_replay_sync_and_first(void)
{
    /* §8.3 "sync S at c": absent -> SYNCED, max = c, bitmap all ones (c and below count as seen) */
    espnow_sec_rp_entry_t e = synced(1000);
    CHECK_EQ(e.state, ESPNOW_SEC_RP_SYNCED);
    CHECK_EQ(e.max, 1000);
    CHECK(e.bitmap == ~0ull);
    CHECK(!espnow_sec_rp_check(&e, 1000));
    CHECK(!espnow_sec_rp_check(&e, 999));
    CHECK(!espnow_sec_rp_check(&e, 0));
    /* the first frame after the sync: c + 1 passes, commits as the new max */
    CHECK(espnow_sec_rp_check(&e, 1001));
    espnow_sec_rp_commit(&e, 1001, 5);
    CHECK_EQ(e.max, 1001);
    CHECK(e.bitmap == ~0ull);
    CHECK_EQ(e.t_last, 5);
    /* PENDING -> SYNCED too, and the challenge is wiped */
    espnow_sec_rp_entry_t p = {.state = ESPNOW_SEC_RP_PENDING, .tries = 3};
    memset(p.challenge, 0xAB, sizeof(p.challenge));
    espnow_sec_rp_sync(&p, 7, 9);
    CHECK_EQ(p.state, ESPNOW_SEC_RP_SYNCED);
    CHECK_EQ(p.max, 7);
    CHECK_EQ(p.tries, 0);
    uint8_t zero[ESPNOW_SEC_CHALLENGE_LEN] = {0};
    CHECK_MEM(p.challenge, zero, sizeof(zero));
    /* SYNCED: a sync forwards moves (bitmap all ones again), backwards or equal changes nothing */
    espnow_sec_rp_entry_t f = synced(100);
    espnow_sec_rp_commit(&f, 200, 1); /* bitmap = 1 */
    espnow_sec_rp_sync(&f, 150, 2);
    CHECK_EQ(f.max, 200);
    CHECK(f.bitmap == 1);
    espnow_sec_rp_sync(&f, 200, 3);
    CHECK(f.bitmap == 1);
    espnow_sec_rp_sync(&f, 201, 4);
    CHECK_EQ(f.max, 201);
    CHECK(f.bitmap == ~0ull);
}

static void test_replay_window_edges(void)
{
    /* after a jump of exactly 64 the window is empty except the new max */
    espnow_sec_rp_entry_t e = synced(1000);
    espnow_sec_rp_commit(&e, 1064, 0);
    CHECK(e.bitmap == 1);
    /* oldest counter still in the window: max - 63 (bit 63); max - 64 is too old */
    CHECK(espnow_sec_rp_check(&e, 1064 - 63));
    CHECK(!espnow_sec_rp_check(&e, 1064 - 64));
    espnow_sec_rp_commit(&e, 1064 - 63, 0);
    CHECK(e.bitmap == (1ull | (1ull << 63)));
    CHECK(!espnow_sec_rp_check(&e, 1064 - 63));
    /* a jump of 63 keeps exactly the old bit 0, now at bit 63 */
    espnow_sec_rp_entry_t g = synced(0);
    espnow_sec_rp_commit(&g, 1, 0);
    g.bitmap = 1; /* only max (= 1) seen */
    espnow_sec_rp_commit(&g, 64, 0);
    CHECK(g.bitmap == ((1ull << 63) | 1ull));
    /* a jump of 65 clears everything */
    espnow_sec_rp_commit(&g, 129, 0);
    CHECK(g.bitmap == 1);
    /* below the window: max - 64 and far below, also with a small max (no underflow) */
    espnow_sec_rp_entry_t s = synced(10);
    CHECK(!espnow_sec_rp_check(&s, 0));
    CHECK(!espnow_sec_rp_check(&s, 10));
    CHECK(espnow_sec_rp_check(&s, 11));
}

static void test_replay_far_ahead(void)
{
    /* §8.2 commit: c > max shifts by c - max, cleared if >= 64; 48-bit counters up to 2^48 - 1 */
    espnow_sec_rp_entry_t e = synced(5);
    uint64_t far = 5 + 1000000ull;
    CHECK(espnow_sec_rp_check(&e, far));
    espnow_sec_rp_commit(&e, far, 0);
    CHECK_EQ(e.max, far);
    CHECK(e.bitmap == 1);
    CHECK(!espnow_sec_rp_check(&e, 5 + 10));
    CHECK(espnow_sec_rp_check(&e, far - 1));
    uint64_t top = ESPNOW_SEC_V2_CTR_MAX;
    CHECK(espnow_sec_rp_check(&e, top));
    espnow_sec_rp_commit(&e, top, 0);
    CHECK(e.max == top);
    CHECK(e.bitmap == 1);
    CHECK(!espnow_sec_rp_check(&e, top));
    CHECK(espnow_sec_rp_check(&e, top - 63));
    CHECK(!espnow_sec_rp_check(&e, top - 64));
    CHECK(!espnow_sec_rp_check(&e, 0));
}

static void test_replay_check_is_pure(void)
{
    /* §8.2 step 2: the check changes nothing, whatever it answers */
    espnow_sec_rp_entry_t e = synced(1000);
    espnow_sec_rp_commit(&e, 1010, 77);
    espnow_sec_rp_entry_t copy = e;
    uint64_t probes[] = {0, 946, 947, 1000, 1003, 1009, 1010, 1011, 5000000, ESPNOW_SEC_V2_CTR_MAX};
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        (void)espnow_sec_rp_check(&e, probes[i]);
        CHECK_MEM(&e, &copy, sizeof(e));
    }
    /* reordered within the window: each counter between the sync point and max exactly once */
    for (uint64_t c = 1009; c > 1000; c--) {
        CHECK(espnow_sec_rp_check(&e, c));
        espnow_sec_rp_commit(&e, c, 78);
        CHECK(!espnow_sec_rp_check(&e, c));
    }
    CHECK(!espnow_sec_rp_check(&e, 1000)); /* covered by the sync */
    CHECK_EQ(e.max, 1010);
    CHECK(e.bitmap == ~0ull);
}

static void fill_table(espnow_sec_rp_table_t *t, uint8_t state, uint32_t t_last, uint8_t tries)
{
    espnow_sec_rp_reset(t);
    for (size_t i = 0; i < ESPNOW_SEC_REPLAY_SENDERS; i++) {
        espnow_sec_rp_entry_t *e = &t->e[i];
        uint8_t mac[6] = {0x02, 0x10, 0, 0, (uint8_t)(i >> 8), (uint8_t)i};
        memcpy(e->mac, mac, 6);
        e->state = state;
        e->max = 100 + i;
        e->bitmap = ~0ull;
        e->tries = tries;
        e->t_last = t_last;
    }
}

static void test_replay_table_full(void)
{
    static espnow_sec_rp_table_t t, copy;
    const uint32_t idle = (uint32_t)ESPNOW_SEC_REPLAY_IDLE_S * 1000u;
    /* a free slot is used first; the entry comes back FREE with the mac set */
    espnow_sec_rp_reset(&t);
    espnow_sec_rp_entry_t *e = espnow_sec_rp_alloc(&t, MAC_A, 5);
    CHECK(e != NULL);
    CHECK(e != NULL && e->state == ESPNOW_SEC_RP_FREE && memcmp(e->mac, MAC_A, 6) == 0);
    /* full of recent SYNCED entries: TABLE_FULL, nothing evicted or changed (§8.5) */
    fill_table(&t, ESPNOW_SEC_RP_SYNCED, 1000, 0);
    copy = t;
    CHECK(espnow_sec_rp_alloc(&t, MAC_A, 1000 + idle - 1) == NULL);
    CHECK_MEM(&t, &copy, sizeof(t));
    CHECK(espnow_sec_rp_find(&t, MAC_A) == NULL);
    CHECK(espnow_sec_rp_find(&t, t.e[3].mac) == &t.e[3]);
    CHECK_EQ(espnow_sec_rp_synced(&t), ESPNOW_SEC_REPLAY_SENDERS);
    /* full of PENDING entries still retrying: never evicted */
    fill_table(&t, ESPNOW_SEC_RP_PENDING, 1000, 1);
    copy = t;
    CHECK(espnow_sec_rp_alloc(&t, MAC_A, 1000 + 10 * idle) == NULL);
    CHECK_MEM(&t, &copy, sizeof(t));
    /* a PENDING entry whose retries are exhausted is reclaimed */
    t.e[7].tries = ESPNOW_SEC_SYNC_RETRIES + 1;
    e = espnow_sec_rp_alloc(&t, MAC_A, 2000);
    CHECK(e == &t.e[7]);
    CHECK(e != NULL && memcmp(e->mac, MAC_A, 6) == 0 && e->state == ESPNOW_SEC_RP_FREE && e->max == 0);
    /* SYNCED entries idle >= REPLAY_IDLE_S: the one with the oldest t_last goes, exactly at the limit */
    fill_table(&t, ESPNOW_SEC_RP_SYNCED, 50000, 0);
    t.e[4].t_last = 20000;
    t.e[9].t_last = 10000;
    CHECK(espnow_sec_rp_alloc(&t, MAC_A, 10000 + idle - 1) == NULL);
    e = espnow_sec_rp_alloc(&t, MAC_A, 10000 + idle);
    CHECK(e == &t.e[9]);
    CHECK(t.e[4].state == ESPNOW_SEC_RP_SYNCED && t.e[4].t_last == 20000);
}

/* ==== epoch.c ==== */

static void g_of(uint8_t g[32], uint8_t seed)
{
    for (int i = 0; i < 32; i++) {
        g[i] = (uint8_t)(seed + i);
    }
}

static void test_epoch_select(void)
{
    static espnow_sec_epochs_t ep;
    uint8_t g1[32], g2[32], g3[32];
    g_of(g1, 1);
    g_of(g2, 2);
    g_of(g3, 3);
    memset(&ep, 0, sizeof(ep));
    espnow_sec_gkey_t k = {0};
    CHECK_EQ(espnow_sec_ep_set(&k, 0, g1), ESP_ERR_INVALID_ARG); /* epochs are 1..65535 (§9.1) */
    CHECK_EQ(espnow_sec_ep_select(&ep, 1, 0), ESPNOW_SEC_EP_NONE); /* no key at all */
    CHECK_EQ(espnow_sec_ep_install(&ep, 1, g1, 30, 0), ESP_OK);
    CHECK_EQ(ep.cur.epoch, 1);
    CHECK_EQ(ep.prev.epoch, 0); /* a first key has no previous */
    CHECK_EQ(espnow_sec_ep_select(&ep, 1, 10), ESPNOW_SEC_EP_CUR);
    CHECK_EQ(espnow_sec_ep_select(&ep, 0, 10), ESPNOW_SEC_EP_NONE);
    CHECK_EQ(espnow_sec_ep_select(&ep, 2, 10), ESPNOW_SEC_EP_NONE);
    CHECK_EQ(espnow_sec_ep_stage(&ep, 2, g2), ESP_OK);
    CHECK_EQ(espnow_sec_ep_select(&ep, 2, 10), ESPNOW_SEC_EP_STG);
    CHECK(espnow_sec_ep_key(&ep, ESPNOW_SEC_EP_STG) == &ep.stg);
    CHECK(espnow_sec_ep_key(&ep, ESPNOW_SEC_EP_NONE) == NULL);
    CHECK_EQ(espnow_sec_ep_select(&ep, 3, 10), ESPNOW_SEC_EP_NONE);
    /* the key of a slot is k_grp(E) of that slot's secret */
    uint8_t aes[16], pt[4] = {1, 2, 3, 4}, frame[64], back[4];
    size_t n = 0;
    CHECK_EQ(espnow_sec_ks_grp_key(g2, 2, aes), ESP_OK);
    espnow_sec_ccm_key_t ref = {0};
    CHECK_EQ(espnow_sec_ks_import(&ref, aes, ESPNOW_SEC_V2_TAG_GRP), ESP_OK);
    espnow_sec_v2_sec_hdr(frame, ESPNOW_SEC_V2_T_DATA, 2, 9);
    CHECK_EQ(espnow_sec_ks_seal(&ref, MAC_A, MAC_B, frame, pt, sizeof(pt), &n), ESP_OK);
    CHECK_EQ(espnow_sec_ks_open(&ep.stg.key, MAC_A, MAC_B, frame, n, back), ESP_OK);
    CHECK_MEM(back, pt, sizeof(pt));
    espnow_sec_crypto_ccm_key_destroy(&ref);
    /* a table entry in T(1), to see it frozen into T(prev) */
    espnow_sec_rp_entry_t *e = espnow_sec_rp_alloc(&ep.t_cur, MAC_A, 0);
    CHECK(e != NULL);
    if (e != NULL) {
        espnow_sec_rp_sync(e, 42, 0);
    }
    /* §9.3 activation at t = 1000: prev := cur (frozen table), cur := stg, stg := none, T(cur) empty */
    CHECK_EQ(espnow_sec_ep_activate(&ep, 30, 1000), ESP_OK);
    CHECK_EQ(ep.cur.epoch, 2);
    CHECK_EQ(ep.stg.epoch, 0);
    CHECK_EQ(ep.prev.epoch, 1);
    CHECK_EQ(ep.prev_t_act, 1000);
    CHECK(ep.t_prev.frozen);
    CHECK(espnow_sec_rp_find(&ep.t_prev, MAC_A) != NULL);
    CHECK(espnow_sec_rp_find(&ep.t_cur, MAC_A) == NULL);
    CHECK_EQ(espnow_sec_rp_synced(&ep.t_cur), 0);
    CHECK_EQ(espnow_sec_ep_activate(&ep, 30, 1000), ESP_ERR_INVALID_STATE); /* nothing staged */
    /* §9.4 grace: previous while now - t_act < grace_s * 1000 */
    CHECK_EQ(espnow_sec_ep_select(&ep, 1, 1000), ESPNOW_SEC_EP_PREV);
    CHECK_EQ(espnow_sec_ep_expire(&ep, 1000 + 29999), 1);
    CHECK_EQ(espnow_sec_ep_select(&ep, 1, 1000 + 29999), ESPNOW_SEC_EP_PREV);
    CHECK_EQ(espnow_sec_ep_select(&ep, 1, 1000 + 30000), ESPNOW_SEC_EP_NONE); /* exactly at the limit */
    CHECK_EQ(ep.prev.epoch, 0);                                                /* wiped with its table */
    CHECK(espnow_sec_rp_find(&ep.t_prev, MAC_A) == NULL);
    CHECK_EQ(espnow_sec_ep_expire(&ep, 1000 + 30000), UINT32_MAX);
    CHECK_EQ(espnow_sec_ep_select(&ep, 2, 1000 + 30000), ESPNOW_SEC_EP_CUR);
    /* install (ACTIVATE = 1 for a newer epoch): a staged epoch <= the new one is dropped, a newer one kept */
    CHECK_EQ(espnow_sec_ep_stage(&ep, 3, g3), ESP_OK);
    CHECK_EQ(espnow_sec_ep_install(&ep, 3, g3, 10, 50000), ESP_OK);
    CHECK_EQ(ep.cur.epoch, 3);
    CHECK_EQ(ep.stg.epoch, 0);
    CHECK_EQ(ep.prev.epoch, 2);
    CHECK_EQ(ep.grace_s, 10);
    CHECK_EQ(espnow_sec_ep_stage(&ep, 5, g1), ESP_OK);
    CHECK_EQ(espnow_sec_ep_install(&ep, 4, g2, 10, 51000), ESP_OK);
    CHECK_EQ(ep.cur.epoch, 4);
    CHECK_EQ(ep.stg.epoch, 5);
    CHECK_EQ(ep.prev.epoch, 3); /* only one previous: epoch 2 is gone */
    CHECK_EQ(espnow_sec_ep_select(&ep, 2, 51000), ESPNOW_SEC_EP_NONE);
    /* revoke everything: every slot empty, every epoch an EPOCH drop */
    espnow_sec_ep_wipe(&ep);
    CHECK_EQ(ep.cur.epoch + ep.stg.epoch + ep.prev.epoch, 0);
    for (uint16_t k2 = 0; k2 < 6; k2++) {
        CHECK_EQ(espnow_sec_ep_select(&ep, k2, 51000), ESPNOW_SEC_EP_NONE);
    }
}

static void test_epoch_grace_edges(void)
{
    static espnow_sec_epochs_t ep;
    uint8_t g1[32], g2[32];
    g_of(g1, 9);
    g_of(g2, 10);
    /* grace 0: the previous key is never accepted */
    memset(&ep, 0, sizeof(ep));
    CHECK_EQ(espnow_sec_ep_install(&ep, 1, g1, 0, 0), ESP_OK);
    CHECK_EQ(espnow_sec_ep_install(&ep, 2, g2, 0, 100), ESP_OK);
    CHECK_EQ(espnow_sec_ep_select(&ep, 1, 100), ESPNOW_SEC_EP_NONE);
    espnow_sec_ep_wipe(&ep);
    /* the clock wraps during the grace: compared by subtraction (§1 "time") */
    memset(&ep, 0, sizeof(ep));
    uint32_t t = 0xFFFFF000u;
    CHECK_EQ(espnow_sec_ep_install(&ep, 1, g1, 30, t), ESP_OK);
    CHECK_EQ(espnow_sec_ep_install(&ep, 2, g2, 30, t), ESP_OK);
    CHECK_EQ(espnow_sec_ep_select(&ep, 1, t + 29999u), ESPNOW_SEC_EP_PREV);
    CHECK_EQ(espnow_sec_ep_select(&ep, 1, t + 30000u), ESPNOW_SEC_EP_NONE);
    espnow_sec_ep_wipe(&ep);
    /* the maximum grace, 600 s */
    memset(&ep, 0, sizeof(ep));
    CHECK_EQ(espnow_sec_ep_install(&ep, 1, g1, 600, 0), ESP_OK);
    CHECK_EQ(espnow_sec_ep_install(&ep, 65535, g2, 600, 0), ESP_OK);
    CHECK_EQ(espnow_sec_ep_select(&ep, 65535, 0), ESPNOW_SEC_EP_CUR);
    CHECK_EQ(espnow_sec_ep_select(&ep, 1, 599999), ESPNOW_SEC_EP_PREV);
    CHECK_EQ(espnow_sec_ep_select(&ep, 1, 600000), ESPNOW_SEC_EP_NONE);
    espnow_sec_ep_wipe(&ep);
}

/* ==== keysched.c ==== */

static void test_ks_labels(void)
{
    /* PROTOCOL.md §4.3 label table, typed in: name, bytes, len */
    static const struct {
        const char *code;
        const char *doc;
        size_t len;
    } labels[] = {
        {ESPNOW_SEC_L_POP, "espnow-sec v2 pop", 17},
        {ESPNOW_SEC_L_TH, "espnow-sec v2 transcript", 24},
        {ESPNOW_SEC_L_CONF_I, "espnow-sec v2 conf I", 20},
        {ESPNOW_SEC_L_CONF_R, "espnow-sec v2 conf R", 20},
        {ESPNOW_SEC_L_DEV, "espnow-sec v2 device key", 24},
        {ESPNOW_SEC_L_PAIR, "espnow-sec v2 pairwise", 22},
        {ESPNOW_SEC_L_CTL, "ctl key", 7},
        {ESPNOW_SEC_L_GROUP, "espnow-sec v2 group", 19},
        {ESPNOW_SEC_L_DATA, "data key", 8},
        {ESPNOW_SEC_L_CHECK, "espnow-sec v2 key check", 23},
        {ESPNOW_SEC_L_PAIR_ID, "espnow-sec v2 pair id", 21},
    };
    for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++) {
        CHECK_EQ(strlen(labels[i].code), labels[i].len);
        CHECK(strcmp(labels[i].code, labels[i].doc) == 0);
    }
}

static void test_ks_nonce_aad(void)
{
    /* §2.5 with distinct bytes everywhere: hdr = CF 02 30 00 | epoch 0xA1B2 | counter 0x010203040506 */
    static const uint8_t hdr[12] = {0xCF, 0x02, 0x30, 0x00, 0xA1, 0xB2, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06};
    static const uint8_t src[6] = {0x11, 0x12, 0x13, 0x14, 0x15, 0x16};
    static const uint8_t dst[6] = {0x21, 0x22, 0x23, 0x24, 0x25, 0x26};
    /* nonce bytes 0-5 src, 6-11 counter, 12 type */
    static const uint8_t want_nonce[13] = {0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x01,
                                           0x02, 0x03, 0x04, 0x05, 0x06, 0x30};
    /* AAD = hdr[0..12) ‖ dst ‖ src, 24 bytes */
    static const uint8_t want_aad[24] = {0xCF, 0x02, 0x30, 0x00, 0xA1, 0xB2, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
                                         0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16};
    uint8_t nonce[13], aad[24], h2[12];
    espnow_sec_ks_nonce(src, hdr, nonce);
    CHECK_MEM(nonce, want_nonce, sizeof(nonce));
    espnow_sec_ks_aad(hdr, dst, src, aad);
    CHECK_MEM(aad, want_aad, sizeof(aad));
    /* the secured header encoder lays the fields out as §2.2 says (BE16 epoch, BE48 counter) */
    espnow_sec_v2_sec_hdr(h2, 0x30, 0xA1B2, 0x010203040506ull);
    CHECK_MEM(h2, hdr, sizeof(hdr));
    /* a CTRL (type 0x20, epoch 0) to a broadcast dst: the type byte and ff.. appear as sent */
    static const uint8_t bc[6] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    espnow_sec_v2_sec_hdr(h2, 0x20, 0, 0xFFFFFFFFFFFEull);
    espnow_sec_ks_nonce(src, h2, nonce);
    static const uint8_t want_nonce2[13] = {0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0xFF,
                                            0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 0x20};
    CHECK_MEM(nonce, want_nonce2, sizeof(nonce));
    espnow_sec_ks_aad(h2, bc, src, aad);
    static const uint8_t want_aad2[24] = {0xCF, 0x02, 0x20, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE,
                                          0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16};
    CHECK_MEM(aad, want_aad2, sizeof(aad));
    /* seal / open use exactly that nonce and AAD: recompute with the raw CCM */
    uint8_t key[16], pt[5] = {'h', 'e', 'l', 'l', 'o'}, frame[64], raw[64], back[5];
    for (int i = 0; i < 16; i++) {
        key[i] = (uint8_t)(0x40 + i);
    }
    espnow_sec_ccm_key_t k = {0};
    CHECK_EQ(espnow_sec_ks_import(&k, key, ESPNOW_SEC_V2_TAG_GRP), ESP_OK);
    memcpy(frame, hdr, sizeof(hdr));
    size_t n = 0;
    CHECK_EQ(espnow_sec_ks_seal(&k, src, dst, frame, pt, sizeof(pt), &n), ESP_OK);
    CHECK_EQ(n, 12 + sizeof(pt) + 8);
    CHECK_EQ(espnow_sec_crypto_ccm_seal(&k, want_nonce, 13, want_aad, 24, pt, sizeof(pt), raw), ESP_OK);
    CHECK_MEM(&frame[12], raw, sizeof(pt) + 8);
    CHECK_EQ(espnow_sec_ks_open(&k, src, dst, frame, n, back), ESP_OK);
    CHECK_MEM(back, pt, sizeof(pt));
    /* re-addressed, another sender, or one byte short: never opens */
    CHECK(espnow_sec_ks_open(&k, src, bc, frame, n, back) != ESP_OK);
    CHECK(espnow_sec_ks_open(&k, dst, dst, frame, n, back) != ESP_OK);
    CHECK(espnow_sec_ks_open(&k, src, dst, frame, n - 1, back) != ESP_OK);
    CHECK_EQ(espnow_sec_ks_open(&k, src, dst, frame, 12 + 7, back), ESP_ERR_ESPNOW_SEC_MALFORMED);
    espnow_sec_crypto_ccm_key_destroy(&k);
}

static void test_ks_derivations(void)
{
    /* each §4.3 formula recomputed from the raw primitives and the labels as typed in the doc */
    uint8_t kdev[32], g[32], out[32], want[32], buf[128];
    for (int i = 0; i < 32; i++) {
        kdev[i] = (uint8_t)(0x80 + i);
        g[i] = (uint8_t)(0x20 + 3 * i);
    }
    /* pop_hash = SHA256("espnow-sec v2 pop" ‖ pop) */
    CHECK_EQ(espnow_sec_ks_pop_hash((const uint8_t *)"abc", 3, out), ESP_OK);
    memcpy(buf, "espnow-sec v2 popabc", 20);
    CHECK_EQ(espnow_sec_crypto_sha256(buf, 20, want), ESP_OK);
    CHECK_MEM(out, want, 32);
    CHECK_EQ(espnow_sec_ks_pop_hash(NULL, 0, out), ESP_OK); /* the empty PoP is hashed like any other */
    CHECK_EQ(espnow_sec_crypto_sha256((const uint8_t *)"espnow-sec v2 pop", 17, want), ESP_OK);
    CHECK_MEM(out, want, 32);
    uint8_t long_pop[65] = {0};
    CHECK_EQ(espnow_sec_ks_pop_hash(long_pop, 65, out), ESP_ERR_INVALID_ARG); /* PoP <= 64 bytes */
    /* k_ctl = HKDF(salt = L_PAIR, ikm = k_dev, info = L_CTL ‖ mac_I ‖ mac_R, 16) */
    CHECK_EQ(espnow_sec_ks_ctl_key(kdev, MAC_B, MAC_A, out), ESP_OK);
    memcpy(buf, "ctl key", 7);
    memcpy(&buf[7], MAC_B, 6);
    memcpy(&buf[13], MAC_A, 6);
    CHECK_EQ(espnow_sec_crypto_hkdf_sha256((const uint8_t *)"espnow-sec v2 pairwise", 22, kdev, 32, buf, 19, want, 16),
             ESP_OK);
    CHECK_MEM(out, want, 16);
    /* k_grp(E) = HKDF(salt = L_GROUP, ikm = G_E, info = L_DATA ‖ BE16(E), 16) */
    CHECK_EQ(espnow_sec_ks_grp_key(g, 0x0102, out), ESP_OK);
    memcpy(buf, "data key\x01\x02", 10);
    CHECK_EQ(espnow_sec_crypto_hkdf_sha256((const uint8_t *)"espnow-sec v2 group", 19, g, 32, buf, 10, want, 16), ESP_OK);
    CHECK_MEM(out, want, 16);
    /* key_check(E, G) = HMAC(k_dev, L_CHECK ‖ BE16(E) ‖ G)[0..16) */
    CHECK_EQ(espnow_sec_ks_key_check(kdev, 0x0203, g, out), ESP_OK);
    memcpy(buf, "espnow-sec v2 key check\x02\x03", 25);
    memcpy(&buf[25], g, 32);
    CHECK_EQ(espnow_sec_crypto_hmac_sha256(kdev, 32, buf, 57, want), ESP_OK);
    CHECK_MEM(out, want, 16);
    /* pair_id = HMAC(k_dev, L_PAIR_ID)[0..4) */
    CHECK_EQ(espnow_sec_ks_pair_id(kdev, out), ESP_OK);
    CHECK_EQ(espnow_sec_crypto_hmac_sha256(kdev, 32, (const uint8_t *)"espnow-sec v2 pair id", 21, want), ESP_OK);
    CHECK_MEM(out, want, 4);
    /* th2 = SHA256(L_TH ‖ mac_I ‖ mac_R ‖ HS1 ‖ HS2), th3 = SHA256(th2 ‖ HS3) */
    uint8_t hs1[41], hs2[40], th[32], th3[32];
    for (int i = 0; i < 41; i++) {
        hs1[i] = (uint8_t)i;
    }
    for (int i = 0; i < 40; i++) {
        hs2[i] = (uint8_t)(0xC0 ^ i);
    }
    CHECK_EQ(espnow_sec_ks_th2(MAC_B, MAC_A, hs1, hs2, th), ESP_OK);
    size_t n = 0;
    memcpy(buf, "espnow-sec v2 transcript", 24);
    n = 24;
    memcpy(&buf[n], MAC_B, 6);
    n += 6;
    memcpy(&buf[n], MAC_A, 6);
    n += 6;
    uint8_t big[24 + 12 + 41 + 40];
    memcpy(big, buf, n);
    memcpy(&big[n], hs1, 41);
    memcpy(&big[n + 41], hs2, 40);
    CHECK_EQ(espnow_sec_crypto_sha256(big, sizeof(big), want), ESP_OK);
    CHECK_MEM(th, want, 32);
    CHECK_EQ(espnow_sec_ks_th3(th, hs2, th3), ESP_OK);
    memcpy(buf, th, 32);
    memcpy(&buf[32], hs2, 40);
    CHECK_EQ(espnow_sec_crypto_sha256(buf, 72, want), ESP_OK);
    CHECK_MEM(th3, want, 32);
    /* k_conf_I / k_conf_R / k_dev = HKDF(salt = th2, ikm = dh ‖ pop_hash, info = label, 32) */
    uint8_t dh[32], ph[32], ikm[64];
    memset(dh, 0x33, 32);
    memset(ph, 0x44, 32);
    memcpy(ikm, dh, 32);
    memcpy(&ikm[32], ph, 32);
    espnow_sec_hs_keys_t hk;
    CHECK_EQ(espnow_sec_ks_hs_keys(th, dh, ph, &hk), ESP_OK);
    CHECK_EQ(espnow_sec_crypto_hkdf_sha256(th, 32, ikm, 64, (const uint8_t *)"espnow-sec v2 conf I", 20, want, 32), ESP_OK);
    CHECK_MEM(hk.k_conf_i, want, 32);
    CHECK_EQ(espnow_sec_crypto_hkdf_sha256(th, 32, ikm, 64, (const uint8_t *)"espnow-sec v2 conf R", 20, want, 32), ESP_OK);
    CHECK_MEM(hk.k_conf_r, want, 32);
    CHECK_EQ(espnow_sec_crypto_hkdf_sha256(th, 32, ikm, 64, (const uint8_t *)"espnow-sec v2 device key", 24, want, 32),
             ESP_OK);
    CHECK_MEM(hk.k_dev, want, 32);
    /* conf = HMAC(k_conf, th); verify accepts it and refuses one flipped bit */
    CHECK_EQ(espnow_sec_ks_conf(hk.k_conf_i, th, out), ESP_OK);
    CHECK_EQ(espnow_sec_crypto_hmac_sha256(hk.k_conf_i, 32, th, 32, want), ESP_OK);
    CHECK_MEM(out, want, 32);
    CHECK_EQ(espnow_sec_ks_conf_verify(hk.k_conf_i, th, out), ESP_OK);
    out[0] ^= 0x80;
    CHECK(espnow_sec_ks_conf_verify(hk.k_conf_i, th, out) != ESP_OK);
}

int main(void)
{
    espnow_sec_crypto_init();
    RUN(test_replay_sync_and_first);
    RUN(test_replay_window_edges);
    RUN(test_replay_far_ahead);
    RUN(test_replay_check_is_pure);
    RUN(test_replay_table_full);
    RUN(test_epoch_select);
    RUN(test_epoch_grace_edges);
    RUN(test_ks_labels);
    RUN(test_ks_nonce_aad);
    RUN(test_ks_derivations);
    HARNESS_END();
}
