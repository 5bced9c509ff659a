/*
 * node.c - the deterministic machine's entry points: frames and ticks in, frames and
 * events out (node.h). Owns the tables; receives, checks the outer header, filters
 * duplicates and dispatches by frame type and role through one table; counts and logs
 * every rejection in one place.
 */
#include <stdio.h>
#include <string.h>

#include "datapath.h"
#include "keystore.h"
#include "node_priv.h"

size_t espnow_sec_node_size(void)
{
    return sizeof(struct espnow_sec_node);
}

uint32_t espnow_sec_now(const espnow_sec_node_t *node)
{
    return node->env->now_ms(node->env->ctx);
}

void espnow_sec_log(const espnow_sec_node_t *node, espnow_sec_log_level_t level, const char *fmt, ...)
{
    if (node->env->log == NULL) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    node->env->log(node->env->ctx, level, fmt, ap);
    va_end(ap);
}

void espnow_sec_log_secret(const espnow_sec_node_t *node, const char *label, const uint8_t *buf, size_t len)
{
#if ESPNOW_SEC_LOG_SECRETS
    char hex[2 * 64 + 1];
    size_t n = len < 64 ? len : 64;
    for (size_t i = 0; i < n; i++) {
        snprintf(&hex[2 * i], 3, "%02x", buf[i]);
    }
    hex[2 * n] = '\0';
    espnow_sec_log(node, ESPNOW_SEC_LOG_DEBUG, "SECRET %s: %s", label, hex);
    espnow_sec_memzero(hex, sizeof(hex));
#else
    (void)node;
    (void)label;
    (void)buf;
    (void)len;
#endif
}

void espnow_sec_emit(espnow_sec_node_t *node, const espnow_sec_event_t *ev)
{
    if (node->env->event != NULL) {
        node->env->event(node->env->ctx, ev);
    }
}

void espnow_sec_emit_peer(espnow_sec_node_t *node, espnow_sec_event_id_t id,
                          const uint8_t mac[ESPNOW_SEC_ADDR_LEN], espnow_sec_fail_reason_t reason)
{
    espnow_sec_event_t ev = {.id = id};
    memcpy(ev.data.peer.mac, mac, ESPNOW_SEC_ADDR_LEN);
    ev.data.peer.reason = reason;
    espnow_sec_emit(node, &ev);
}

/*
 * Header fields upstream sets per kind of message, so every compat frame we send is the
 * frame upstream sends, byte for byte (vectors/compat.json `headers`, `frames`):
 *   scan REQUEST   broadcast, filter_adjacent, retransmit 10, forward_rssi -65 (§2.3 step 1)
 *   Cmd0 to "SEC"  group, filter_adjacent, retransmit 1 (SEND_RETRY_NUM), rssi -65 (§2.4 step 2, §3.2)
 *   other SECURITY unicast, filter_adjacent, retransmit 1 (§2.4 step 3)
 *   GROUP          broadcast, default head: retransmit 10 (§2.4 step 1)
 *   anything else  (INFO, DATA) retransmit 1, no filter (§2.3 step 3)
 * First match wins. The core sends each frame once whatever retransmit_count says; the field
 * is only what upstream receivers and relays expect to see.
 */
typedef struct {
    uint8_t type;
    bool broadcast;
    bool group;
    bool filter_adjacent;
    uint8_t retransmit;
    int8_t rssi;
} tx_profile_t;

static const tx_profile_t s_tx_profiles[] = {
    {ESPNOW_SEC_T_SECURITY, true, false, true, 10, -65},
    {ESPNOW_SEC_T_SECURITY, true, true, true, 1, -65},
    {ESPNOW_SEC_T_SECURITY, false, false, true, 1, 0},
    {ESPNOW_SEC_T_GROUP, true, false, false, 10, 0},
};

