/*
 * test_v2_sim.c - protocol v2 through the in-process air (sim.c): provisioning of N
 * responders, lost confirmations, wrong PoP, replays, tampering, plaintext, counters across
 * reboots, re-key, remove and add (docs/PROTOCOL.md; issue 6 "Tests through the air").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "sim.h"

#define POP "v2-test-pop-0123456789abcdef"
#define BCAST espnow_sec_broadcast_mac

static sim_t *net(int responders, uint64_t seed)
{
    sim_t *sim = sim_new(1000);
    sim->protocol = ESPNOW_SEC_PROTOCOL_V2;
    sim_add(sim, seed);
    CHECK_EQ(sim_start(sim, 0, ESPNOW_SEC_ROLE_INITIATOR, POP), ESP_OK);
    for (int i = 0; i < responders; i++) {
        sim_add(sim, seed);
        CHECK_EQ(sim_start(sim, 1 + i, ESPNOW_SEC_ROLE_RESPONDER, POP), ESP_OK);
    }
    return sim;
}

static espnow_sec_stats_t stats(sim_t *sim, int i)
{
    espnow_sec_stats_t s;
    espnow_sec_node_get_stats(sim->nodes[i].node, &s);
    return s;
}

static espnow_sec_status_t status(sim_t *sim, int i)
{
    espnow_sec_status_t s;
    espnow_sec_node_get_status(sim->nodes[i].node, &s);
    return s;
}

static const espnow_sec_event_t *done_event(sim_t *sim)
{
    return sim_find_event(&sim->nodes[0], ESPNOW_SEC_EVENT_PROVISION_DONE, 0);
}

static void provision(sim_t *sim)
{
    CHECK_EQ(espnow_sec_node_provision(sim->nodes[0].node, 1000), ESP_OK);
    sim_run(sim, 30000, sim_provision_done);
}

/* Let broadcast SYNCs (spread over 5 s) and their answers settle. */
static void settle(sim_t *sim)
{
    sim_run(sim, 7000, NULL);
}

static int rx_count(sim_t *sim, int i)
{
    return sim->nodes[i].n_rx;
}

static void test_provision_three(void)
{
    sim_t *sim = net(3, 1);
    provision(sim);
    const espnow_sec_event_t *d = done_event(sim);
    CHECK(d != NULL);
    if (d != NULL) {
        CHECK_EQ(d->data.done.succeeded, 3);
        CHECK_EQ(d->data.done.unfinished, 0);
    }
    CHECK_EQ(sim_count_events(&sim->nodes[0], ESPNOW_SEC_EVENT_PEER_SECURED), 3);
    for (int i = 1; i <= 3; i++) {
        CHECK(espnow_sec_node_is_secured(sim->nodes[i].node));
        CHECK_EQ(sim_count_events(&sim->nodes[i], ESPNOW_SEC_EVENT_PEER_SECURED), 1);
        CHECK_EQ(status(sim, i).epoch, 1);
        size_t len = 0;
        CHECK(sim_record(&sim->nodes[i], "v2_resp", &len) != NULL);
        CHECK_EQ(len, 120);
    }
    CHECK_EQ(status(sim, 0).peers, 3);
    /* initiator -> everyone, at once (CTRL/CTRL_ACK synced the pairwise windows) */
    CHECK_EQ(espnow_sec_node_send(sim->nodes[0].node, NULL, (const uint8_t *)"hello", 5), ESP_OK);
    sim_flush(sim);
    for (int i = 1; i <= 3; i++) {
        CHECK_EQ(rx_count(sim, i), 1);
        if (rx_count(sim, i) == 1) {
            CHECK_EQ(sim->nodes[i].rx[0].info.protection, ESPNOW_SEC_RX_ENCRYPTED);
            CHECK_MEM(sim->nodes[i].rx[0].data, "hello", 5);
            CHECK(sim->nodes[i].rx[0].info.broadcast);
        }
    }
    /* after the SYNC announcements, responder -> responder too */
    settle(sim);
    CHECK_EQ(espnow_sec_node_send(sim->nodes[1].node, NULL, (const uint8_t *)"from r1", 7), ESP_OK);
    sim_flush(sim);
    CHECK_EQ(rx_count(sim, 0), 1);
    CHECK_EQ(rx_count(sim, 2), 2);
    CHECK_EQ(rx_count(sim, 3), 2);
    sim_free(sim);
}


/* ---- capture / drop helpers ---- */

