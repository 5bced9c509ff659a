/*
 * test_handshake.c - initiator and responder cores driven against each other in one
 * process through sim.c's air: fixed randomness, fake clock, scripted loss and tampering.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "keystore.h"
#include "sim.h"

#define POP "espnow_pop"
#define RUN_MS 60000

static sim_t *make(int responders, uint64_t seed)
{
    sim_t *sim = sim_new(1000);
    sim_add(sim, seed);
    for (int i = 0; i < responders; i++) {
        sim_add(sim, seed);
    }
    CHECK_EQ(sim_start(sim, 0, ESPNOW_SEC_ROLE_INITIATOR, POP), ESP_OK);
    for (int i = 1; i <= responders; i++) {
        CHECK_EQ(sim_start(sim, i, ESPNOW_SEC_ROLE_RESPONDER, POP), ESP_OK);
    }
    return sim;
}

static void provision(sim_t *sim, uint32_t scan_ms)
{
    CHECK_EQ(espnow_sec_node_provision(sim->nodes[0].node, scan_ms), ESP_OK);
    sim_run(sim, RUN_MS, sim_provision_done);
    CHECK(sim_provision_done(sim));
}

static const espnow_sec_event_t *done_event(sim_t *sim)
{
    return sim_find_event(&sim->nodes[0], ESPNOW_SEC_EVENT_PROVISION_DONE, 0);
}

static bool peer_event(const sim_node_t *n, espnow_sec_event_id_t id, const uint8_t mac[6],
                       espnow_sec_fail_reason_t reason)
{
    for (int i = 0; i < n->n_events; i++) {
        const espnow_sec_event_t *e = &n->events[i];
        if (e->id == id && memcmp(e->data.peer.mac, mac, 6) == 0 && e->data.peer.reason == reason) {
            return true;
        }
    }
    return false;
}

static void check_all_secured(sim_t *sim, int responders)
{
    sim_node_t *ini = &sim->nodes[0];
    CHECK_EQ(sim_count_events(ini, ESPNOW_SEC_EVENT_SCAN_DONE), 1);
    CHECK_EQ(sim_count_events(ini, ESPNOW_SEC_EVENT_PEER_SECURED), responders);
    CHECK_EQ(sim_count_events(ini, ESPNOW_SEC_EVENT_PEER_FAILED), 0);
    CHECK_EQ(sim_count_events(ini, ESPNOW_SEC_EVENT_PROVISION_DONE), 1);
    const espnow_sec_event_t *d = done_event(sim);
    CHECK(d != NULL);
    if (d != NULL) {
        CHECK_EQ(d->data.done.succeeded, responders);
        CHECK_EQ(d->data.done.unfinished, 0);
    }
    for (int i = 1; i <= responders; i++) {
        sim_node_t *r = &sim->nodes[i];
        CHECK(peer_event(ini, ESPNOW_SEC_EVENT_PEER_SECURED, r->mac, ESPNOW_SEC_FAIL_NONE));
        CHECK_EQ(sim_count_events(r, ESPNOW_SEC_EVENT_PEER_SECURED), 1);
        CHECK(peer_event(r, ESPNOW_SEC_EVENT_PEER_SECURED, ini->mac, ESPNOW_SEC_FAIL_NONE));
        CHECK(espnow_sec_node_is_secured(r->node));
        /* a responder keeps only the PSA data key in RAM, no raw key bytes */
        CHECK(espnow_sec_ct_is_zero(r->node->app_key, 32));
        /* persisted with the provisioner's MAC */
        espnow_sec_key_record_t rec;
        CHECK(r->has_rec);
        CHECK_EQ(espnow_sec_keyrec_decode(r->rec, r->rec_len, &rec), ESP_OK);
        CHECK_MEM(rec.key, ini->node->app_key, 32);
        CHECK_MEM(rec.provisioner, ini->mac, 6);
    }
}

static void exchange_data(sim_t *sim, int responders)
{
    static const uint8_t hello[] = "hello, secured world";
    sim_node_t *ini = &sim->nodes[0];
    int before[SIM_MAX_NODES];
    for (int i = 0; i <= responders; i++) {
        before[i] = sim->nodes[i].n_rx;
    }
    CHECK_EQ(espnow_sec_node_send(ini->node, NULL, hello, sizeof(hello)), ESP_OK);
    sim_flush(sim);
    for (int i = 1; i <= responders; i++) {
        sim_node_t *r = &sim->nodes[i];
        CHECK_EQ(r->n_rx, before[i] + 1);
        if (r->n_rx == before[i] + 1) {
            CHECK_EQ(r->rx[before[i]].len, sizeof(hello));
            CHECK_MEM(r->rx[before[i]].data, hello, sizeof(hello));
            CHECK_EQ(r->rx[before[i]].info.protection, ESPNOW_SEC_RX_ENCRYPTED);
            CHECK(r->rx[before[i]].info.broadcast);
            CHECK_MEM(r->rx[before[i]].info.src, ini->mac, 6);
        }
        uint8_t msg[4] = {'r', 'e', 's', (uint8_t)('0' + i)};
        CHECK_EQ(espnow_sec_node_send(r->node, ini->mac, msg, sizeof(msg)), ESP_OK);
        sim_flush(sim);
        CHECK_EQ(ini->n_rx, before[0] + i);
        if (ini->n_rx == before[0] + i) {
            CHECK_MEM(ini->rx[ini->n_rx - 1].data, msg, 4);
            CHECK_EQ(ini->rx[ini->n_rx - 1].info.protection, ESPNOW_SEC_RX_ENCRYPTED);
            CHECK(!ini->rx[ini->n_rx - 1].info.broadcast);
        }
    }
}