esp_err_t espnow_sec_tx(espnow_sec_node_t *node, const uint8_t mac_dst[ESPNOW_SEC_ADDR_LEN],
                        uint8_t type, const uint8_t dest[ESPNOW_SEC_ADDR_LEN], bool broadcast,
                        bool group, bool security, const uint8_t *payload, size_t len)
{
    if (len > ESPNOW_SEC_PAYLOAD_MAX || (payload == NULL && len != 0)) {
        return ESP_ERR_INVALID_SIZE;
    }
    uint8_t frame[ESPNOW_SEC_FRAME_MAX];
    uint8_t magic[2];
    espnow_sec_hdr_t h = {
        .type = type,
        .version = ESPNOW_SEC_WIRE_VERSION,
        .size = (uint8_t)(len & 0xFF),
        .channel = node->channel,
        .security = security,
        .broadcast = broadcast,
        .group = group,
        .retransmit = 1,
    };
    for (size_t i = 0; i < sizeof(s_tx_profiles) / sizeof(s_tx_profiles[0]); i++) {
        const tx_profile_t *p = &s_tx_profiles[i];
        if (p->type == type && p->broadcast == broadcast && p->group == group) {
            h.filter_adjacent = p->filter_adjacent;
            h.retransmit = p->retransmit;
            h.rssi = p->rssi;
            break;
        }
    }
    /* A fresh random magic per transmission (§2.1): retransmissions are new frames to the
     * receivers' duplicate filter, copies of one transmission are not. */
    node->env->random(node->env->ctx, magic, sizeof(magic));
    h.magic = (uint16_t)(magic[0] | (magic[1] << 8));
    memcpy(h.dest, dest, ESPNOW_SEC_ADDR_LEN);
    memcpy(h.src, node->self, ESPNOW_SEC_ADDR_LEN);
    espnow_sec_hdr_encode(&h, frame);
    if (len != 0) {
        memcpy(&frame[ESPNOW_SEC_HDR_LEN], payload, len);
    }
    esp_err_t err = node->env->send(node->env->ctx, mac_dst, frame, ESPNOW_SEC_HDR_LEN + len);
    if (err == ESP_OK) {
        node->stats.tx_frames++;
    } else {
        espnow_sec_log(node, ESPNOW_SEC_LOG_DEBUG, "send of type %u failed: %s", type,
                       espnow_sec_err_to_name(err));
        err = ESP_ERR_ESPNOW_SEC_RADIO;
    }
    espnow_sec_memzero(frame, sizeof(frame));
    return err;
}

esp_err_t espnow_sec_install_key(espnow_sec_node_t *node, const uint8_t key[ESPNOW_SEC_APP_KEY_LEN],
                                 const uint8_t provisioner[ESPNOW_SEC_ADDR_LEN])
{
    /* The data key becomes one PSA key held until drop/deinit/replace: no import per frame.
     * The new key is imported before the old one is destroyed, so a failed import (no free
     * PSA slot) leaves the node with its previous key. */
    espnow_sec_ccm_key_t k = {0};
    esp_err_t err = espnow_sec_data_key_import(&k, key);
    if (err != ESP_OK) {
        return err;
    }
    espnow_sec_crypto_ccm_key_destroy(&node->data_key);
    node->data_key = k; /* ownership of the PSA key moves to the node */
    if (node->role == ESPNOW_SEC_ROLE_INITIATOR) {
        /* The initiator needs the raw bytes: it sends them in KEY and checks the KEY_RESP
         * echo (upstream §2.5). */
        memcpy(node->app_key, key, ESPNOW_SEC_APP_KEY_LEN);
    } else {
        /* A responder only needs the PSA data key (and the stored record for reboots). */
        espnow_sec_memzero(node->app_key, sizeof(node->app_key));
    }
    memcpy(node->provisioner, provisioner, ESPNOW_SEC_ADDR_LEN);
    node->has_key = true;
    espnow_sec_log_secret(node, "app_key", key, ESPNOW_SEC_APP_KEY_LEN);
    return ESP_OK;
}

void espnow_sec_drop_key(espnow_sec_node_t *node)
{
    espnow_sec_crypto_ccm_key_destroy(&node->data_key);
    espnow_sec_memzero(node->app_key, sizeof(node->app_key));
    memset(node->provisioner, 0, sizeof(node->provisioner));
    node->has_key = false;
}

static esp_err_t v2_init(espnow_sec_node_t *node, const uint8_t *pop, size_t pop_len)
{
    /* The PoP is hashed at once (§4.3); only pop_hash is kept, an empty PoP included. */
    esp_err_t err = espnow_sec_ks_pop_hash(pop, pop_len, node->pop_hash);
    node->has_pop = pop_len != 0;
    node->v2.sync_lim.tokens = 8;
    node->v2.reply_lim.tokens = 8;
    node->v2.sync_lim.t = node->v2.reply_lim.t = espnow_sec_now(node);
    if (err == ESP_OK) {
        err = node->role == ESPNOW_SEC_ROLE_INITIATOR ? espnow_sec_v2i_init(node) : espnow_sec_v2r_init(node);
    }
    if (err != ESP_OK) {
        if (err == ESP_ERR_ESPNOW_SEC_STORE_CORRUPT) {
            espnow_sec_log(node, ESPNOW_SEC_LOG_ERROR,
                           "stored v2 key or counter record is damaged; left untouched: erase it to re-provision");
        }
        espnow_sec_node_deinit(node);
        return err;
    }
    espnow_sec_log(node, ESPNOW_SEC_LOG_INFO, "%s " ESPNOW_SEC_MACSTR " on channel %u, %s (protocol v2, epoch %u)",
                   node->role == ESPNOW_SEC_ROLE_INITIATOR ? "initiator" : "responder", ESPNOW_SEC_MAC2STR(node->self),
                   node->channel, node->v2.ep.cur.epoch != 0 ? "secured" : "no key yet", node->v2.ep.cur.epoch);
    return ESP_OK;
}