static uint8_t s_cap[ESPNOW_SEC_FRAME_MAX];
static size_t s_cap_len;
static int s_cap_from;
static sim_kind_t s_cap_kind;
static int s_drop_kind_left;
static sim_kind_t s_drop_kind;

static void tap_last(sim_t *sim, int from, const uint8_t *data, size_t len, void *ctx)
{
    (void)sim;
    (void)ctx;
    if (sim_classify(data, len) == s_cap_kind) {
        memcpy(s_cap, data, len);
        s_cap_len = len;
        s_cap_from = from;
    }
}

static bool drop_kind(sim_t *sim, int from, const uint8_t dst[ESPNOW_SEC_ADDR_LEN], uint8_t *data, size_t *len,
                      sim_kind_t kind, void *ctx)
{
    (void)sim;
    (void)from;
    (void)dst;
    (void)data;
    (void)len;
    (void)ctx;
    if (kind == s_drop_kind && s_drop_kind_left > 0) {
        s_drop_kind_left--;
        return false;
    }
    return true;
}

/* Inject the captured frame into node `to` as sent by node s_cap_from to `dst`. */
static void replay(sim_t *sim, int to, const uint8_t *dst)
{
    uint8_t *copy = malloc(s_cap_len);
    memcpy(copy, s_cap, s_cap_len);
    espnow_sec_node_on_frame(sim->nodes[to].node, sim->nodes[s_cap_from].mac, dst, copy, s_cap_len, -40, 1);
    free(copy);
}

static void test_lost_final_ack(void)
{
    sim_t *sim = net(1, 2);
    s_drop_kind = SIM_K_V2_CTRL_ACK;
    s_drop_kind_left = 2;
    sim->filter = drop_kind;
    provision(sim);
    const espnow_sec_event_t *d = done_event(sim);
    CHECK(d != NULL && d->data.done.succeeded == 1);
    CHECK_EQ(sim_count_events(&sim->nodes[0], ESPNOW_SEC_EVENT_PEER_SECURED), 1);
    CHECK_EQ(sim_count_events(&sim->nodes[1], ESPNOW_SEC_EVENT_PEER_SECURED), 1);
    CHECK(sim->nodes[0].sent[SIM_K_V2_CTRL] >= 3);        /* KEY retransmitted */
    CHECK(sim->nodes[1].sent[SIM_K_V2_CTRL_ACK] >= 3);    /* answered again each time */
    CHECK(espnow_sec_node_is_secured(sim->nodes[1].node));
    sim_run(sim, 20000, NULL);
    CHECK_EQ(sim_count_events(&sim->nodes[0], ESPNOW_SEC_EVENT_PEER_SECURED), 1);
    sim_free(sim);
}

static void test_lost_hs4(void)
{
    sim_t *sim = net(1, 3);
    s_drop_kind = SIM_K_V2_HS4;
    s_drop_kind_left = 1;
    sim->filter = drop_kind;
    provision(sim);
    const espnow_sec_event_t *d = done_event(sim);
    CHECK(d != NULL && d->data.done.succeeded == 1);
    CHECK_EQ(sim->nodes[1].sent[SIM_K_V2_HS4], 2);
    sim_free(sim);
}