static void test_three_responders_secured_and_talk(void)
{
    sim_t *sim = make(3, 1);
    provision(sim, 1000);
    check_all_secured(sim, 3);
    const espnow_sec_event_t *scan = sim_find_event(&sim->nodes[0], ESPNOW_SEC_EVENT_SCAN_DONE, 0);
    CHECK(scan != NULL && scan->data.scan.found == 3 && scan->data.scan.scan_ms >= 1000);
    const espnow_sec_event_t *d = done_event(sim);
    CHECK(d != NULL && d->data.done.scan_ms == scan->data.scan.scan_ms &&
          d->data.done.spend_ms >= d->data.done.scan_ms);
    /* lossless air: no retransmission, 5 scan requests, Cmd0 sent once to the group */
    espnow_sec_stats_t st;
    espnow_sec_node_get_stats(sim->nodes[0].node, &st);
    CHECK_EQ(st.tx_retransmits, 0);
    CHECK_EQ(st.hs_secured, 3);
    CHECK_EQ(sim->nodes[0].sent[SIM_K_SCAN_REQ], 5);
    CHECK_EQ(sim->nodes[0].sent[SIM_K_CMD0], 1);
    CHECK_EQ(sim->nodes[0].sent[SIM_K_GROUP], 2);
    exchange_data(sim, 3);
    /* nothing more happens afterwards: PROVISION_DONE exactly once */
    sim_run(sim, 20000, NULL);
    CHECK_EQ(sim_count_events(&sim->nodes[0], ESPNOW_SEC_EVENT_PROVISION_DONE), 1);
    CHECK_EQ(sim_count_events(&sim->nodes[0], ESPNOW_SEC_EVENT_PEER_FAILED), 0);
    sim_free(sim);
}

static void test_single_responder_unicast_cmd0(void)
{
    sim_t *sim = make(1, 2);
    provision(sim, 500);
    check_all_secured(sim, 1);
    CHECK_EQ(sim->nodes[0].sent[SIM_K_GROUP], 0); /* one responder: no group needed */
    exchange_data(sim, 1);
    sim_free(sim);
}

/* ---- scripted loss ---- */

typedef struct {
    sim_kind_t kind;
    int skip;     /* let this many through first */
    int drop;     /* then drop this many */
    int seen;
    int dropped;
} drop_script_t;

static bool drop_filter(sim_t *sim, int from, const uint8_t dst[6], uint8_t *data, size_t *len,
                        sim_kind_t kind, void *ctx)
{
    (void)sim; (void)from; (void)dst; (void)data; (void)len;
    drop_script_t *d = ctx;
    if (kind != d->kind) {
        return true;
    }
    d->seen++;
    if (d->seen > d->skip && d->dropped < d->drop) {
        d->dropped++;
        return false;
    }
    return true;
}

static void lossy_run(sim_kind_t kind, int drop, bool expect_retransmit)
{
    sim_t *sim = make(3, 10 + (uint64_t)kind);
    drop_script_t d = {.kind = kind, .drop = drop};
    sim->filter = drop_filter;
    sim->filter_ctx = &d;
    provision(sim, 1000);
    CHECK_EQ(d.dropped, drop);
    check_all_secured(sim, 3);
    espnow_sec_stats_t st;
    espnow_sec_node_get_stats(sim->nodes[0].node, &st);
    if (expect_retransmit) {
        CHECK(st.tx_retransmits > 0);
    }
    exchange_data(sim, 3);
    sim_free(sim);
}

static void test_loss_info(void) { lossy_run(SIM_K_INFO, 3, false); }      /* later scan requests recover */
static void test_loss_group_join(void) { lossy_run(SIM_K_GROUP, 1, true); } /* Cmd0 retried unicast */
static void test_loss_cmd0(void) { lossy_run(SIM_K_CMD0, 1, true); }
static void test_loss_resp0(void) { lossy_run(SIM_K_RESP0, 2, true); }
static void test_loss_cmd1(void) { lossy_run(SIM_K_CMD1, 2, true); }
static void test_loss_resp1(void) { lossy_run(SIM_K_RESP1, 2, true); }
static void test_loss_key(void) { lossy_run(SIM_K_KEY, 2, true); }
static void test_loss_key_resp(void) { lossy_run(SIM_K_KEY_RESP, 2, true); }
static void test_loss_repeated(void) { lossy_run(SIM_K_RESP1, 4, true); } /* several retries, backoff */

static void test_key_delivered_twice_answered_twice(void)
{
    sim_t *sim = make(1, 20);
    drop_script_t d = {.kind = SIM_K_KEY_RESP, .drop = 1};
    sim->filter = drop_filter;
    sim->filter_ctx = &d;
    provision(sim, 500);
    check_all_secured(sim, 1);
    sim_node_t *r = &sim->nodes[1];
    CHECK_EQ(sim->nodes[0].sent[SIM_K_KEY], 2);   /* the same KEY bytes, resent */
    CHECK_EQ(r->sent[SIM_K_KEY_RESP], 2);         /* answered again, not silent */
    CHECK_EQ(r->saves, 1);                        /* stored once */
    CHECK_EQ(sim_count_events(r, ESPNOW_SEC_EVENT_PEER_SECURED), 1);
    sim_free(sim);
}

/* Retransmissions resend the same record: the CTR stream is not advanced again. */
typedef struct {
    uint8_t first[250];
    size_t first_len;
    int matches;
    int count;
} key_capture_t;

static void key_tap(sim_t *sim, int from, const uint8_t *data, size_t len, void *ctx)
{
    (void)sim;
    key_capture_t *c = ctx;
    if (from != 0 || sim_classify(data, len) != SIM_K_KEY) {
        return;
    }
    if (c->count++ == 0) {
        memcpy(c->first, data, len);
        c->first_len = len;
    } else if (len == c->first_len && memcmp(data + 20, c->first + 20, len - 20) == 0 &&
               memcmp(data + 2, c->first + 2, 2) != 0) {
        c->matches++; /* same payload, fresh magic */
    }
}

