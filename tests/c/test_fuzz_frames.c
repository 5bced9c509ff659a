/*
 * test_fuzz_frames.c - thousands of hostile frames through espnow_sec_node_on_frame on
 * nodes in interesting states: random bytes, random payloads behind valid headers,
 * mutations and truncations of real captured frames. Every frame is an exactly-sized
 * heap block, so under ASan any read past the received length aborts the test.
 * (A coverage-guided fuzzer lives elsewhere; this is the deterministic smoke version.)
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "sim.h"

#define MAX_CAPTURE 256

typedef struct {
    uint8_t data[ESPNOW_SEC_FRAME_MAX];
    size_t len;
    int from;
} cap_t;

static cap_t s_cap[MAX_CAPTURE];
static int s_ncap;
static uint64_t s_rng = 0x1234567;

static uint64_t rnd(void)
{
    uint64_t z = (s_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void capture_tap(sim_t *sim, int from, const uint8_t *data, size_t len, void *ctx)
{
    (void)sim; (void)ctx;
    if (s_ncap < MAX_CAPTURE) {
        memcpy(s_cap[s_ncap].data, data, len);
        s_cap[s_ncap].len = len;
        s_cap[s_ncap].from = from;
        s_ncap++;
    }
}

/* A full run plus some data, recorded. */
static void capture_corpus(void)
{
    sim_t *sim = sim_new(0);
    for (int i = 0; i < 3; i++) {
        sim_add(sim, 99);
    }
    sim_start(sim, 0, ESPNOW_SEC_ROLE_INITIATOR, "espnow_pop");
    sim_start(sim, 1, ESPNOW_SEC_ROLE_RESPONDER, "espnow_pop");
    sim_start(sim, 2, ESPNOW_SEC_ROLE_RESPONDER, "espnow_pop");
    sim->tap = capture_tap;
    espnow_sec_node_provision(sim->nodes[0].node, 500);
    sim_run(sim, 30000, sim_provision_done);
    uint8_t msg[100];
    memset(msg, 'x', sizeof(msg));
    espnow_sec_node_send(sim->nodes[0].node, NULL, msg, sizeof(msg));
    espnow_sec_node_send(sim->nodes[1].node, sim->nodes[0].mac, msg, 3);
    sim_flush(sim);
    sim_free(sim);
}

/* Targets: an initiator mid-handshake (sessions waiting) and a responder with an open
 * session, plus a fresh responder. Resp1 is dropped so sessions stay half-open. */
static bool drop_resp1(sim_t *sim, int from, const uint8_t dst[6], uint8_t *data, size_t *len,
                       sim_kind_t kind, void *ctx)
{
    (void)sim; (void)from; (void)dst; (void)data; (void)len; (void)ctx;
    return kind != SIM_K_RESP1;
}

static sim_t *targets(void)
{
    sim_t *sim = sim_new(0);
    for (int i = 0; i < 3; i++) {
        sim_add(sim, 99); /* same seed as the corpus: captured frames match these MACs */
    }
    sim_start(sim, 0, ESPNOW_SEC_ROLE_INITIATOR, "espnow_pop");
    sim_start(sim, 1, ESPNOW_SEC_ROLE_RESPONDER, "espnow_pop");
    sim_start(sim, 2, ESPNOW_SEC_ROLE_RESPONDER, "other_pop");
    sim->filter = drop_resp1;
    espnow_sec_node_provision(sim->nodes[0].node, 500);
    sim_run(sim, 600, NULL); /* scan over, Cmd1 sent, Resp1 lost */
    sim->filter = NULL;
    return sim;
}

static void feed(sim_t *sim, const uint8_t *data, size_t len, int src_idx)
{
    for (int to = 0; to < sim->n; to++) {
        sim_inject(sim, to, sim->nodes[src_idx].mac, data, len);
        sim->q_head = sim->q_tail; /* answers are not needed */
    }
}

static void check_targets_sane(sim_t *sim, uint32_t fed)
{
    for (int i = 0; i < sim->n; i++) {
        espnow_sec_stats_t st;
        espnow_sec_node_get_stats(sim->nodes[i].node, &st);
        CHECK(st.rx_frames >= fed);
        for (int k = 0; k < sim->nodes[i].n_rx; k++) {
            /* a keyed node never hands the app a frame as plaintext */
            if (espnow_sec_node_is_secured(sim->nodes[i].node)) {
                CHECK_EQ(sim->nodes[i].rx[k].info.protection, ESPNOW_SEC_RX_ENCRYPTED);
            }
            CHECK(sim->nodes[i].rx[k].len <= ESPNOW_SEC_MAX_PAYLOAD_COMPAT + 12);
        }
    }
}

static void test_random_bytes(void)
{
    sim_t *sim = targets();
    uint32_t fed = 0;
    for (int i = 0; i < 3000; i++) {
        size_t len = (size_t)(rnd() % 262);
        uint8_t *buf = malloc(len ? len : 1);
        for (size_t j = 0; j < len; j++) {
            buf[j] = (uint8_t)rnd();
        }
        feed(sim, buf, len, (int)(rnd() % 3));
        free(buf);
        fed++;
    }
    /* empty, 1 byte and oversized frames explicitly */
    uint8_t one = 0x2c, big[300] = {0x2c, 0};
    feed(sim, &one, 0, 1);
    feed(sim, &one, 1, 1);
    feed(sim, big, 251, 1);
    feed(sim, big, 300, 1);
    feed(sim, NULL, 0, 1);
    espnow_sec_stats_t st;
    espnow_sec_node_get_stats(sim->nodes[1].node, &st);
    CHECK(st.rx_malformed >= 4);
    check_targets_sane(sim, fed);
    sim_free(sim);
}

