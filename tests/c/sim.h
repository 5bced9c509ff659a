/*
 * sim.h - a tiny in-process "air" for unit tests: N cores, a fake clock, deterministic
 * per-node randomness, an in-memory key store, recorded events and deliveries, and a
 * filter hook that can drop, tamper with or duplicate frames.
 *
 * Frames are delivered from a FIFO queue (zero latency, in send order). Every delivery
 * hands the node an exactly-sized heap copy, so ASan catches any read past the frame.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node_priv.h"

#define SIM_MAX_NODES 48
/*
 * Every keyed node holds one PSA key (its data key, crypto.h) for as long as it has the key,
 * and a handshake briefly needs 1-2 more. All nodes of a test share one process-wide PSA key
 * store, and Mbed TLS 2.28 has 32 volatile key slots (MBEDTLS_PSA_KEY_SLOT_COUNT): a test
 * keeps at most this many nodes keyed at once (more nodes may exist if they stay unkeyed).
 */
#define SIM_MAX_KEYED_NODES 24
#define SIM_MAX_EVENTS 128
#define SIM_MAX_RX 64
#define SIM_MAX_RECS 40

typedef enum {
    SIM_K_OTHER = 0,
    SIM_K_SCAN_REQ,
    SIM_K_INFO,
    SIM_K_GROUP,
    SIM_K_CMD0,
    SIM_K_RESP0,
    SIM_K_CMD1,
    SIM_K_RESP1,
    SIM_K_KEY,
    SIM_K_KEY_RESP,
    SIM_K_DATA,
    /* protocol v2 (docs/PROTOCOL.md §2.3) */
    SIM_K_V2_SCAN_REQ,
    SIM_K_V2_SCAN_RESP,
    SIM_K_V2_HS1,
    SIM_K_V2_HS2,
    SIM_K_V2_HS3,
    SIM_K_V2_HS4,
    SIM_K_V2_HS_ERR,
    SIM_K_V2_CTRL,
    SIM_K_V2_CTRL_ACK,
    SIM_K_V2_DATA,
    SIM_K_V2_PLAIN,
    SIM_K_V2_SYNC,
    SIM_K_COUNT,
} sim_kind_t;

typedef struct sim sim_t;

typedef struct {
    sim_t *sim;
    int idx;
    uint8_t mac[ESPNOW_SEC_ADDR_LEN];
    uint8_t channel;
    uint64_t rng;
    espnow_sec_env_t env;
    espnow_sec_node_t *node;
    bool started;
    /* key store: "app_key" (compat) here, every other record (v2) in recs[] */
    bool has_rec;
    uint8_t rec[128];
    size_t rec_len;
    bool fail_save;
    int saves;
    struct {
        char name[16];
        uint8_t data[128];
        size_t len;
    } recs[SIM_MAX_RECS];
    int n_recs;
    /** v2: fail saves of records whose name starts with this (NULL: none) */
    const char *fail_save_prefix;
    /* recorded output */
    espnow_sec_event_t events[SIM_MAX_EVENTS];
    int n_events;
    struct {
        espnow_sec_rx_info_t info;
        uint8_t data[ESPNOW_SEC_FRAME_MAX];
        size_t len;
    } rx[SIM_MAX_RX];
    int n_rx;
    int sent[SIM_K_COUNT];
} sim_node_t;

/** Filter: return false to drop; may rewrite *data / *len (capacity 250). */
typedef bool (*sim_filter_t)(sim_t *sim, int from, const uint8_t dst[ESPNOW_SEC_ADDR_LEN], uint8_t *data,
                             size_t *len, sim_kind_t kind, void *ctx);

typedef struct {
    int from;
    uint8_t dst[ESPNOW_SEC_ADDR_LEN];
    uint8_t data[ESPNOW_SEC_FRAME_MAX];
    size_t len;
} sim_frame_t;

struct sim {
    uint32_t now;
    int n;
    sim_node_t nodes[SIM_MAX_NODES];
    sim_frame_t *queue;
    size_t q_head, q_tail, q_cap;
    sim_filter_t filter;
    void *filter_ctx;
    int delivered[SIM_K_COUNT];
    bool verbose;
    /* optional tap: every frame put on air (before the filter) */
    void (*tap)(sim_t *sim, int from, const uint8_t *data, size_t len, void *ctx);
    void *tap_ctx;
    /** protocol sim_start() gives new nodes (sim_new: COMPAT, what the older tests expect) */
    espnow_sec_protocol_t protocol;
};

sim_t *sim_new(uint32_t start_ms);
void sim_free(sim_t *sim);
/** Add a node (not started). Returns its index. */
int sim_add(sim_t *sim, uint64_t seed);
/** espnow_sec_node_init for node i. */
esp_err_t sim_start(sim_t *sim, int i, espnow_sec_role_t role, const char *pop);
/** deinit + init with the same store: a reboot (RAM state lost). */
esp_err_t sim_reboot(sim_t *sim, int i, espnow_sec_role_t role, const char *pop);
/** A stored v2 record of node i (NULL if none). */
const uint8_t *sim_record(const sim_node_t *n, const char *name, size_t *len);
/** Deliver queued frames and tick nodes until `ms` have passed or done(sim) is true. */
void sim_run(sim_t *sim, uint32_t ms, bool (*done)(sim_t *sim));
/** Deliver queued frames only. */
void sim_flush(sim_t *sim);
/** Hand a raw frame to node `to` (exact heap copy). */
void sim_inject(sim_t *sim, int to, const uint8_t src[ESPNOW_SEC_ADDR_LEN], const uint8_t *data, size_t len);

sim_kind_t sim_classify(const uint8_t *data, size_t len);
const char *sim_kind_name(sim_kind_t k);

int sim_count_events(const sim_node_t *n, espnow_sec_event_id_t id);
/** The i-th event with this id (NULL if none). */
const espnow_sec_event_t *sim_find_event(const sim_node_t *n, espnow_sec_event_id_t id, int nth);
bool sim_provision_done(sim_t *sim);