static void test_retransmission_resends_same_bytes(void)
{
    sim_t *sim = make(1, 21);
    drop_script_t d = {.kind = SIM_K_KEY_RESP, .drop = 2};
    key_capture_t cap = {0};
    sim->filter = drop_filter;
    sim->filter_ctx = &d;
    sim->tap = key_tap;
    sim->tap_ctx = &cap;
    provision(sim, 500);
    check_all_secured(sim, 1);
    CHECK_EQ(cap.count, 3);
    CHECK_EQ(cap.matches, 2);
    sim_free(sim);
}

/* ---- failures ---- */

static void test_wrong_pop(void)
{
    sim_t *sim = sim_new(1000);
    for (int i = 0; i < 4; i++) {
        sim_add(sim, 30);
    }
    CHECK_EQ(sim_start(sim, 0, ESPNOW_SEC_ROLE_INITIATOR, POP), ESP_OK);
    CHECK_EQ(sim_start(sim, 1, ESPNOW_SEC_ROLE_RESPONDER, POP), ESP_OK);
    CHECK_EQ(sim_start(sim, 2, ESPNOW_SEC_ROLE_RESPONDER, "not the pop"), ESP_OK);
    CHECK_EQ(sim_start(sim, 3, ESPNOW_SEC_ROLE_RESPONDER, POP), ESP_OK);
    provision(sim, 1000);
    sim_node_t *ini = &sim->nodes[0], *bad = &sim->nodes[2];
    /* one report per attempt: the first and each fresh Cmd0 after an unanswered Cmd1 */
    CHECK_EQ(sim_count_events(bad, ESPNOW_SEC_EVENT_PEER_FAILED), 1 + ESPNOW_SEC_INI_RESTARTS);
    CHECK_EQ(ini->sent[SIM_K_CMD0], 1 + ESPNOW_SEC_INI_RESTARTS);
    CHECK(peer_event(bad, ESPNOW_SEC_EVENT_PEER_FAILED, ini->mac, ESPNOW_SEC_FAIL_POP_MISMATCH));
    CHECK_EQ(sim_count_events(bad, ESPNOW_SEC_EVENT_PEER_SECURED), 0);
    CHECK(!bad->has_rec);
    CHECK(!espnow_sec_node_is_secured(bad->node));
    CHECK_EQ(bad->sent[SIM_K_RESP1], 0); /* says nothing to a wrong verifier */
    CHECK(peer_event(ini, ESPNOW_SEC_EVENT_PEER_FAILED, bad->mac, ESPNOW_SEC_FAIL_NO_RESP1));
    CHECK(!peer_event(ini, ESPNOW_SEC_EVENT_PEER_SECURED, bad->mac, ESPNOW_SEC_FAIL_NONE));
    const espnow_sec_event_t *d = done_event(sim);
    CHECK(d != NULL && d->data.done.succeeded == 2 && d->data.done.unfinished == 1);
    CHECK_EQ(sim_count_events(ini, ESPNOW_SEC_EVENT_PROVISION_DONE), 1);
    /* the others are fine */
    CHECK(espnow_sec_node_is_secured(sim->nodes[1].node));
    CHECK(espnow_sec_node_is_secured(sim->nodes[3].node));
    sim_free(sim);
}

static bool tamper_key_resp(sim_t *sim, int from, const uint8_t dst[6], uint8_t *data, size_t *len,
                            sim_kind_t kind, void *ctx)
{
    (void)sim; (void)dst; (void)ctx;
    if (kind == SIM_K_KEY_RESP && from == 1) {
        data[*len - 1] ^= 0x01; /* a wrong echo */
    }
    return true;
}

static void test_key_resp_wrong_echo(void)
{
    sim_t *sim = make(2, 40);
    sim->filter = tamper_key_resp;
    provision(sim, 500);
    sim_node_t *ini = &sim->nodes[0];
    CHECK(peer_event(ini, ESPNOW_SEC_EVENT_PEER_FAILED, sim->nodes[1].mac, ESPNOW_SEC_FAIL_KEY_ECHO));
    CHECK(!peer_event(ini, ESPNOW_SEC_EVENT_PEER_SECURED, sim->nodes[1].mac, ESPNOW_SEC_FAIL_NONE));
    CHECK(peer_event(ini, ESPNOW_SEC_EVENT_PEER_SECURED, sim->nodes[2].mac, ESPNOW_SEC_FAIL_NONE));
    const espnow_sec_event_t *d = done_event(sim);
    CHECK(d != NULL && d->data.done.succeeded == 1 && d->data.done.unfinished == 1);
    sim_free(sim);
}

static void test_store_failure_sends_no_key_resp(void)
{
    sim_t *sim = make(1, 50);
    sim->nodes[1].fail_save = true;
    provision(sim, 500);
    sim_node_t *r = &sim->nodes[1];
    CHECK(peer_event(r, ESPNOW_SEC_EVENT_PEER_FAILED, sim->nodes[0].mac, ESPNOW_SEC_FAIL_STORE));
    CHECK_EQ(r->sent[SIM_K_KEY_RESP], 0);
    CHECK(!espnow_sec_node_is_secured(r->node));
    CHECK(peer_event(&sim->nodes[0], ESPNOW_SEC_EVENT_PEER_FAILED, r->mac, ESPNOW_SEC_FAIL_TIMEOUT));
    const espnow_sec_event_t *d = done_event(sim);
    CHECK(d != NULL && d->data.done.succeeded == 0 && d->data.done.unfinished == 1);
    sim_free(sim);
}