static void test_wrong_pop(void)
{
    sim_t *sim = sim_new(1000);
    sim->protocol = ESPNOW_SEC_PROTOCOL_V2;
    sim_add(sim, 4);
    sim_add(sim, 4);
    CHECK_EQ(sim_start(sim, 0, ESPNOW_SEC_ROLE_INITIATOR, POP), ESP_OK);
    CHECK_EQ(sim_start(sim, 1, ESPNOW_SEC_ROLE_RESPONDER, "another-pop-entirely-xyz"), ESP_OK);
    provision(sim);
    const espnow_sec_event_t *d = done_event(sim);
    CHECK(d != NULL && d->data.done.succeeded == 0 && d->data.done.unfinished == 1);
    const espnow_sec_event_t *f = sim_find_event(&sim->nodes[0], ESPNOW_SEC_EVENT_PEER_FAILED, 0);
    CHECK(f != NULL && f->data.peer.reason == ESPNOW_SEC_FAIL_POP_MISMATCH);
    f = sim_find_event(&sim->nodes[1], ESPNOW_SEC_EVENT_PEER_FAILED, 0);
    CHECK(f != NULL && f->data.peer.reason == ESPNOW_SEC_FAIL_POP_MISMATCH);
    CHECK(!espnow_sec_node_is_secured(sim->nodes[1].node));
    size_t len = 0;
    CHECK(sim_record(&sim->nodes[1], "v2_resp", &len) == NULL); /* nothing stored */
    CHECK(sim_record(&sim->nodes[0], "v2_dev00", &len) == NULL);
    /* repeated attempts are slowed: the next HS1 at once is refused BUSY */
    int hs2_before = sim->nodes[1].sent[SIM_K_V2_HS2];
    CHECK_EQ(espnow_sec_node_provision(sim->nodes[0].node, 300), ESP_OK);
    sim_run(sim, 400, NULL);
    sim_run(sim, 30000, sim_provision_done);
    CHECK(sim->nodes[1].sent[SIM_K_V2_HS_ERR] >= 2);
    espnow_sec_status_t st = status(sim, 1);
    /* an HS1 answered with HS_ERR BUSY is handled, not dropped (§6.2; vectors/v2.json pop-wrong) */
    CHECK_EQ(st.drops[ESPNOW_SEC_DROP_RATE_LIMITED], 0);
    CHECK(sim->nodes[1].sent[SIM_K_V2_HS2] - hs2_before <= 2);
    sim_free(sim);
}

static void test_replay_and_tamper(void)
{
    sim_t *sim = net(2, 5);
    provision(sim);
    settle(sim);
    s_cap_kind = SIM_K_V2_DATA;
    sim->tap = tap_last;
    CHECK_EQ(espnow_sec_node_send(sim->nodes[0].node, NULL, (const uint8_t *)"one", 3), ESP_OK);
    sim_flush(sim);
    CHECK_EQ(rx_count(sim, 1), 1);
    uint8_t frame[ESPNOW_SEC_FRAME_MAX];
    size_t flen = s_cap_len;
    memcpy(frame, s_cap, flen);
    /* immediately */
    replay(sim, 1, BCAST);
    CHECK_EQ(rx_count(sim, 1), 1);
    CHECK_EQ(status(sim, 1).drops[ESPNOW_SEC_DROP_REPLAY], 1);
    /* after 100 later frames */
    for (int i = 0; i < 100; i++) {
        CHECK_EQ(espnow_sec_node_send(sim->nodes[0].node, NULL, (const uint8_t *)"more", 4), ESP_OK);
        sim_flush(sim);
    }
    int before = rx_count(sim, 1);
    memcpy(s_cap, frame, flen);
    s_cap_len = flen;
    replay(sim, 1, BCAST);
    CHECK_EQ(rx_count(sim, 1), before);
    /* every single header or payload byte changed */
    sim->nodes[1].n_rx = 0;
    espnow_sec_status_t st0 = status(sim, 1);
    CHECK_EQ(espnow_sec_node_send(sim->nodes[0].node, NULL, (const uint8_t *)"tamper me", 9), ESP_OK);
    memcpy(frame, s_cap, s_cap_len);
    flen = s_cap_len;
    sim->q_head = sim->q_tail; /* keep the original off the air */
    for (size_t i = 0; i < flen; i++) {
        memcpy(s_cap, frame, flen);
        s_cap[i] ^= 0x01;
        replay(sim, 1, BCAST);
    }
    CHECK_EQ(sim->nodes[1].n_rx, 0);
    espnow_sec_status_t st1 = status(sim, 1);
    uint32_t dropped = 0; /* every flipped byte is dropped for some reason (AUTH, or FOREIGN/MALFORMED/PLAINTEXT
                             for magic, version, type and flags) */
    for (int r = 0; r < ESPNOW_SEC_DROP_COUNT; r++) {
        dropped += st1.drops[r] - st0.drops[r];
    }
    CHECK_EQ(dropped, flen);
    /* re-addressed to node 1 only: dst is in the AAD */
    memcpy(s_cap, frame, flen);
    replay(sim, 1, sim->nodes[1].mac);
    CHECK_EQ(sim->nodes[1].n_rx, 0);
    /* the untouched frame is still good */
    memcpy(s_cap, frame, flen);
    replay(sim, 1, BCAST);
    CHECK_EQ(sim->nodes[1].n_rx, 1);
    /* after the receiver rebooted: RAM windows gone, still rejected */
    CHECK_EQ(sim_reboot(sim, 1, ESPNOW_SEC_ROLE_RESPONDER, POP), ESP_OK);
    int n = sim->nodes[1].n_rx;
    replay(sim, 1, BCAST);
    sim_run(sim, 3000, NULL);
    replay(sim, 1, BCAST);
    CHECK_EQ(sim->nodes[1].n_rx, n);
    sim_free(sim);
}

