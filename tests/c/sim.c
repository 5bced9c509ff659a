/*
 * sim.c - see sim.h.
 */
#include "sim.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint32_t env_now(void *ctx)
{
    sim_node_t *n = ctx;
    return n->sim->now;
}

static void env_random(void *ctx, uint8_t *buf, size_t len)
{
    sim_node_t *n = ctx;
    for (size_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)splitmix(&n->rng);
    }
}

static void enqueue(sim_t *sim, int from, const uint8_t dst[ESPNOW_SEC_ADDR_LEN], const uint8_t *data, size_t len)
{
    if (sim->q_tail - sim->q_head == sim->q_cap) {
        size_t cap = sim->q_cap ? sim->q_cap * 2 : 64;
        sim_frame_t *q = calloc(cap, sizeof(*q));
        for (size_t i = 0; i < sim->q_tail - sim->q_head; i++) {
            q[i] = sim->queue[(sim->q_head + i) % sim->q_cap];
        }
        sim->q_tail -= sim->q_head;
        sim->q_head = 0;
        free(sim->queue);
        sim->queue = q;
        sim->q_cap = cap;
    }
    sim_frame_t *f = &sim->queue[sim->q_tail % sim->q_cap];
    sim->q_tail++;
    f->from = from;
    memcpy(f->dst, dst, ESPNOW_SEC_ADDR_LEN);
    memcpy(f->data, data, len);
    f->len = len;
}

static esp_err_t env_send(void *ctx, const uint8_t dst[ESPNOW_SEC_ADDR_LEN], const uint8_t *frame, size_t len)
{
    sim_node_t *n = ctx;
    if (len == 0 || len > ESPNOW_SEC_FRAME_MAX) {
        return ESP_ERR_INVALID_SIZE;
    }
    n->sent[sim_classify(frame, len)]++;
    if (n->sim->tap != NULL) {
        n->sim->tap(n->sim, n->idx, frame, len, n->sim->tap_ctx);
    }
    enqueue(n->sim, n->idx, dst, frame, len);
    return ESP_OK;
}

static int rec_find(const sim_node_t *n, const char *name)
{
    for (int i = 0; i < n->n_recs; i++) {
        if (strcmp(n->recs[i].name, name) == 0) {
            return i;
        }
    }
    return -1;
}

const uint8_t *sim_record(const sim_node_t *n, const char *name, size_t *len)
{
    int i = rec_find(n, name);
    if (i < 0) {
        return NULL;
    }
    *len = n->recs[i].len;
    return n->recs[i].data;
}

static esp_err_t env_load(void *ctx, const char *name, uint8_t *buf, size_t cap, size_t *out_len)
{
    sim_node_t *n = ctx;
    if (strcmp(name, "app_key") != 0) {
        int i = rec_find(n, name);
        if (i < 0) {
            return ESP_ERR_NOT_FOUND;
        }
        if (n->recs[i].len > cap) {
            return ESP_ERR_INVALID_SIZE;
        }
        memcpy(buf, n->recs[i].data, n->recs[i].len);
        *out_len = n->recs[i].len;
        return ESP_OK;
    }
    if (!n->has_rec) {
        return ESP_ERR_NOT_FOUND;
    }
    if (n->rec_len > cap) {
        return ESP_ERR_INVALID_SIZE;
    }
    memcpy(buf, n->rec, n->rec_len);
    *out_len = n->rec_len;
    return ESP_OK;
}

static esp_err_t env_save(void *ctx, const char *name, const uint8_t *buf, size_t len)
{
    sim_node_t *n = ctx;
    if (strcmp(name, "app_key") != 0) {
        if (n->fail_save || len > sizeof(n->recs[0].data) || strlen(name) >= sizeof(n->recs[0].name) ||
            (n->fail_save_prefix != NULL && strncmp(name, n->fail_save_prefix, strlen(n->fail_save_prefix)) == 0)) {
            return ESP_FAIL;
        }
        int i = rec_find(n, name);
        if (i < 0) {
            if (n->n_recs == SIM_MAX_RECS) {
                return ESP_ERR_NO_MEM;
            }
            i = n->n_recs++;
            snprintf(n->recs[i].name, sizeof(n->recs[i].name), "%s", name);
        }
        memcpy(n->recs[i].data, buf, len);
        n->recs[i].len = len;
        n->saves++;
        return ESP_OK;
    }
    if (n->fail_save || len > sizeof(n->rec)) {
        return ESP_FAIL;
    }
    memcpy(n->rec, buf, len);
    n->rec_len = len;
    n->has_rec = true;
    n->saves++;
    return ESP_OK;
}