static void test_no_responder(void)
{
    sim_t *sim = make(0, 60);
    provision(sim, 800);
    const espnow_sec_event_t *scan = sim_find_event(&sim->nodes[0], ESPNOW_SEC_EVENT_SCAN_DONE, 0);
    CHECK(scan != NULL && scan->data.scan.found == 0);
    const espnow_sec_event_t *d = done_event(sim);
    CHECK(d != NULL && d->data.done.succeeded == 0 && d->data.done.unfinished == 0);
    /* a second run may start right away; a run in progress refuses another */
    CHECK_EQ(espnow_sec_node_provision(sim->nodes[0].node, 100), ESP_OK);
    CHECK_EQ(espnow_sec_node_provision(sim->nodes[0].node, 100), ESP_ERR_INVALID_STATE);
    CHECK_EQ(espnow_sec_node_erase_key(sim->nodes[0].node), ESP_ERR_INVALID_STATE);
    sim_free(sim);
}

static void test_second_run_skips_own_responders(void)
{
    sim_t *sim = make(2, 70);
    provision(sim, 500);
    check_all_secured(sim, 2);
    sim_node_t *ini = &sim->nodes[0];
    ini->n_events = 0;
    provision(sim, 500);
    const espnow_sec_event_t *scan = sim_find_event(ini, ESPNOW_SEC_EVENT_SCAN_DONE, 0);
    CHECK(scan != NULL && scan->data.scan.found == 0); /* INFO: configured by us */
    const espnow_sec_event_t *d = done_event(sim);
    CHECK(d != NULL && d->data.done.succeeded == 0 && d->data.done.unfinished == 0);
    sim_free(sim);
}

static void test_reboot_keeps_key(void)
{
    sim_t *sim = make(1, 80);
    provision(sim, 500);
    check_all_secured(sim, 1);
    uint8_t key[32];
    memcpy(key, sim->nodes[0].node->app_key, 32);
    /* both restart from their stores */
    for (int i = 0; i < 2; i++) {
        espnow_sec_node_deinit(sim->nodes[i].node);
        CHECK_EQ(sim_start(sim, i, i == 0 ? ESPNOW_SEC_ROLE_INITIATOR : ESPNOW_SEC_ROLE_RESPONDER, POP), ESP_OK);
        CHECK(espnow_sec_node_is_secured(sim->nodes[i].node));
        espnow_sec_key_record_t rec;
        CHECK_EQ(espnow_sec_keyrec_decode(sim->nodes[i].rec, sim->nodes[i].rec_len, &rec), ESP_OK);
        CHECK_MEM(rec.key, key, 32);
    }
    CHECK_MEM(sim->nodes[0].node->app_key, key, 32);
    CHECK_MEM(sim->nodes[1].node->provisioner, sim->nodes[0].mac, 6);
    exchange_data(sim, 1);
    sim_free(sim);
}

static void test_corrupt_store_refused_and_untouched(void)
{
    sim_t *sim = make(1, 90);
    provision(sim, 500);
    sim_node_t *r = &sim->nodes[1];
    espnow_sec_node_deinit(r->node);
    r->rec[10] ^= 0xFF;
    uint8_t copy[128];
    size_t len = r->rec_len;
    memcpy(copy, r->rec, len);
    CHECK_EQ(sim_start(sim, 1, ESPNOW_SEC_ROLE_RESPONDER, POP), ESP_ERR_ESPNOW_SEC_STORE_CORRUPT);
    CHECK(r->has_rec);
    CHECK_EQ(r->rec_len, len);
    CHECK_MEM(r->rec, copy, len);
    /* a record of the wrong length too */
    r->rec_len = 43;
    CHECK_EQ(sim_start(sim, 1, ESPNOW_SEC_ROLE_RESPONDER, POP), ESP_ERR_ESPNOW_SEC_STORE_CORRUPT);
    /* erased: starts clean, can be provisioned again */
    r->has_rec = false;
    CHECK_EQ(sim_start(sim, 1, ESPNOW_SEC_ROLE_RESPONDER, POP), ESP_OK);
    CHECK(!espnow_sec_node_is_secured(r->node));
    sim_free(sim);
}

static void test_erase_key_then_reprovision(void)
{
    sim_t *sim = make(1, 95);
    provision(sim, 500);
    sim_node_t *r = &sim->nodes[1];
    CHECK_EQ(espnow_sec_node_erase_key(r->node), ESP_OK);
    CHECK(!r->has_rec);
    CHECK(!espnow_sec_node_is_secured(r->node));
    sim->nodes[0].n_events = 0;
    r->n_events = 0;
    provision(sim, 500);
    check_all_secured(sim, 1);
    sim_free(sim);
}

/* A stranger's Cmd0 does not lock the responder to it (upstream §6.1 item 10). */
static void test_stranger_cmd0_does_not_lock_out(void)
{
    sim_t *sim = make(1, 100);
    uint8_t stranger[6] = {0x0A, 0xBB, 0xCC, 0xDD, 0xEE, 0x01};
    espnow_sec_sec1_t m = {.msg = ESPNOW_SEC_SEC1_CMD0};
    uint8_t priv[32];
    memset(priv, 0x77, 32);
    CHECK_EQ(espnow_sec_crypto_x25519_public(priv, m.pub), ESP_OK);
    uint8_t msg[64], frame[250];
    size_t mlen = 0;
    CHECK_EQ(espnow_sec_compat_build(&m, msg, sizeof(msg), &mlen), ESP_OK);
    espnow_sec_hdr_t h = {.type = ESPNOW_SEC_T_SECURITY, .version = 2, .size = (uint8_t)(mlen + 2), .magic = 7};
    memcpy(h.dest, sim->nodes[1].mac, 6);
    memcpy(h.src, stranger, 6);
    espnow_sec_hdr_encode(&h, frame);
    frame[20] = ESPNOW_SEC_R_HANDSHAKE;
    frame[21] = (uint8_t)mlen;
    memcpy(&frame[22], msg, mlen);
    sim_inject(sim, 1, stranger, frame, 22 + mlen);
    CHECK_EQ(sim->nodes[1].sent[SIM_K_RESP0], 1);
    provision(sim, 500);
    check_all_secured(sim, 1);
    sim_free(sim);
}