static void test_plaintext_from_member(void)
{
    sim_t *sim = net(1, 6);
    provision(sim);
    uint8_t f[4 + 5];
    espnow_sec_v2_clear_hdr(f, ESPNOW_SEC_V2_T_DATA_PLAIN);
    memcpy(&f[4], "plain", 5);
    espnow_sec_node_on_frame(sim->nodes[1].node, sim->nodes[0].mac, BCAST, f, sizeof(f), -40, 1);
    CHECK_EQ(rx_count(sim, 1), 0);
    espnow_sec_stats_t st = stats(sim, 1);
    CHECK_EQ(st.rx_plaintext_dropped, 1);
    CHECK_EQ(status(sim, 1).drops[ESPNOW_SEC_DROP_PLAINTEXT], 1);
    /* a compat frame is foreign to a v2 node */
    uint8_t compat[21] = {0x2a};
    espnow_sec_node_on_frame(sim->nodes[1].node, sim->nodes[0].mac, BCAST, compat, sizeof(compat), -40, 1);
    CHECK_EQ(stats(sim, 1).rx_foreign, 1);
    sim_free(sim);
}

static void test_ctrl_without_mac_ignored(void)
{
    sim_t *sim = net(1, 7);
    provision(sim);
    s_cap_kind = SIM_K_V2_CTRL;
    sim->tap = tap_last;
    CHECK_EQ(espnow_sec_node_rekey(sim->nodes[0].node), ESP_OK);
    sim->q_head = sim->q_tail; /* capture the KEY, deliver nothing */
    CHECK(s_cap_len > 0);
    espnow_sec_status_t before = status(sim, 1);
    uint8_t frame[ESPNOW_SEC_FRAME_MAX];
    size_t flen = s_cap_len;
    memcpy(frame, s_cap, flen);
    /* bad tag, truncated/garbled body, wrong sender: all ignored */
    s_cap[flen - 1] ^= 0x80;
    replay(sim, 1, sim->nodes[1].mac);
    memcpy(s_cap, frame, flen);
    s_cap[14] ^= 0x01;
    replay(sim, 1, sim->nodes[1].mac);
    uint8_t unprov[ESPNOW_SEC_V2_SEC_HDR_LEN + 1 + 16] = {0};
    espnow_sec_v2_sec_hdr(unprov, ESPNOW_SEC_V2_T_CTRL, 0, 999999);
    unprov[12] = ESPNOW_SEC_V2_OP_UNPROVISION;
    memcpy(s_cap, unprov, sizeof(unprov));
    s_cap_len = sizeof(unprov);
    replay(sim, 1, sim->nodes[1].mac);
    espnow_sec_status_t after = status(sim, 1);
    CHECK_EQ(after.drops[ESPNOW_SEC_DROP_AUTH] - before.drops[ESPNOW_SEC_DROP_AUTH], 3);
    CHECK_EQ(after.staged_epoch, 0);
    CHECK(after.secured);
    CHECK_EQ(sim->nodes[1].sent[SIM_K_V2_CTRL_ACK], 1); /* only the provisioning KEY was answered */
    sim_free(sim);
}

static void test_counter_never_reused(void)
{
    sim_t *sim = net(0, 8);
    uint64_t last = 0;
    bool first = true;
    for (int boot = 0; boot < 1000; boot++) {
        uint8_t f[ESPNOW_SEC_FRAME_MAX];
        s_cap_kind = SIM_K_V2_DATA;
        sim->tap = tap_last;
        for (int k = 0; k < 3; k++) {
            CHECK_EQ(espnow_sec_node_send(sim->nodes[0].node, NULL, (const uint8_t *)"x", 1), ESP_OK);
            memcpy(f, s_cap, s_cap_len);
            uint64_t c = espnow_sec_get_be48(&f[6]);
            CHECK(first || c > last);
            first = false;
            last = c;
        }
        sim->q_head = sim->q_tail;
        if (espnow_sec_node_init(sim->nodes[0].node, &sim->nodes[0].env, &(espnow_sec_node_config_t){0}) == ESP_OK) {
            CHECK(0); /* (NULL pop must be refused) */
        }
        CHECK_EQ(sim_reboot(sim, 0, ESPNOW_SEC_ROLE_INITIATOR, POP), ESP_OK);
    }
    CHECK(last < 1001ull * ESPNOW_SEC_COUNTER_BLOCK);
    sim_free(sim);
}