static esp_err_t env_erase(void *ctx, const char *name)
{
    sim_node_t *n = ctx;
    if (strcmp(name, "app_key") != 0) {
        int i = rec_find(n, name);
        if (i >= 0) {
            n->recs[i] = n->recs[--n->n_recs];
        }
        return ESP_OK;
    }
    n->has_rec = false;
    n->rec_len = 0;
    return ESP_OK;
}

static void env_event(void *ctx, const espnow_sec_event_t *ev)
{
    sim_node_t *n = ctx;
    if (n->n_events < SIM_MAX_EVENTS) {
        n->events[n->n_events++] = *ev;
    }
}

static void env_deliver(void *ctx, const espnow_sec_rx_info_t *info, const uint8_t *data, size_t len)
{
    sim_node_t *n = ctx;
    if (n->n_rx < SIM_MAX_RX) {
        n->rx[n->n_rx].info = *info;
        memcpy(n->rx[n->n_rx].data, data, len);
        n->rx[n->n_rx].len = len;
        n->n_rx++;
    }
}

static void env_log(void *ctx, espnow_sec_log_level_t level, const char *fmt, va_list ap)
{
    sim_node_t *n = ctx;
    if (!n->sim->verbose) {
        return;
    }
    static const char lv[] = "?EWID";
    printf("      %c (%u) node%d: ", lv[level <= 4 ? level : 0], (unsigned)n->sim->now, n->idx);
    vprintf(fmt, ap);
    printf("\n");
}

sim_t *sim_new(uint32_t start_ms)
{
    sim_t *sim = calloc(1, sizeof(*sim));
    sim->now = start_ms;
    sim->verbose = getenv("SIM_VERBOSE") != NULL;
    sim->protocol = ESPNOW_SEC_PROTOCOL_COMPAT;
    return sim;
}

void sim_free(sim_t *sim)
{
    for (int i = 0; i < sim->n; i++) {
        if (sim->nodes[i].started) {
            espnow_sec_node_deinit(sim->nodes[i].node);
        }
        free(sim->nodes[i].node);
    }
    free(sim->queue);
    free(sim);
}

int sim_add(sim_t *sim, uint64_t seed)
{
    int i = sim->n++;
    sim_node_t *n = &sim->nodes[i];
    memset(n, 0, sizeof(*n));
    n->sim = sim;
    n->idx = i;
    n->rng = seed * 1000003u + (uint64_t)i;
    uint8_t mac[ESPNOW_SEC_ADDR_LEN] = {0x02, 0x00, 0x00, 0x00, (uint8_t)(i >> 8), (uint8_t)i};
    memcpy(n->mac, mac, sizeof(mac));
    n->channel = 1;
    n->env = (espnow_sec_env_t){
        .ctx = n,
        .now_ms = env_now,
        .random = env_random,
        .send = env_send,
        .store_load = env_load,
        .store_save = env_save,
        .store_erase = env_erase,
        .event = env_event,
        .deliver = env_deliver,
        .log = env_log,
    };
    n->node = calloc(1, espnow_sec_node_size());
    return i;
}

esp_err_t sim_start(sim_t *sim, int i, espnow_sec_role_t role, const char *pop)
{
    sim_node_t *n = &sim->nodes[i];
    espnow_sec_node_config_t cfg = {.role = role, .channel = n->channel, .pop = pop, .protocol = sim->protocol};
    memcpy(cfg.self_mac, n->mac, ESPNOW_SEC_ADDR_LEN);
    esp_err_t err = espnow_sec_node_init(n->node, &n->env, &cfg);
    n->started = err == ESP_OK;
    return err;
}