/* All-zero client key: refused, BAD_KEY, no answer. */
static void test_zero_client_key_rejected(void)
{
    sim_t *sim = make(1, 110);
    uint8_t src[6] = {0x0A, 1, 2, 3, 4, 5};
    espnow_sec_sec1_t m = {.msg = ESPNOW_SEC_SEC1_CMD0}; /* pub all zero */
    uint8_t msg[64], frame[250];
    size_t mlen = 0;
    CHECK_EQ(espnow_sec_compat_build(&m, msg, sizeof(msg), &mlen), ESP_OK);
    espnow_sec_hdr_t h = {.type = ESPNOW_SEC_T_SECURITY, .version = 2, .size = (uint8_t)(mlen + 2), .magic = 9};
    memset(h.dest, 0xff, 6);
    memcpy(h.src, src, 6);
    espnow_sec_hdr_encode(&h, frame);
    frame[20] = ESPNOW_SEC_R_HANDSHAKE;
    frame[21] = (uint8_t)mlen;
    memcpy(&frame[22], msg, mlen);
    sim_inject(sim, 1, src, frame, 22 + mlen);
    CHECK(peer_event(&sim->nodes[1], ESPNOW_SEC_EVENT_PEER_FAILED, src, ESPNOW_SEC_FAIL_BAD_KEY));
    CHECK_EQ(sim->nodes[1].sent[SIM_K_RESP0], 0);
    sim_free(sim);
}

/* More responders than concurrent handshakes: waves, each with its own client key. */
static void test_more_responders_than_sessions(void)
{
    int n = ESPNOW_SEC_MAX_HANDSHAKES + 4;
    if (n > ESPNOW_SEC_MAX_RESPONDERS) {
        n = ESPNOW_SEC_MAX_RESPONDERS;
    }
    if (n > SIM_MAX_KEYED_NODES - 1) { /* PSA key slots: see sim.h */
        n = SIM_MAX_KEYED_NODES - 1;
    }
    sim_t *sim = make(n, 120);
    provision(sim, 1000);
    check_all_secured(sim, n);
    CHECK(sim->nodes[0].sent[SIM_K_CMD0] >= 2);
    sim_free(sim);
}

/*
 * More responders than the scan table: the excess is counted, not stored, and never gets a
 * handshake. Only the first SIM_MAX_KEYED_NODES - 1 responders know the PoP (sim.h: the
 * process has PSA key slots for that many keyed nodes); the others fail at Cmd1 and stay
 * unkeyed, so the table is still filled and every entry still runs a handshake.
 */
static void test_scan_table_bound(void)
{
    int n = ESPNOW_SEC_MAX_RESPONDERS + 5;
    if (n > SIM_MAX_NODES - 1) {
        n = SIM_MAX_NODES - 1;
    }
    const int good = SIM_MAX_KEYED_NODES - 1; /* responders 1..good share the PoP */
    sim_t *sim = sim_new(1000);
    for (int i = 0; i <= n; i++) {
        sim_add(sim, 130);
    }
    CHECK_EQ(sim_start(sim, 0, ESPNOW_SEC_ROLE_INITIATOR, POP), ESP_OK);
    for (int i = 1; i <= n; i++) {
        CHECK_EQ(sim_start(sim, i, ESPNOW_SEC_ROLE_RESPONDER, i <= good ? POP : "not the pop"), ESP_OK);
    }
    provision(sim, 1000);
    sim_node_t *ini = &sim->nodes[0];
    espnow_sec_stats_t st;
    espnow_sec_node_get_stats(ini->node, &st);
    const espnow_sec_event_t *scan = sim_find_event(ini, ESPNOW_SEC_EVENT_SCAN_DONE, 0);
    CHECK(scan != NULL && scan->data.scan.found == ESPNOW_SEC_MAX_RESPONDERS);
    CHECK(st.scan_overflow >= (uint32_t)(n - ESPNOW_SEC_MAX_RESPONDERS));
    int listed = 0, expect_ok = 0, keyed = 1;
    for (int i = 1; i <= n; i++) {
        sim_node_t *r = &sim->nodes[i];
        bool in_table = false;
        for (uint32_t p = 0; p < ini->node->u.ini.n_peers; p++) {
            in_table |= espnow_sec_mac_eq(ini->node->u.ini.peers[p].mac, r->mac);
        }
        listed += in_table;
        keyed += espnow_sec_node_is_secured(r->node);
        if (!in_table) {
            CHECK_EQ(r->sent[SIM_K_RESP0], 0); /* never handshaken */
            CHECK(!espnow_sec_node_is_secured(r->node));
        } else if (i <= good) {
            expect_ok++;
            CHECK(espnow_sec_node_is_secured(r->node));
        } else {
            CHECK(peer_event(r, ESPNOW_SEC_EVENT_PEER_FAILED, ini->mac, ESPNOW_SEC_FAIL_POP_MISMATCH));
            CHECK(!espnow_sec_node_is_secured(r->node));
        }
    }
    CHECK_EQ(listed, ESPNOW_SEC_MAX_RESPONDERS);
    CHECK(keyed <= SIM_MAX_KEYED_NODES);
    const espnow_sec_event_t *d = done_event(sim);
    CHECK(d != NULL && (int)d->data.done.succeeded == expect_ok);
    CHECK(d != NULL && (int)d->data.done.unfinished == ESPNOW_SEC_MAX_RESPONDERS - expect_ok);
    sim_free(sim);
}

/* A responder that never answers a handshake: every message retried RETRY_MAX times with
 * exponential backoff, then TIMEOUT. */
static bool drop_resp0_all(sim_t *sim, int from, const uint8_t dst[6], uint8_t *data, size_t *len,
                           sim_kind_t kind, void *ctx)
{
    (void)sim; (void)from; (void)dst; (void)data; (void)len; (void)ctx;
    return kind != SIM_K_RESP0;
}