static const uint8_t k_types[] = {ESPNOW_SEC_T_GROUP, ESPNOW_SEC_T_DATA, ESPNOW_SEC_T_SECURITY_STATUS,
                                  ESPNOW_SEC_T_SECURITY};

static void test_valid_header_random_payload(void)
{
    sim_t *sim = targets();
    uint32_t fed = 0;
    for (int i = 0; i < 4000; i++) {
        int src = (int)(rnd() % 3);
        size_t plen = (size_t)(rnd() % 231);
        if (rnd() % 4 == 0) {
            plen = (size_t)(rnd() % 40); /* short payloads reach more branches */
        }
        size_t len = 20 + plen;
        uint8_t *buf = malloc(len);
        espnow_sec_hdr_t h = {.type = k_types[rnd() % 4], .version = 2, .size = (uint8_t)plen,
                              .magic = (uint16_t)rnd(), .security = rnd() % 2, .group = rnd() % 8 == 0};
        const uint8_t *dst = rnd() % 2 ? espnow_sec_broadcast_mac : sim->nodes[rnd() % 3].mac;
        memcpy(h.dest, h.group ? espnow_sec_group_sec : dst, 6);
        memcpy(h.src, sim->nodes[src].mac, 6);
        espnow_sec_hdr_encode(&h, buf);
        for (size_t j = 20; j < len; j++) {
            buf[j] = (uint8_t)rnd();
        }
        if (plen >= 2 && rnd() % 2) {
            buf[20] = (uint8_t)(rnd() % 7);   /* plausible inner record type */
            buf[21] = (uint8_t)(rnd() % 256); /* and any inner size byte */
        }
        feed(sim, buf, len, src);
        free(buf);
        fed++;
    }
    check_targets_sane(sim, fed);
    sim_free(sim);
}

static void test_mutated_real_frames(void)
{
    CHECK(s_ncap > 20);
    sim_t *sim = targets();
    uint32_t fed = 0;
    for (int i = 0; i < 4000; i++) {
        const cap_t *c = &s_cap[rnd() % (uint64_t)s_ncap];
        uint8_t tmp[300];
        size_t len = c->len;
        memcpy(tmp, c->data, len);
        switch (rnd() % 5) {
        case 0: /* bit flips */
            for (int f = 0; f < 1 + (int)(rnd() % 4); f++) {
                size_t bit = (size_t)(rnd() % (len * 8));
                tmp[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            }
            break;
        case 1: /* truncate, keeping the size byte honest or not */
            len = (size_t)(rnd() % (len + 1));
            if (len >= 20 && rnd() % 2) {
                tmp[1] = (uint8_t)(len - 20);
            }
            break;
        case 2: /* extend with junk */
        {
            size_t add = (size_t)(rnd() % 40);
            for (size_t j = 0; j < add && len < 300; j++) {
                tmp[len++] = (uint8_t)rnd();
            }
            if (len <= 250 && rnd() % 2) {
                tmp[1] = (uint8_t)(len - 20);
            }
            break;
        }
        case 3: /* inner size byte */
            if (len > 21) {
                tmp[21] = (uint8_t)rnd();
            }
            break;
        default: /* one random byte in the protobuf / payload area */
            if (len > 20) {
                tmp[20 + rnd() % (len - 20)] = (uint8_t)rnd();
            }
            tmp[2] = (uint8_t)rnd(); /* new magic: past the duplicate filter */
            break;
        }
        uint8_t *buf = malloc(len ? len : 1);
        memcpy(buf, tmp, len);
        feed(sim, buf, len, c->from);
        free(buf);
        fed++;
    }
    check_targets_sane(sim, fed);
    sim_free(sim);
}

static void test_truncated_at_every_length(void)
{
    sim_t *sim = targets();
    int kinds_seen[SIM_K_COUNT] = {0};
    for (int i = 0; i < s_ncap; i++) {
        sim_kind_t k = sim_classify(s_cap[i].data, s_cap[i].len);
        if (kinds_seen[k]++) {
            continue; /* one frame of each kind */
        }
        for (size_t len = 0; len < s_cap[i].len; len++) {
            uint8_t *buf = malloc(len ? len : 1);
            memcpy(buf, s_cap[i].data, len);
            feed(sim, buf, len, s_cap[i].from);
            free(buf);
        }
    }
    for (int k = SIM_K_SCAN_REQ; k <= SIM_K_DATA; k++) { /* the compat kinds this corpus captures */
        if (kinds_seen[k] == 0) {
            printf("    no captured frame of kind %s\n", sim_kind_name((sim_kind_t)k));
        }
        CHECK(kinds_seen[k] > 0);
    }
    check_targets_sane(sim, 0);
    sim_free(sim);
}

int main(void)
{
    espnow_sec_crypto_init();
    capture_corpus();
    RUN(test_random_bytes);
    RUN(test_valid_header_random_payload);
    RUN(test_mutated_real_frames);
    RUN(test_truncated_at_every_length);
    HARNESS_END();
}