esp_err_t sim_reboot(sim_t *sim, int i, espnow_sec_role_t role, const char *pop)
{
    sim_node_t *n = &sim->nodes[i];
    if (n->started) {
        espnow_sec_node_deinit(n->node);
        n->started = false;
    }
    return sim_start(sim, i, role, pop);
}

void sim_inject(sim_t *sim, int to, const uint8_t src[ESPNOW_SEC_ADDR_LEN], const uint8_t *data, size_t len)
{
    sim_node_t *n = &sim->nodes[to];
    uint8_t *copy = malloc(len ? len : 1);
    if (len) {
        memcpy(copy, data, len);
    }
    espnow_sec_node_on_frame(n->node, src, n->mac, copy, len, -40, n->channel);
    free(copy);
}

static void deliver_one(sim_t *sim, sim_frame_t *f)
{
    sim_node_t *from = &sim->nodes[f->from];
    sim_kind_t kind = sim_classify(f->data, f->len);
    if (sim->filter != NULL && !sim->filter(sim, f->from, f->dst, f->data, &f->len, kind, sim->filter_ctx)) {
        if (!espnow_sec_mac_is_broadcast(f->dst)) {
            espnow_sec_node_on_send_status(from->node, f->dst, false);
        }
        return;
    }
    bool bcast = espnow_sec_mac_is_broadcast(f->dst);
    bool found = false;
    for (int i = 0; i < sim->n; i++) {
        sim_node_t *to = &sim->nodes[i];
        if (i == f->from || !to->started || to->channel != from->channel) {
            continue;
        }
        if (!bcast && !espnow_sec_mac_eq(to->mac, f->dst)) {
            continue;
        }
        found = true;
        sim->delivered[kind]++;
        uint8_t *copy = malloc(f->len);
        memcpy(copy, f->data, f->len);
        espnow_sec_node_on_frame(to->node, from->mac, f->dst, copy, f->len, -40, to->channel);
        free(copy);
    }
    espnow_sec_node_on_send_status(from->node, f->dst, bcast || found);
}

void sim_flush(sim_t *sim)
{
    while (sim->q_head != sim->q_tail) {
        sim_frame_t f = sim->queue[sim->q_head % sim->q_cap];
        sim->q_head++;
        deliver_one(sim, &f);
    }
}

void sim_run(sim_t *sim, uint32_t ms, bool (*done)(sim_t *sim))
{
    uint32_t end = sim->now + ms;
    for (;;) {
        sim_flush(sim);
        uint32_t next = UINT32_MAX;
        for (int i = 0; i < sim->n; i++) {
            if (sim->nodes[i].started) {
                uint32_t t = espnow_sec_node_tick(sim->nodes[i].node);
                next = t < next ? t : next;
            }
        }
        if (sim->q_head != sim->q_tail) {
            continue; /* ticks sent frames: deliver them at the same instant */
        }
        if ((done != NULL && done(sim)) || (int32_t)(sim->now - end) >= 0) {
            return;
        }
        uint32_t step = next == 0 ? 1 : next;
        if (step > end - sim->now) {
            step = end - sim->now;
        }
        sim->now += step;
    }
}

static sim_kind_t classify_v2(const uint8_t *data, size_t len)
{
    static const struct {
        uint8_t type;
        sim_kind_t kind;
    } map[] = {
        {ESPNOW_SEC_V2_T_SCAN_REQ, SIM_K_V2_SCAN_REQ}, {ESPNOW_SEC_V2_T_SCAN_RESP, SIM_K_V2_SCAN_RESP},
        {ESPNOW_SEC_V2_T_HS1, SIM_K_V2_HS1},           {ESPNOW_SEC_V2_T_HS2, SIM_K_V2_HS2},
        {ESPNOW_SEC_V2_T_HS3, SIM_K_V2_HS3},           {ESPNOW_SEC_V2_T_HS4, SIM_K_V2_HS4},
        {ESPNOW_SEC_V2_T_HS_ERR, SIM_K_V2_HS_ERR},     {ESPNOW_SEC_V2_T_CTRL, SIM_K_V2_CTRL},
        {ESPNOW_SEC_V2_T_CTRL_ACK, SIM_K_V2_CTRL_ACK}, {ESPNOW_SEC_V2_T_DATA, SIM_K_V2_DATA},
        {ESPNOW_SEC_V2_T_DATA_PLAIN, SIM_K_V2_PLAIN},  {ESPNOW_SEC_V2_T_SYNC, SIM_K_V2_SYNC},
    };
    if (len < 3) {
        return SIM_K_OTHER;
    }
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (map[i].type == data[2]) {
            return map[i].kind;
        }
    }
    return SIM_K_OTHER;
}