static void test_timeout_after_retries(void)
{
    sim_t *sim = make(1, 140);
    sim->filter = drop_resp0_all;
    uint32_t t0 = sim->now;
    provision(sim, 500);
    sim_node_t *ini = &sim->nodes[0];
    CHECK_EQ(ini->sent[SIM_K_CMD0], 1 + ESPNOW_SEC_RETRY_MAX);
    CHECK(peer_event(ini, ESPNOW_SEC_EVENT_PEER_FAILED, sim->nodes[1].mac, ESPNOW_SEC_FAIL_TIMEOUT));
    uint32_t expect = 0, t = ESPNOW_SEC_RETRY_BASE_MS;
    for (int i = 0; i <= ESPNOW_SEC_RETRY_MAX; i++) {
        expect += t;
        t = t * 2 > ESPNOW_SEC_RETRY_CAP_MS ? ESPNOW_SEC_RETRY_CAP_MS : t * 2;
    }
    const espnow_sec_event_t *d = done_event(sim);
    CHECK(d != NULL && d->data.done.unfinished == 1);
    CHECK(d != NULL && d->data.done.spend_ms == d->data.done.scan_ms + expect);
    CHECK_EQ(sim->now - t0, d->data.done.spend_ms);
    sim_free(sim);
}

/* ---- hostile air: forged and flooding handshake frames (adversarial review D1, D2, D4, D8) ---- */

/* A SECURITY frame carrying one record {rtype, len, data}, unicast from `src` to `dest`. */
static size_t sec_frame(uint8_t frame[250], const uint8_t src[6], const uint8_t dest[6], uint8_t rtype,
                        const uint8_t *data, size_t len)
{
    static uint16_t magic = 0x5000;
    espnow_sec_hdr_t h = {.type = ESPNOW_SEC_T_SECURITY, .version = 2, .size = (uint8_t)(len + 2), .magic = magic++};
    memcpy(h.dest, dest, 6);
    memcpy(h.src, src, 6);
    espnow_sec_hdr_encode(&h, frame);
    frame[20] = rtype;
    frame[21] = (uint8_t)len;
    memcpy(&frame[22], data, len);
    return 22 + len;
}

/* A security1 message `m` from `src` to node `to`, delivered at once. */
static void inject_sec1(sim_t *sim, int to, const uint8_t src[6], const espnow_sec_sec1_t *m)
{
    uint8_t msg[64], frame[250];
    size_t mlen = 0;
    CHECK_EQ(espnow_sec_compat_build(m, msg, sizeof(msg), &mlen), ESP_OK);
    size_t n = sec_frame(frame, src, sim->nodes[to].mac, ESPNOW_SEC_R_HANDSHAKE, msg, mlen);
    sim_inject(sim, to, src, frame, n);
}

/* A stranger's Cmd0 with a fresh random client key, from made-up MAC number `i`. */
static void inject_stranger_cmd0(sim_t *sim, int to, int i)
{
    uint8_t src[6] = {0x02, 0x77, 0, 0, (uint8_t)(i >> 8), (uint8_t)i};
    uint8_t priv[32];
    memset(priv, 0x40 + (i & 0x3f), sizeof(priv));
    priv[1] = (uint8_t)i;
    espnow_sec_sec1_t m = {.msg = ESPNOW_SEC_SEC1_CMD0};
    CHECK_EQ(espnow_sec_crypto_x25519_public(priv, m.pub), ESP_OK);
    inject_sec1(sim, to, src, &m);
}

typedef struct {
    sim_kind_t at;   /* before the first frame of this kind is delivered ... */
    int from;        /* ... sent by this node ... */
    int strangers;   /* ... this many strangers' Cmd0s reach node 1 (the responder) */
    bool forge;      /* ... or a forged copy of that message (random content) goes first */
    int fired;
} hostile_t;

static bool hostile_filter(sim_t *sim, int from, const uint8_t dst[6], uint8_t *data, size_t *len,
                           sim_kind_t kind, void *ctx)
{
    (void)dst; (void)data; (void)len;
    hostile_t *h = ctx;
    if (kind != h->at || from != h->from || h->fired++ != 0) {
        return true;
    }
    for (int i = 0; i < h->strangers; i++) {
        inject_stranger_cmd0(sim, 1, i);
    }
    if (h->forge) {
        int to = from == 0 ? 1 : 0;
        const uint8_t *spoof = sim->nodes[from].mac;
        uint8_t rnd[32];
        for (int i = 0; i < 32; i++) {
            rnd[i] = (uint8_t)(0x5a ^ (i * 37));
        }
        espnow_sec_sec1_t m = {0};
        switch (kind) {
        case SIM_K_RESP0:
            m.msg = ESPNOW_SEC_SEC1_RESP0;
            CHECK_EQ(espnow_sec_crypto_x25519_public(rnd, m.pub), ESP_OK); /* a valid, foreign key */
            memcpy(m.random, rnd, sizeof(m.random));
            inject_sec1(sim, to, spoof, &m);
            break;
        case SIM_K_CMD1:
        case SIM_K_RESP1:
            m.msg = kind == SIM_K_CMD1 ? ESPNOW_SEC_SEC1_CMD1 : ESPNOW_SEC_SEC1_RESP1;
            memcpy(m.verify, rnd, sizeof(m.verify));
            inject_sec1(sim, to, spoof, &m);
            break;
        case SIM_K_KEY_RESP: {
            uint8_t frame[250];
            size_t n = sec_frame(frame, spoof, sim->nodes[to].mac, ESPNOW_SEC_R_KEY_RESP, rnd, 32);
            sim_inject(sim, to, spoof, frame, n);
            break;
        }
        default:
            break;
        }
    }
    return true;
}

static espnow_sec_stats_t stats_of(sim_t *sim, int i)
{
    espnow_sec_stats_t st;
    espnow_sec_node_get_stats(sim->nodes[i].node, &st);
    return st;
}