esp_err_t espnow_sec_node_init(espnow_sec_node_t *node, const espnow_sec_env_t *env,
                               const espnow_sec_node_config_t *cfg)
{
    if (node == NULL || env == NULL || cfg == NULL || cfg->pop == NULL || env->now_ms == NULL ||
        env->random == NULL || env->send == NULL || env->store_load == NULL ||
        env->store_save == NULL || env->store_erase == NULL || cfg->channel > 14 ||
        (cfg->role != ESPNOW_SEC_ROLE_INITIATOR && cfg->role != ESPNOW_SEC_ROLE_RESPONDER)) {
        return ESP_ERR_INVALID_ARG;
    }
    espnow_sec_protocol_t proto = cfg->protocol == ESPNOW_SEC_PROTOCOL_DEFAULT ? ESPNOW_SEC_PROTOCOL_KCONFIG
                                                                               : cfg->protocol;
    if (proto != ESPNOW_SEC_PROTOCOL_COMPAT && proto != ESPNOW_SEC_PROTOCOL_V2) {
        return ESP_ERR_INVALID_ARG;
    }
    size_t pop_len = strlen(cfg->pop);
    if (proto == ESPNOW_SEC_PROTOCOL_V2 && (pop_len > ESPNOW_SEC_POP_MAX || (ESPNOW_SEC_V2_REQUIRE_POP && pop_len == 0))) {
        return ESP_ERR_INVALID_ARG; /* §4.4: an empty PoP pairs with anyone */
    }
    memset(node, 0, sizeof(*node));
    node->env = env;
    node->role = cfg->role;
    node->protocol = proto;
    node->channel = cfg->channel;
    memcpy(node->self, cfg->self_mac, ESPNOW_SEC_ADDR_LEN);
    espnow_sec_dedupe_reset(&node->dedupe);

    esp_err_t err = espnow_sec_crypto_init();
    if (err == ESP_OK && proto == ESPNOW_SEC_PROTOCOL_V2) {
        return v2_init(node, (const uint8_t *)cfg->pop, pop_len);
    }
    if (err == ESP_OK && pop_len != 0) {
        /* Only the hash is kept: it is all security1 uses (§4.2). "" = no PoP. */
        err = espnow_sec_compat_pop_hash((const uint8_t *)cfg->pop, pop_len, node->pop_hash);
        node->has_pop = true;
    }
    if (err != ESP_OK) {
        goto fail;
    }
    espnow_sec_key_record_t rec;
    err = espnow_sec_keystore_load(env, &rec);
    if (err == ESP_OK) {
        err = espnow_sec_install_key(node, rec.key, rec.provisioner);
    } else if (err == ESP_ERR_NOT_FOUND && node->role == ESPNOW_SEC_ROLE_INITIATOR) {
        /* The initiator owns the group key: 32 random bytes, persisted once. */
        env->random(env->ctx, rec.key, sizeof(rec.key));
        memcpy(rec.provisioner, node->self, ESPNOW_SEC_ADDR_LEN);
        err = espnow_sec_keystore_save(env, &rec);
        if (err == ESP_OK) {
            err = espnow_sec_install_key(node, rec.key, rec.provisioner);
        }
        node->u.ini.key_generated = true; /* responders naming us hold an older key (compat_initiator.c) */
    } else if (err == ESP_ERR_NOT_FOUND) {
        err = ESP_OK; /* a responder waits for a key */
    }
    espnow_sec_memzero(&rec, sizeof(rec));
    if (err != ESP_OK) {
        if (err == ESP_ERR_ESPNOW_SEC_STORE_CORRUPT) {
            espnow_sec_log(node, ESPNOW_SEC_LOG_ERROR,
                           "stored key record is damaged; left untouched: erase it to re-provision");
        }
        goto fail;
    }
    espnow_sec_log(node, ESPNOW_SEC_LOG_INFO, "%s " ESPNOW_SEC_MACSTR " on channel %u, %s",
                   node->role == ESPNOW_SEC_ROLE_INITIATOR ? "initiator" : "responder",
                   ESPNOW_SEC_MAC2STR(node->self), node->channel, node->has_key ? "secured" : "no key yet");
    return ESP_OK;
fail:
    espnow_sec_node_deinit(node);
    return err;
}