static void test_rekey_remove_add(void)
{
    sim_t *sim = net(3, 9);
    provision(sim);
    settle(sim);
    /* re-key moves everyone */
    CHECK_EQ(espnow_sec_node_rekey(sim->nodes[0].node), ESP_OK);
    CHECK_EQ(espnow_sec_node_rekey(sim->nodes[0].node), ESP_ERR_INVALID_STATE);
    sim_run(sim, 15000, NULL);
    const espnow_sec_event_t *r = sim_find_event(&sim->nodes[0], ESPNOW_SEC_EVENT_REKEY_DONE, 0);
    CHECK(r != NULL && r->data.rekey.epoch == 2 && r->data.rekey.acked == 3 && r->data.rekey.stragglers == 0);
    for (int i = 0; i <= 3; i++) {
        CHECK_EQ(status(sim, i).epoch, 2);
    }
    /* old epoch accepted within the grace only: replay an epoch-1 frame from node 1? Use a fresh one:
       node 3 is frozen at epoch 1 by hand is not possible; check grace bookkeeping instead. */
    CHECK_EQ(status(sim, 1).previous_epoch, 1);
    sim_run(sim, (ESPNOW_SEC_EPOCH_GRACE_S + 1) * 1000u, NULL);
    CHECK_EQ(status(sim, 1).previous_epoch, 0);
    /* remove node 3 */
    s_cap_kind = SIM_K_V2_DATA;
    sim->tap = tap_last;
    CHECK_EQ(espnow_sec_node_remove_device(sim->nodes[0].node, sim->nodes[3].mac), ESP_OK);
    sim_run(sim, 15000, NULL);
    CHECK_EQ(sim_count_events(&sim->nodes[0], ESPNOW_SEC_EVENT_DEVICE_REMOVED), 1);
    CHECK_EQ(sim_count_events(&sim->nodes[3], ESPNOW_SEC_EVENT_UNPROVISIONED), 1);
    CHECK(!espnow_sec_node_is_secured(sim->nodes[3].node));
    CHECK_EQ(status(sim, 0).epoch, 3);
    CHECK_EQ(status(sim, 1).epoch, 3);
    CHECK_EQ(status(sim, 0).peers, 2);
    settle(sim);
    int n3 = rx_count(sim, 3);
    CHECK_EQ(espnow_sec_node_send(sim->nodes[0].node, NULL, (const uint8_t *)"epoch 3", 7), ESP_OK);
    sim_flush(sim);
    CHECK_EQ(rx_count(sim, 3), n3); /* the removed device reads nothing */
    /* add a newcomer without re-keying the others */
    int nw = sim_add(sim, 9);
    CHECK_EQ(sim_start(sim, nw, ESPNOW_SEC_ROLE_RESPONDER, POP), ESP_OK);
    int ctrl1 = sim->nodes[1].sent[SIM_K_V2_CTRL_ACK];
    CHECK_EQ(espnow_sec_node_add_devices(sim->nodes[0].node, 1000), ESP_OK);
    sim->nodes[0].n_events = 0;
    sim_run(sim, 30000, sim_provision_done);
    const espnow_sec_event_t *d = done_event(sim);
    CHECK(d != NULL && d->data.done.succeeded == 2); /* newcomer + the removed node 3 (now unprovisioned) */
    CHECK_EQ(status(sim, nw).epoch, 3);
    CHECK_EQ(sim->nodes[1].sent[SIM_K_V2_CTRL_ACK], ctrl1); /* members untouched */
    CHECK_EQ(status(sim, 1).epoch, 3);
    sim_free(sim);
}

static void test_responder_store_fails(void)
{
    sim_t *sim = net(1, 10);
    sim->nodes[1].fail_save = true;
    provision(sim);
    const espnow_sec_event_t *d = done_event(sim);
    CHECK(d != NULL && d->data.done.succeeded == 0 && d->data.done.unfinished == 1);
    const espnow_sec_event_t *f = sim_find_event(&sim->nodes[0], ESPNOW_SEC_EVENT_PEER_FAILED, 0);
    /* no counter can be reserved, so not even a STORE_FAIL answer can be sealed: a timeout */
    CHECK(f != NULL && (f->data.peer.reason == ESPNOW_SEC_FAIL_STORE || f->data.peer.reason == ESPNOW_SEC_FAIL_TIMEOUT));
    CHECK(!espnow_sec_node_is_secured(sim->nodes[1].node));
    CHECK_EQ(sim->nodes[1].n_recs, 0);
    CHECK_EQ(sim_count_events(&sim->nodes[1], ESPNOW_SEC_EVENT_PEER_SECURED), 0);
    sim_free(sim);
}