/* D1: strangers' Cmd0s from other MACs between our Resp0 and the real Cmd1 do not evict the
 * real initiator's half-open handshake (up to the half-open table's size). */
static void test_stranger_cmd0s_do_not_evict_the_real_handshake(void)
{
    sim_t *sim = make(1, 200);
    hostile_t h = {.at = SIM_K_RESP0, .from = 1, .strangers = ESPNOW_SEC_RESPONDER_PENDING - 1};
    sim->filter = hostile_filter;
    sim->filter_ctx = &h;
    provision(sim, 500);
    check_all_secured(sim, 1);
    CHECK_EQ(sim->nodes[0].sent[SIM_K_CMD0], 1);
    CHECK_EQ(sim->nodes[0].sent[SIM_K_CMD1], 1); /* answered at once */
    CHECK_EQ(stats_of(sim, 1).hs_evicted, 0);
    exchange_data(sim, 1);
    sim_free(sim);
}

/* D1: a flood larger than the half-open table does push the real handshake out; the
 * initiator then restarts it with a fresh Cmd0 instead of resending Cmd1 until NO_RESP1. */
static void test_flood_beyond_the_table_is_recovered_by_a_fresh_cmd0(void)
{
    sim_t *sim = make(1, 201);
    hostile_t h = {.at = SIM_K_RESP0, .from = 1, .strangers = ESPNOW_SEC_RESPONDER_PENDING + 3};
    sim->filter = hostile_filter;
    sim->filter_ctx = &h;
    provision(sim, 500);
    check_all_secured(sim, 1);
    CHECK_EQ(sim->nodes[0].sent[SIM_K_CMD0], 2);
    CHECK_EQ(sim->nodes[0].sent[SIM_K_CMD1], 1 + ESPNOW_SEC_INI_CMD1_TRIES + 1);
    /* PENDING + 3 strangers and our first Cmd0 in PENDING entries: 4 evicted; our fresh Cmd0
     * then finds the table full of strangers: one more */
    CHECK_EQ(stats_of(sim, 1).hs_evicted, 5);
    sim_free(sim);
}

/* D1: a proven handshake (Cmd1 verified, KEY lost) survives any number of strangers' Cmd0s. */
static void test_proven_handshake_is_never_evicted(void)
{
    sim_t *sim = make(1, 202);
    drop_script_t d = {.kind = SIM_K_KEY, .drop = 1};
    sim->filter = drop_filter;
    sim->filter_ctx = &d;
    CHECK_EQ(espnow_sec_node_provision(sim->nodes[0].node, 500), ESP_OK);
    for (int i = 0; i < 2000 && d.dropped == 0; i++) {
        sim_run(sim, 1, NULL);
    }
    CHECK_EQ(d.dropped, 1); /* the responder waits for KEY now */
    for (int i = 0; i < 4 * (ESPNOW_SEC_RESPONDER_PENDING + ESPNOW_SEC_RESPONDER_SESSIONS); i++) {
        inject_stranger_cmd0(sim, 1, i);
    }
    sim_run(sim, RUN_MS, sim_provision_done);
    check_all_secured(sim, 1);
    CHECK_EQ(sim->nodes[0].sent[SIM_K_CMD0], 1); /* the KEY retry was enough */
    CHECK(stats_of(sim, 1).hs_evicted > 0);
    sim_free(sim);
}

/* D2: a forged Cmd1 under the initiator's MAC before the real one: counted and reported, the
 * handshake goes on and the real Cmd1 is answered. */
static void test_forged_cmd1_does_not_end_the_handshake(void)
{
    sim_t *sim = make(1, 210);
    hostile_t h = {.at = SIM_K_CMD1, .from = 0, .forge = true};
    sim->filter = hostile_filter;
    sim->filter_ctx = &h;
    provision(sim, 500);
    check_all_secured(sim, 1);
    sim_node_t *r = &sim->nodes[1];
    CHECK_EQ(stats_of(sim, 1).hs_auth_fail, 1);
    CHECK(peer_event(r, ESPNOW_SEC_EVENT_PEER_FAILED, sim->nodes[0].mac, ESPNOW_SEC_FAIL_POP_MISMATCH));
    CHECK_EQ(sim->nodes[0].sent[SIM_K_CMD1], 1);
    CHECK_EQ(r->sent[SIM_K_RESP1], 1);
    exchange_data(sim, 1);
    sim_free(sim);
}

/* D2: forged Resp1 / KEY_RESP under the responder's MAC before the real one: ignored and
 * counted; the CTR stream is untouched, so the real answer still verifies. */
static void forged_answer_run(sim_kind_t kind, uint64_t seed, int cmd0s)
{
    sim_t *sim = make(1, seed);
    hostile_t h = {.at = kind, .from = 1, .forge = true};
    sim->filter = hostile_filter;
    sim->filter_ctx = &h;
    provision(sim, 500);
    CHECK_EQ(h.fired, kind == SIM_K_RESP0 ? 2 : 1);
    check_all_secured(sim, 1);
    CHECK_EQ(sim->nodes[0].sent[SIM_K_CMD0], cmd0s);
    exchange_data(sim, 1);
    sim_free(sim);
}

static void test_forged_resp1_is_ignored(void)
{
    forged_answer_run(SIM_K_RESP1, 211, 1);
}

static void test_forged_key_resp_is_ignored(void)
{
    forged_answer_run(SIM_K_KEY_RESP, 212, 1);
}

/* A forged Resp0 that arrives first is taken (compat cannot tell); the Cmd1 made from it goes
 * unanswered and the fresh Cmd0 recovers. The later real Resp0 of that attempt is ignored. */
static void test_forged_resp0_first_is_recovered(void)
{
    forged_answer_run(SIM_K_RESP0, 213, 2);
}