void espnow_sec_node_deinit(espnow_sec_node_t *node)
{
    if (node == NULL) {
        return;
    }
    espnow_sec_crypto_ccm_key_destroy(&node->data_key); /* releases its PSA key slot */
    espnow_sec_ep_wipe(&node->v2.ep);                   /* v2: the group keys' slots */
    espnow_sec_memzero(node, sizeof(*node));
}

/* ---- receive ---- */

typedef struct {
    uint8_t type;
    espnow_sec_rx_handler_t initiator;
    espnow_sec_rx_handler_t responder;
} rx_route_t;

static const rx_route_t s_routes[] = {
    {ESPNOW_SEC_T_GROUP, NULL, espnow_sec_rsp_on_group},
    {ESPNOW_SEC_T_DATA, espnow_sec_data_on_frame, espnow_sec_data_on_frame},
    {ESPNOW_SEC_T_SECURITY_STATUS, espnow_sec_ini_on_status, NULL},
    {ESPNOW_SEC_T_SECURITY, espnow_sec_ini_on_security, espnow_sec_rsp_on_security},
};

/* Every rejected frame ends here: one counter, one DEBUG line (attacks are counted,
 * not logged as errors: STYLE.md example 14). */
static void reject(espnow_sec_node_t *node, const espnow_sec_rx_t *rx, esp_err_t why, const char *what)
{
    switch (why) {
    case ESP_ERR_ESPNOW_SEC_AUTH:
        node->stats.rx_auth_fail++;
        break;
    case ESP_ERR_INVALID_STATE:
        node->stats.rx_unexpected++;
        break;
    case ESP_ERR_NOT_SUPPORTED:
        node->stats.rx_foreign++;
        break;
    case ESP_ERR_ESPNOW_SEC_MALFORMED:
    default:
        node->stats.rx_malformed++;
        break;
    }
    if (rx != NULL) {
        espnow_sec_log(node, ESPNOW_SEC_LOG_DEBUG, "drop type %u from " ESPNOW_SEC_MACSTR ": %s",
                       rx->hdr.type, ESPNOW_SEC_MAC2STR(rx->hdr.src), what);
    } else {
        espnow_sec_log(node, ESPNOW_SEC_LOG_DEBUG, "drop frame: %s", what);
    }
}

/* ==== protocol v2 receive (docs/PROTOCOL.md §2.1, §2.6) ==== */

typedef struct {
    uint8_t type;
    uint8_t addressing; /* 0 broadcast only, 1 unicast to us only, 2 either */
    espnow_sec_v2_handler_t initiator;
    espnow_sec_v2_handler_t responder;
} v2_route_t;

enum { TO_BCAST = 0, TO_US = 1, TO_EITHER = 2 };

static const v2_route_t s_v2_routes[] = {
    {ESPNOW_SEC_V2_T_SCAN_REQ, TO_BCAST, NULL, espnow_sec_v2r_on_scan_req},
    {ESPNOW_SEC_V2_T_SCAN_RESP, TO_US, espnow_sec_v2i_on_scan_resp, NULL},
    {ESPNOW_SEC_V2_T_HS1, TO_US, NULL, espnow_sec_v2r_on_hs1},
    {ESPNOW_SEC_V2_T_HS2, TO_US, espnow_sec_v2i_on_hs2, NULL},
    {ESPNOW_SEC_V2_T_HS3, TO_US, NULL, espnow_sec_v2r_on_hs3},
    {ESPNOW_SEC_V2_T_HS4, TO_US, espnow_sec_v2i_on_hs4, NULL},
    {ESPNOW_SEC_V2_T_HS_ERR, TO_US, espnow_sec_v2i_on_hs_err, NULL},
    {ESPNOW_SEC_V2_T_CTRL, TO_US, NULL, espnow_sec_v2r_on_ctrl},
    {ESPNOW_SEC_V2_T_CTRL_ACK, TO_US, espnow_sec_v2i_on_ctrl_ack, NULL},
    {ESPNOW_SEC_V2_T_DATA, TO_EITHER, espnow_sec_v2_on_data, espnow_sec_v2_on_data},
    {ESPNOW_SEC_V2_T_DATA_PLAIN, TO_EITHER, espnow_sec_v2_on_plain, espnow_sec_v2_on_plain},
    {ESPNOW_SEC_V2_T_SYNC, TO_EITHER, espnow_sec_v2_on_sync, espnow_sec_v2_on_sync},
};