sim_kind_t sim_classify(const uint8_t *data, size_t len)
{
    if (espnow_sec_classify(data, len) == ESPNOW_SEC_CLASS_V2) {
        return classify_v2(data, len);
    }
    espnow_sec_hdr_t h;
    if (espnow_sec_hdr_decode(data, len, &h) != ESP_OK) {
        return SIM_K_OTHER;
    }
    const uint8_t *p = data + ESPNOW_SEC_HDR_LEN;
    size_t n = len - ESPNOW_SEC_HDR_LEN;
    switch (h.type) {
    case ESPNOW_SEC_T_GROUP:
        return SIM_K_GROUP;
    case ESPNOW_SEC_T_DATA:
        return SIM_K_DATA;
    case ESPNOW_SEC_T_SECURITY_STATUS:
        return SIM_K_INFO;
    case ESPNOW_SEC_T_SECURITY:
        break;
    default:
        return SIM_K_OTHER;
    }
    if (n == 1 && p[0] == ESPNOW_SEC_R_REQUEST) {
        return SIM_K_SCAN_REQ;
    }
    espnow_sec_record_t r;
    if (espnow_sec_record_parse(p, n, &r) != ESP_OK) {
        return SIM_K_OTHER;
    }
    if (r.type == ESPNOW_SEC_R_KEY) {
        return SIM_K_KEY;
    }
    if (r.type == ESPNOW_SEC_R_KEY_RESP) {
        return SIM_K_KEY_RESP;
    }
    espnow_sec_sec1_t m;
    if (r.type != ESPNOW_SEC_R_HANDSHAKE || espnow_sec_compat_parse(r.data, r.len, &m) != ESP_OK) {
        return SIM_K_OTHER;
    }
    static const sim_kind_t k[] = {SIM_K_CMD0, SIM_K_RESP0, SIM_K_CMD1, SIM_K_RESP1};
    return k[m.msg];
}

const char *sim_kind_name(sim_kind_t k)
{
    static const char *names[] = {"other", "scan_req", "info", "group", "cmd0", "resp0",
                                  "cmd1", "resp1", "key", "key_resp", "data",
                                  "v2_scan_req", "v2_scan_resp", "v2_hs1", "v2_hs2", "v2_hs3", "v2_hs4",
                                  "v2_hs_err", "v2_ctrl", "v2_ctrl_ack", "v2_data", "v2_plain", "v2_sync"};
    return k < SIM_K_COUNT ? names[k] : "?";
}

int sim_count_events(const sim_node_t *n, espnow_sec_event_id_t id)
{
    int c = 0;
    for (int i = 0; i < n->n_events; i++) {
        c += n->events[i].id == id;
    }
    return c;
}

const espnow_sec_event_t *sim_find_event(const sim_node_t *n, espnow_sec_event_id_t id, int nth)
{
    for (int i = 0; i < n->n_events; i++) {
        if (n->events[i].id == id && nth-- == 0) {
            return &n->events[i];
        }
    }
    return NULL;
}

bool sim_provision_done(sim_t *sim)
{
    for (int i = 0; i < sim->n; i++) {
        if (sim->nodes[i].started && sim_count_events(&sim->nodes[i], ESPNOW_SEC_EVENT_PROVISION_DONE) > 0) {
            return true;
        }
    }
    return false;
}