/* Two members secured at different times (the first one announced before the second held the
   key): the second one's announcement and the first one's answer carry each other's challenge
   (§8.4 step 2), so once the join SYNCs settled the first frame each way is delivered. */
static void test_members_secured_at_different_times(void)
{
    sim_t *sim = net(1, 11);
    provision(sim);
    settle(sim);
    int late = sim_add(sim, 11);
    CHECK_EQ(sim_start(sim, late, ESPNOW_SEC_ROLE_RESPONDER, POP), ESP_OK);
    int sync1 = sim->nodes[1].sent[SIM_K_V2_SYNC];
    CHECK_EQ(espnow_sec_node_add_devices(sim->nodes[0].node, 1000), ESP_OK);
    sim->nodes[0].n_events = 0;
    sim_run(sim, 30000, sim_provision_done);
    CHECK(espnow_sec_node_is_secured(sim->nodes[late].node));
    settle(sim);
    /* one exchange, no retry: the early member's answer already carried its own challenge */
    CHECK_EQ(sim->nodes[1].sent[SIM_K_V2_SYNC] - sync1, 1);
    espnow_sec_status_t a0 = status(sim, 1), b0 = status(sim, late);
    int na = rx_count(sim, 1), nb = rx_count(sim, late);
    CHECK_EQ(espnow_sec_node_send(sim->nodes[1].node, sim->nodes[late].mac, (const uint8_t *)"early->late", 11),
             ESP_OK);
    sim_flush(sim);
    CHECK_EQ(rx_count(sim, late), nb + 1);
    if (rx_count(sim, late) == nb + 1) {
        CHECK_MEM(sim->nodes[late].rx[nb].data, "early->late", 11);
    }
    CHECK_EQ(espnow_sec_node_send(sim->nodes[late].node, NULL, (const uint8_t *)"late->all", 9), ESP_OK);
    sim_flush(sim);
    CHECK_EQ(rx_count(sim, 1), na + 1);
    CHECK_EQ(status(sim, 1).drops[ESPNOW_SEC_DROP_UNSYNCED], a0.drops[ESPNOW_SEC_DROP_UNSYNCED]);
    CHECK_EQ(status(sim, late).drops[ESPNOW_SEC_DROP_UNSYNCED], b0.drops[ESPNOW_SEC_DROP_UNSYNCED]);
    sim_free(sim);
}

/* ---- §6.1 re-pair: the old pairing stays until the new one is confirmed ---- */

static espnow_sec_v2_dev_rec_t ini_dev(sim_t *sim)
{
    espnow_sec_v2_dev_rec_t d = {0};
    size_t len = 0;
    const uint8_t *b = sim_record(&sim->nodes[0], "v2_dev00", &len);
    CHECK(b != NULL && len == ESPNOW_SEC_V2_DEV_LEN);
    if (b != NULL && len == ESPNOW_SEC_V2_DEV_LEN) {
        CHECK_EQ(espnow_sec_v2_dev_decode(b, len, &d), ESP_OK);
    }
    return d;
}

static espnow_sec_v2_resp_rec_t resp_rec(sim_t *sim, int i)
{
    espnow_sec_v2_resp_rec_t r = {0};
    size_t len = 0;
    const uint8_t *b = sim_record(&sim->nodes[i], "v2_resp", &len);
    CHECK(b != NULL && len == ESPNOW_SEC_V2_RESP_LEN);
    if (b != NULL && len == ESPNOW_SEC_V2_RESP_LEN) {
        CHECK_EQ(espnow_sec_v2_resp_decode(b, len, &r), ESP_OK);
    }
    return r;
}

static bool all_zero(const uint8_t *b, size_t n)
{
    uint8_t acc = 0;
    for (size_t k = 0; k < n; k++) {
        acc |= b[k];
    }
    return acc == 0;
}