/* Every v2 drop ends here: one reason counter, the legacy counter of §2.6, one DEBUG line. */
static void v2_drop(espnow_sec_node_t *node, const uint8_t *src, int type, espnow_sec_drop_reason_t why,
                    const char *what)
{
    node->v2.drops[why]++;
    switch (why) {
    case ESPNOW_SEC_DROP_MALFORMED:
        node->stats.rx_malformed++;
        break;
    case ESPNOW_SEC_DROP_FOREIGN:
        node->stats.rx_foreign++;
        break;
    case ESPNOW_SEC_DROP_AUTH:
        node->stats.rx_auth_fail++;
        break;
    case ESPNOW_SEC_DROP_REPLAY:
    case ESPNOW_SEC_DROP_DUPLICATE:
        node->stats.rx_duplicate++;
        break;
    case ESPNOW_SEC_DROP_PLAINTEXT:
        node->stats.rx_plaintext++;
        node->stats.rx_plaintext_dropped++;
        break;
    default:
        node->stats.rx_unexpected++;
        break;
    }
    espnow_sec_log(node, ESPNOW_SEC_LOG_DEBUG, "drop v2 type 0x%02x from " ESPNOW_SEC_MACSTR ": %s%s%s", type & 0xFF,
                   ESPNOW_SEC_MAC2STR(src), espnow_sec_drop_reason_str(why), what ? ", " : "", what ? what : "");
}

static void v2_on_frame(espnow_sec_node_t *node, const uint8_t src[ESPNOW_SEC_ADDR_LEN],
                        const uint8_t dst[ESPNOW_SEC_ADDR_LEN], const uint8_t *data, size_t len, int8_t rssi,
                        uint8_t channel)
{
    espnow_sec_frame_class_t cls = espnow_sec_classify(data, len);
    if (cls == ESPNOW_SEC_CLASS_EMPTY) {
        v2_drop(node, src, -1, ESPNOW_SEC_DROP_MALFORMED, "empty");
        return;
    }
    if (espnow_sec_mac_eq(src, node->self)) {
        v2_drop(node, src, -1, ESPNOW_SEC_DROP_FOREIGN, "own frame");
        return;
    }
    if (cls != ESPNOW_SEC_CLASS_V2) {
        if (cls == ESPNOW_SEC_CLASS_V2_UNKNOWN && len > 1) {
            espnow_sec_log(node, ESPNOW_SEC_LOG_DEBUG, "unknown v2 revision %u", data[1]);
        } else if (cls == ESPNOW_SEC_CLASS_V2_UNKNOWN) {
            /* §2.1: a lone 0xCF has no revision byte; "0" would name a revision it does not carry. */
            espnow_sec_log(node, ESPNOW_SEC_LOG_DEBUG, "unknown v2 revision (none)");
        }
        v2_drop(node, src, -1, ESPNOW_SEC_DROP_FOREIGN,
                cls == ESPNOW_SEC_CLASS_COMPAT ? "compat frame ignored" : "not a v2 frame");
        return;
    }
    espnow_sec_v2_rx_t rx = {.src = src, .dst = dst, .data = data, .len = len, .rssi = rssi, .channel = channel};
    if (espnow_sec_v2_hdr_decode(data, len, ESPNOW_SEC_V2_MAX_PAYLOAD, &rx.hdr) != ESP_OK) {
        v2_drop(node, src, len > 2 ? data[2] : -1, ESPNOW_SEC_DROP_MALFORMED, "header, type or length");
        return;
    }
    rx.broadcast = espnow_sec_mac_is_broadcast(dst);
    const v2_route_t *route = NULL;
    for (size_t i = 0; i < sizeof(s_v2_routes) / sizeof(s_v2_routes[0]); i++) {
        if (s_v2_routes[i].type == rx.hdr.type) {
            route = &s_v2_routes[i];
        }
    }
    bool to_us = espnow_sec_mac_eq(dst, node->self);
    if (route == NULL || (route->addressing == TO_BCAST && !rx.broadcast) ||
        (route->addressing == TO_US && !to_us) || (route->addressing == TO_EITHER && !to_us && !rx.broadcast)) {
        v2_drop(node, src, rx.hdr.type, ESPNOW_SEC_DROP_MALFORMED, "addressing");
        return;
    }
    espnow_sec_v2_handler_t h = node->role == ESPNOW_SEC_ROLE_INITIATOR ? route->initiator : route->responder;
    if (h == NULL) {
        v2_drop(node, src, rx.hdr.type, ESPNOW_SEC_DROP_FOREIGN, "not for this role");
        return;
    }
    espnow_sec_drop_reason_t why = h(node, &rx);
    if (why != ESPNOW_SEC_V2_ACCEPT) {
        v2_drop(node, src, rx.hdr.type, why, NULL);
    }
}