/* The final reason still names a wrong answer when nothing better came (KEY_ECHO above) and a
 * failed check is counted as such. */
static void test_failed_checks_are_counted(void)
{
    sim_t *sim = make(1, 214);
    hostile_t h = {.at = SIM_K_RESP1, .from = 1, .forge = true};
    sim->filter = hostile_filter;
    sim->filter_ctx = &h;
    provision(sim, 500);
    CHECK_EQ(stats_of(sim, 0).hs_auth_fail, 1);
    CHECK_EQ(stats_of(sim, 0).hs_failed, 0);
    sim_free(sim);
}

/* D4: the initiator lost its store and generated a new key: responders that name it as their
 * provisioner are provisioned again (once per boot), and then talk under the new key. */
static void test_initiator_with_a_new_key_reprovisions_its_responders(void)
{
    sim_t *sim = make(2, 220);
    provision(sim, 500);
    check_all_secured(sim, 2);
    sim_node_t *ini = &sim->nodes[0];
    uint8_t old_key[32];
    memcpy(old_key, ini->node->app_key, 32);
    espnow_sec_node_deinit(ini->node);
    ini->has_rec = false; /* the store is gone */
    CHECK_EQ(sim_start(sim, 0, ESPNOW_SEC_ROLE_INITIATOR, POP), ESP_OK);
    CHECK(memcmp(ini->node->app_key, old_key, 32) != 0);
    for (int i = 0; i <= 2; i++) {
        sim->nodes[i].n_events = 0;
    }
    provision(sim, 500);
    const espnow_sec_event_t *scan = sim_find_event(ini, ESPNOW_SEC_EVENT_SCAN_DONE, 0);
    CHECK(scan != NULL && scan->data.scan.found == 2);
    check_all_secured(sim, 2); /* records hold the new key */
    exchange_data(sim, 2);
    /* a second run of the same boot skips them again */
    ini->n_events = 0;
    provision(sim, 500);
    scan = sim_find_event(ini, ESPNOW_SEC_EVENT_SCAN_DONE, 0);
    CHECK(scan != NULL && scan->data.scan.found == 0);
    /* and so does the next boot, which loads the key from the store */
    espnow_sec_node_deinit(ini->node);
    CHECK_EQ(sim_start(sim, 0, ESPNOW_SEC_ROLE_INITIATOR, POP), ESP_OK);
    ini->n_events = 0;
    provision(sim, 500);
    scan = sim_find_event(ini, ESPNOW_SEC_EVENT_SCAN_DONE, 0);
    CHECK(scan != NULL && scan->data.scan.found == 0);
    sim_free(sim);
}

/* D8: an INFO whose sender is the broadcast address is refused and counted. */
static void test_info_from_broadcast_sender_is_refused(void)
{
    sim_t *sim = make(0, 230);
    sim_node_t *ini = &sim->nodes[0];
    CHECK_EQ(espnow_sec_node_provision(ini->node, 500), ESP_OK);
    uint8_t frame[250];
    uint8_t info[8] = {ESPNOW_SEC_R_INFO, 0};
    espnow_sec_hdr_t h = {.type = ESPNOW_SEC_T_SECURITY_STATUS, .version = 2, .size = sizeof(info), .magic = 3};
    memcpy(h.dest, ini->mac, 6);
    memset(h.src, 0xff, 6);
    espnow_sec_hdr_encode(&h, frame);
    memcpy(&frame[20], info, sizeof(info));
    espnow_sec_stats_t before = stats_of(sim, 0);
    sim_inject(sim, 0, h.src, frame, 20 + sizeof(info));
    CHECK_EQ(stats_of(sim, 0).rx_malformed, before.rx_malformed + 1);
    sim_run(sim, RUN_MS, sim_provision_done);
    const espnow_sec_event_t *scan = sim_find_event(ini, ESPNOW_SEC_EVENT_SCAN_DONE, 0);
    CHECK(scan != NULL && scan->data.scan.found == 0);
    sim_free(sim);
}

int main(void)
{
    RUN(test_three_responders_secured_and_talk);
    RUN(test_single_responder_unicast_cmd0);
    RUN(test_loss_info);
    RUN(test_loss_group_join);
    RUN(test_loss_cmd0);
    RUN(test_loss_resp0);
    RUN(test_loss_cmd1);
    RUN(test_loss_resp1);
    RUN(test_loss_key);
    RUN(test_loss_key_resp);
    RUN(test_loss_repeated);
    RUN(test_key_delivered_twice_answered_twice);
    RUN(test_retransmission_resends_same_bytes);
    RUN(test_wrong_pop);
    RUN(test_key_resp_wrong_echo);
    RUN(test_store_failure_sends_no_key_resp);
    RUN(test_no_responder);
    RUN(test_second_run_skips_own_responders);
    RUN(test_reboot_keeps_key);
    RUN(test_corrupt_store_refused_and_untouched);
    RUN(test_erase_key_then_reprovision);
    RUN(test_stranger_cmd0_does_not_lock_out);
    RUN(test_zero_client_key_rejected);
    RUN(test_more_responders_than_sessions);
    RUN(test_scan_table_bound);
    RUN(test_timeout_after_retries);
    RUN(test_stranger_cmd0s_do_not_evict_the_real_handshake);
    RUN(test_flood_beyond_the_table_is_recovered_by_a_fresh_cmd0);
    RUN(test_proven_handshake_is_never_evicted);
    RUN(test_forged_cmd1_does_not_end_the_handshake);
    RUN(test_forged_resp1_is_ignored);
    RUN(test_forged_key_resp_is_ignored);
    RUN(test_forged_resp0_first_is_recovered);
    RUN(test_failed_checks_are_counted);
    RUN(test_initiator_with_a_new_key_reprovisions_its_responders);
    RUN(test_info_from_broadcast_sender_is_refused);
    HARNESS_END();
}