/* Provision one responder, then open its re-pair window as a CTRL RESET would (§5.3: RAM only;
 * the C initiator has no RESET call). Returns the k_dev of the first pairing in old_k. */
static sim_t *repair_setup(uint64_t seed, uint8_t old_k[32])
{
    sim_t *sim = net(1, seed);
    provision(sim);
    settle(sim);
    espnow_sec_v2_resp_rec_t r = resp_rec(sim, 1);
    memcpy(old_k, r.k_dev, 32);
    CHECK_MEM(ini_dev(sim).k_dev, old_k, 32);
    espnow_sec_node_t *n = sim->nodes[1].node;
    n->u.v2r.repair_open = true;
    n->u.v2r.repair_until = espnow_sec_now(n) + ESPNOW_SEC_REPAIR_WINDOW_S * 1000u;
    sim->nodes[0].n_events = 0;
    return sim;
}

/* A re-key reaches the device, and it reads the initiator's data under the new epoch. */
static void rekey_reaches(sim_t *sim, uint16_t epoch)
{
    sim->nodes[0].n_events = 0;
    CHECK_EQ(espnow_sec_node_rekey(sim->nodes[0].node), ESP_OK);
    sim_run(sim, 15000, NULL);
    const espnow_sec_event_t *r = sim_find_event(&sim->nodes[0], ESPNOW_SEC_EVENT_REKEY_DONE, 0);
    CHECK(r != NULL && r->data.rekey.epoch == epoch && r->data.rekey.acked == 1 && r->data.rekey.stragglers == 0);
    CHECK_EQ(status(sim, 1).epoch, epoch);
    settle(sim);
    int n = rx_count(sim, 1);
    CHECK_EQ(espnow_sec_node_send(sim->nodes[0].node, NULL, (const uint8_t *)"after", 5), ESP_OK);
    sim_flush(sim);
    CHECK_EQ(rx_count(sim, 1), n + 1);
}

static void test_repair_retries_complete_it(void)
{
    const sim_kind_t lost[2] = {SIM_K_V2_CTRL, SIM_K_V2_CTRL_ACK};
    for (int k = 0; k < 2; k++) {
        uint8_t old_k[32];
        sim_t *sim = repair_setup(11 + k, old_k);
        s_drop_kind = lost[k];
        s_drop_kind_left = 2;
        sim->filter = drop_kind;
        provision(sim);
        CHECK_EQ(s_drop_kind_left, 0);
        const espnow_sec_event_t *d = done_event(sim);
        CHECK(d != NULL && d->data.done.succeeded == 1 && d->data.done.unfinished == 0);
        CHECK_EQ(sim_count_events(&sim->nodes[0], ESPNOW_SEC_EVENT_PEER_SECURED), 1);
        espnow_sec_v2_dev_rec_t dev = ini_dev(sim);
        espnow_sec_v2_resp_rec_t r = resp_rec(sim, 1);
        CHECK(memcmp(r.k_dev, old_k, 32) != 0); /* the new pairing is in use on both sides */
        CHECK_MEM(dev.k_dev, r.k_dev, 32);
        CHECK(all_zero(dev.k_dev_pending, 32));
        CHECK_EQ(dev.state, ESPNOW_SEC_DEV_ACTIVE);
        CHECK_EQ(status(sim, 0).epoch, 1); /* a re-pair is not a rejoin: nobody is re-keyed */
        CHECK_EQ(status(sim, 1).epoch, 1);
        sim->filter = NULL;
        rekey_reaches(sim, 2);
        sim_free(sim);
    }
}