void espnow_sec_node_on_frame(espnow_sec_node_t *node, const uint8_t src[ESPNOW_SEC_ADDR_LEN],
                              const uint8_t dst[ESPNOW_SEC_ADDR_LEN], const uint8_t *data,
                              size_t len, int8_t rssi, uint8_t channel)
{
    if (node == NULL || node->env == NULL) {
        return;
    }
    node->stats.rx_frames++;
    if (node->protocol == ESPNOW_SEC_PROTOCOL_V2) {
        v2_on_frame(node, src, dst, data, len, rssi, channel);
        return;
    }
    /* compat: the header's src_addr names the originator (§2.1) */
    if (data == NULL) {
        reject(node, NULL, ESP_ERR_ESPNOW_SEC_MALFORMED, "no data");
        return;
    }
    espnow_sec_frame_class_t cls = espnow_sec_classify(data, len);
    if (cls == ESPNOW_SEC_CLASS_V2) {
        reject(node, NULL, ESP_ERR_NOT_SUPPORTED, "v2 frame ignored");
        return;
    }
    if (cls == ESPNOW_SEC_CLASS_V2_UNKNOWN || cls == ESPNOW_SEC_CLASS_OTHER) {
        /* §2.1, compat column: CF with another or no revision byte, and anything that is not a
         * compat version-2 byte 0, are FOREIGN, whatever their length (not MALFORMED). */
        reject(node, NULL, ESP_ERR_NOT_SUPPORTED, "not a compat frame");
        return;
    }
    espnow_sec_rx_t rx = {.rssi = rssi, .channel = channel};
    esp_err_t err = espnow_sec_hdr_decode(data, len, &rx.hdr);
    if (err != ESP_OK) {
        reject(node, NULL, err, err == ESP_ERR_NOT_SUPPORTED ? "other version" : "bad header or length");
        return;
    }
    rx.payload = &data[ESPNOW_SEC_HDR_LEN];
    rx.len = len - ESPNOW_SEC_HDR_LEN;
    if (espnow_sec_mac_eq(rx.hdr.src, node->self)) {
        reject(node, &rx, ESP_ERR_NOT_SUPPORTED, "own frame");
        return;
    }
    /* Upstream's filter_adjacent_channel (§2.1): 0 = "current", 15 = all channels. */
    if (rx.hdr.filter_adjacent && rx.hdr.channel != 0 && rx.hdr.channel != 0x0F &&
        rx.hdr.channel != channel) {
        reject(node, &rx, ESP_ERR_NOT_SUPPORTED, "other channel");
        return;
    }
    espnow_sec_rx_handler_t handler = NULL;
    for (size_t i = 0; i < sizeof(s_routes) / sizeof(s_routes[0]); i++) {
        if (s_routes[i].type == rx.hdr.type) {
            handler = node->role == ESPNOW_SEC_ROLE_INITIATOR ? s_routes[i].initiator : s_routes[i].responder;
            break;
        }
    }
    if (handler == NULL) {
        reject(node, &rx, ESP_ERR_NOT_SUPPORTED, "type not handled by this role");
        return;
    }
    /* Group-addressed frames exist only for the handshake (Cmd0 to "SEC", §2.4); the
     * responder checks its membership itself. */
    bool to_group = rx.hdr.group && rx.hdr.type == ESPNOW_SEC_T_SECURITY;
    if (!espnow_sec_mac_eq(rx.hdr.dest, node->self) && !espnow_sec_mac_is_broadcast(rx.hdr.dest) &&
        !to_group) {
        reject(node, &rx, ESP_ERR_NOT_SUPPORTED, "addressed to another station");
        return;
    }
    if (espnow_sec_dedupe_seen(&node->dedupe, rx.hdr.src, rx.hdr.type, rx.hdr.magic)) {
        node->stats.rx_duplicate++;
        return;
    }
    err = handler(node, &rx);
    if (err == ESP_OK) {
        espnow_sec_dedupe_commit(&node->dedupe, rx.hdr.src, rx.hdr.type, rx.hdr.magic);
        return;
    }
    reject(node, &rx, err,
           err == ESP_ERR_INVALID_STATE  ? "not expected now"
           : err == ESP_ERR_ESPNOW_SEC_AUTH ? "authentication failed"
                                            : "malformed");
}

void espnow_sec_node_on_send_status(espnow_sec_node_t *node,
                                    const uint8_t dst[ESPNOW_SEC_ADDR_LEN], bool delivered)
{
    /* Retransmission is driven by answers, not MAC ACKs: an ACK does not mean the peer
     * processed the frame (bug B2/B15), and a missing one is covered by the retry timer. */
    (void)dst;
    if (node != NULL && !delivered) {
        node->stats.tx_failed++;
    }
}

uint32_t espnow_sec_node_tick(espnow_sec_node_t *node)
{
    if (node == NULL || node->env == NULL) {
        return UINT32_MAX;
    }
    uint32_t now = espnow_sec_now(node);
    if (node->protocol == ESPNOW_SEC_PROTOCOL_V2) {
        uint32_t a = node->role == ESPNOW_SEC_ROLE_INITIATOR ? espnow_sec_v2i_tick(node, now)
                                                             : espnow_sec_v2r_tick(node, now);
        uint32_t b = espnow_sec_v2_common_tick(node, now);
        return a < b ? a : b;
    }
    if (node->role != ESPNOW_SEC_ROLE_INITIATOR) {
        return UINT32_MAX;
    }
    return espnow_sec_ini_tick(node, now);
}

static bool v2_initiator(const espnow_sec_node_t *node)
{
    return node->protocol == ESPNOW_SEC_PROTOCOL_V2 && node->role == ESPNOW_SEC_ROLE_INITIATOR;
}

/* One rule for both protocols: 0 means the Kconfig scan duration; anything else is clamped
 * to the Kconfig range (100..60000 ms) so a deadline can never wrap. */
static uint32_t scan_duration(uint32_t scan_ms)
{
    if (scan_ms == 0) {
        return ESPNOW_SEC_SCAN_DURATION_MS;
    }
    return scan_ms < 100 ? 100 : scan_ms > 60000 ? 60000 : scan_ms;
}