static void test_repair_key_lost(void)
{
    uint8_t old_k[32];
    sim_t *sim = repair_setup(13, old_k);
    s_drop_kind = SIM_K_V2_CTRL;
    s_drop_kind_left = 1000; /* every KEY of the re-pair */
    sim->filter = drop_kind;
    provision(sim);
    s_drop_kind_left = 0;
    sim->filter = NULL;
    const espnow_sec_event_t *d = done_event(sim);
    CHECK(d != NULL && d->data.done.succeeded == 0 && d->data.done.unfinished == 1);
    const espnow_sec_event_t *f = sim_find_event(&sim->nodes[0], ESPNOW_SEC_EVENT_PEER_FAILED, 0);
    CHECK(f != NULL && f->data.peer.reason == ESPNOW_SEC_FAIL_TIMEOUT);
    /* the responder still holds the old pairing, and so does the initiator's record */
    CHECK_MEM(resp_rec(sim, 1).k_dev, old_k, 32);
    espnow_sec_v2_dev_rec_t dev = ini_dev(sim);
    CHECK_MEM(dev.k_dev, old_k, 32);
    CHECK(!all_zero(dev.k_dev_pending, 32) && memcmp(dev.k_dev_pending, old_k, 32) != 0);
    CHECK_EQ(dev.state, ESPNOW_SEC_DEV_ACTIVE);
    /* a later re-key reaches it under the old pairing */
    rekey_reaches(sim, 2);
    /* the next scan after the window closed recognises the old pairing and drops the pending key */
    sim_run(sim, (ESPNOW_SEC_REPAIR_WINDOW_S + 1) * 1000u, NULL);
    sim->nodes[0].n_events = 0;
    provision(sim);
    d = done_event(sim);
    CHECK(d != NULL && d->data.done.succeeded == 1 && d->data.done.unfinished == 0);
    dev = ini_dev(sim);
    CHECK_MEM(dev.k_dev, old_k, 32);
    CHECK(all_zero(dev.k_dev_pending, 32));
    CHECK_EQ(dev.state, ESPNOW_SEC_DEV_ACTIVE);
    CHECK_EQ(status(sim, 1).epoch, 2);
    rekey_reaches(sim, 3);
    sim_free(sim);
}

static void test_repair_ack_lost(void)
{
    uint8_t old_k[32];
    sim_t *sim = repair_setup(14, old_k);
    s_drop_kind = SIM_K_V2_CTRL_ACK;
    s_drop_kind_left = 1000; /* every answer to the re-pair's KEY */
    sim->filter = drop_kind;
    provision(sim);
    s_drop_kind_left = 0;
    sim->filter = NULL;
    const espnow_sec_event_t *d = done_event(sim);
    CHECK(d != NULL && d->data.done.succeeded == 0 && d->data.done.unfinished == 1);
    /* the responder installed the new pairing; the initiator keeps both keys */
    espnow_sec_v2_resp_rec_t r = resp_rec(sim, 1);
    CHECK(memcmp(r.k_dev, old_k, 32) != 0);
    espnow_sec_v2_dev_rec_t dev = ini_dev(sim);
    CHECK_MEM(dev.k_dev, old_k, 32);
    CHECK_MEM(dev.k_dev_pending, r.k_dev, 32);
    CHECK_EQ(dev.state, ESPNOW_SEC_DEV_ACTIVE);
    /* the next scan: pair_id matches the pending key, KEY under it, promoted on the ACK */
    sim->nodes[0].n_events = 0;
    provision(sim);
    d = done_event(sim);
    CHECK(d != NULL && d->data.done.succeeded == 1 && d->data.done.unfinished == 0);
    dev = ini_dev(sim);
    CHECK_MEM(dev.k_dev, r.k_dev, 32);
    CHECK(all_zero(dev.k_dev_pending, 32));
    CHECK_EQ(dev.state, ESPNOW_SEC_DEV_ACTIVE);
    rekey_reaches(sim, 2);
    /* and a remove reaches it: UNPROVISION under the key it holds */
    CHECK_EQ(espnow_sec_node_remove_device(sim->nodes[0].node, sim->nodes[1].mac), ESP_OK);
    sim_run(sim, 15000, NULL);
    CHECK_EQ(sim_count_events(&sim->nodes[1], ESPNOW_SEC_EVENT_UNPROVISIONED), 1);
    const espnow_sec_event_t *rm = sim_find_event(&sim->nodes[0], ESPNOW_SEC_EVENT_DEVICE_REMOVED, 0);
    CHECK(rm != NULL && rm->data.peer.reason == ESPNOW_SEC_FAIL_NONE);
    sim_free(sim);
}

int main(void)
{
    espnow_sec_crypto_init();
    RUN(test_provision_three);
    RUN(test_lost_final_ack);
    RUN(test_lost_hs4);
    RUN(test_wrong_pop);
    RUN(test_replay_and_tamper);
    RUN(test_plaintext_from_member);
    RUN(test_ctrl_without_mac_ignored);
    RUN(test_counter_never_reused);
    RUN(test_rekey_remove_add);
    RUN(test_responder_store_fails);
    RUN(test_repair_retries_complete_it);
    RUN(test_repair_key_lost);
    RUN(test_repair_ack_lost);
    RUN(test_members_secured_at_different_times);
    HARNESS_END();
}