esp_err_t espnow_sec_node_provision(espnow_sec_node_t *node, uint32_t scan_ms)
{
    if (node == NULL || node->env == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    scan_ms = scan_duration(scan_ms);
    if (node->protocol == ESPNOW_SEC_PROTOCOL_V2) {
        return v2_initiator(node) ? espnow_sec_v2i_provision(node, scan_ms) : ESP_ERR_INVALID_STATE;
    }
    return espnow_sec_ini_provision(node, scan_ms);
}

esp_err_t espnow_sec_node_add_devices(espnow_sec_node_t *node, uint32_t scan_ms)
{
    if (node == NULL || node->env == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    if (node->protocol != ESPNOW_SEC_PROTOCOL_V2) {
        return ESP_ERR_NOT_SUPPORTED;
    }
    /* A v2 provisioning run already touches only newcomers (§9.5): members answer
     * PROVISIONED_BY_YOU with the current epoch and are left alone. */
    return v2_initiator(node) ? espnow_sec_v2i_provision(node, scan_duration(scan_ms))
                              : ESP_ERR_INVALID_STATE;
}

esp_err_t espnow_sec_node_rekey(espnow_sec_node_t *node)
{
    if (node == NULL || node->env == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    if (node->protocol != ESPNOW_SEC_PROTOCOL_V2) {
        return ESP_ERR_NOT_SUPPORTED;
    }
    return v2_initiator(node) ? espnow_sec_v2i_rekey(node) : ESP_ERR_INVALID_STATE;
}

esp_err_t espnow_sec_node_remove_device(espnow_sec_node_t *node, const uint8_t mac[ESPNOW_SEC_ADDR_LEN])
{
    if (node == NULL || node->env == NULL || mac == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    if (node->protocol != ESPNOW_SEC_PROTOCOL_V2) {
        return ESP_ERR_NOT_SUPPORTED;
    }
    return v2_initiator(node) ? espnow_sec_v2i_remove(node, mac) : ESP_ERR_INVALID_STATE;
}

void espnow_sec_node_get_status(const espnow_sec_node_t *node, espnow_sec_status_t *out)
{
    if (node == NULL || out == NULL) {
        return;
    }
    memset(out, 0, sizeof(*out));
    out->protocol = node->protocol;
    out->role = node->role;
    out->secured = espnow_sec_node_is_secured(node);
    out->rx_frames = node->stats.rx_frames;
    out->tx_frames = node->stats.tx_frames;
    out->rx_delivered = node->stats.rx_delivered;
    if (node->protocol != ESPNOW_SEC_PROTOCOL_V2) {
        out->drops[ESPNOW_SEC_DROP_MALFORMED] = node->stats.rx_malformed;
        out->drops[ESPNOW_SEC_DROP_FOREIGN] = node->stats.rx_foreign;
        out->drops[ESPNOW_SEC_DROP_AUTH] = node->stats.rx_auth_fail;
        out->drops[ESPNOW_SEC_DROP_DUPLICATE] = node->stats.rx_duplicate;
        out->drops[ESPNOW_SEC_DROP_STATE] = node->stats.rx_unexpected;
        out->drops[ESPNOW_SEC_DROP_PLAINTEXT] = node->stats.rx_plaintext_dropped;
        out->peers = node->role == ESPNOW_SEC_ROLE_INITIATOR ? node->u.ini.succeeded : 0;
        return;
    }
    const espnow_sec_epochs_t *ep = &node->v2.ep;
    out->epoch = ep->cur.epoch;
    out->staged_epoch = ep->stg.epoch;
    out->previous_epoch = ep->prev.epoch;
    out->tx_counter = node->v2.next;
    out->counter_reserved = node->v2.reserved;
    memcpy(out->drops, node->v2.drops, sizeof(out->drops));
    out->peers = node->role == ESPNOW_SEC_ROLE_INITIATOR ? espnow_sec_v2i_active_devices(node)
                                                         : espnow_sec_rp_synced(&ep->t_cur);
}

esp_err_t espnow_sec_node_send(espnow_sec_node_t *node, const uint8_t *dst, const uint8_t *data,
                               size_t len)
{
    if (node == NULL || node->env == NULL) {
        return ESP_ERR_INVALID_STATE;
    }
    if (node->protocol == ESPNOW_SEC_PROTOCOL_V2) {
        return espnow_sec_v2_data_send(node, dst, data, len);
    }
    return espnow_sec_data_send(node, dst, data, len);
}

size_t espnow_sec_node_max_payload(const espnow_sec_node_t *node)
{
    if (node != NULL && node->protocol == ESPNOW_SEC_PROTOCOL_V2) {
        return ESPNOW_SEC_V2_MAX_PAYLOAD;
    }
    return ESPNOW_SEC_MAX_PAYLOAD_COMPAT;
}

bool espnow_sec_node_is_secured(const espnow_sec_node_t *node)
{
    if (node != NULL && node->protocol == ESPNOW_SEC_PROTOCOL_V2) {
        return node->v2.ep.cur.epoch != 0;
    }
    return node != NULL && node->has_key;
}

esp_err_t espnow_sec_node_erase_key(espnow_sec_node_t *node)
{
    if (node == NULL || node->env == NULL) {
        return ESP_ERR_INVALID_STATE;
    }
    if (node->protocol == ESPNOW_SEC_PROTOCOL_V2) {
        /* v2: the key records go, the counter record never does (§7.3, §12). */
        if (node->role == ESPNOW_SEC_ROLE_INITIATOR) {
            return espnow_sec_v2i_busy(node) ? ESP_ERR_INVALID_STATE : espnow_sec_v2i_erase(node);
        }
        return espnow_sec_v2r_erase(node);
    }
    if (espnow_sec_ini_busy(node)) {
        return ESP_ERR_INVALID_STATE; /* a run is using the key */
    }
    esp_err_t err = node->env->store_erase(node->env->ctx, ESPNOW_SEC_KEY_RECORD_NAME);
    if (err != ESP_OK) {
        return err;
    }
    espnow_sec_drop_key(node);
    if (node->role == ESPNOW_SEC_ROLE_RESPONDER) {
        espnow_sec_rsp_wipe(node);
    }
    return ESP_OK;
}

void espnow_sec_node_get_stats(const espnow_sec_node_t *node, espnow_sec_stats_t *out)
{
    if (node != NULL && out != NULL) {
        *out = node->stats;
    }
}
