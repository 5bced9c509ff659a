/*
 * api.c - espnow_sec.h, implemented once for every platform over port/port.h.
 *
 * The core (core/node.h) is a single-threaded machine. This file serialises every
 * call into it:
 *
 *   radio callbacks --copy--> s.queue --> core task: node_on_frame / on_send_status
 *   app calls (send, provision, ...) --lock--> node, then wake the core task
 *   core task: wait on s.queue for at most the node's next deadline, tick the node
 *
 * The node's events and deliveries are not handed to the app while the lock is held
 * (an app callback may call espnow_sec_send()): they are copied into two bounded
 * rings, tagged with a sequence number, and the core task hands them out in order
 * after unlocking. Nothing is allocated per frame; the node itself is allocated once
 * in espnow_sec_start().
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h" /* espnow_sec_memzero */
#include "esp_log.h"
#include "espnow_sec.h"
#include "espnow_sec_limits.h"
#include "node.h"
#include "port.h"
#include "sdkconfig.h"

static const char *TAG = "espnow_sec";

#ifndef CONFIG_ESPNOW_SEC_MAX_RESPONDERS
#define CONFIG_ESPNOW_SEC_MAX_RESPONDERS 32
#endif
#ifndef CONFIG_ESPNOW_SEC_NVS_NAMESPACE
#define CONFIG_ESPNOW_SEC_NVS_NAMESPACE "espnow_sec"
#endif

/** Frames (received frames and send statuses) waiting for the core task (upstream qsize). */
#define QUEUE_DEPTH 32
/** Longest sleep of the core task: node.h asks for a tick at least every ESPNOW_SEC_TICK_MS. */
#if defined(ESPNOW_SEC_TICK_MS)
#define MAX_WAIT_MS ESPNOW_SEC_TICK_MS
#else
#define MAX_WAIT_MS 50
#endif
/** One provisioning run ends each responder with one event, plus SCAN_DONE / PROVISION_DONE. */
#define EVENT_RING (CONFIG_ESPNOW_SEC_MAX_RESPONDERS + 8)
/** One received frame yields at most one delivery, handed out before the next is processed. */
#define DELIVERY_RING 4

_Static_assert(ESPNOW_SEC_POP_MAX_LEN == ESPNOW_SEC_POP_MAX, "one PoP limit (espnow_sec_limits.h)");

typedef enum {
    ITEM_RX = 1,
    ITEM_TX_STATUS,
    ITEM_WAKE,
    ITEM_STOP,
} item_kind_t;

typedef struct {
    uint8_t kind;           /* item_kind_t */
    uint8_t channel;
    int8_t rssi;
    bool delivered;
    uint16_t len;
    uint8_t src[ESPNOW_SEC_ADDR_LEN];
    uint8_t dst[ESPNOW_SEC_ADDR_LEN];
    uint8_t data[ESPNOW_SEC_FRAME_MAX];
} item_t;

typedef struct {
    uint32_t seq;
    espnow_sec_event_t event;
} pending_event_t;

typedef struct {
    uint32_t seq;
    espnow_sec_rx_info_t info;
    uint16_t len;
    uint8_t data[ESPNOW_SEC_FRAME_MAX];
} pending_rx_t;

enum { STOPPED = 0, STARTING, RUNNING, STOPPING };

static struct {
    atomic_int state;
    /* Created on the first start and kept: an app call racing with stop never sees a
       freed lock. */
    espnow_sec_port_mutex_t *lock;
    espnow_sec_port_queue_t *queue;
    espnow_sec_port_task_t *task;

    /* Under `lock`. */
    espnow_sec_node_t *node;
    espnow_sec_env_t env;
    espnow_sec_config_t cfg;
    bool wake_pending;
    uint32_t seq;
    pending_event_t events[EVENT_RING];
    size_t ev_head, ev_count;
    pending_rx_t rx[DELIVERY_RING];
    size_t rx_head, rx_count;
    uint32_t events_dropped, deliveries_dropped;

    /* Radio callback context. */
    atomic_uint rx_queue_full;

    /* Core task only. */
    item_t item;
} s;

/* ------------------------------------------------------------------ env for the core */

static uint32_t env_now_ms(void *ctx)
{
    (void)ctx;
    return espnow_sec_port_clock_ms();
}

static void env_random(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    espnow_sec_port_random(buf, len);
}

static esp_err_t env_send(void *ctx, const uint8_t dst[ESPNOW_SEC_ADDR_LEN], const uint8_t *frame,
                          size_t len)
{
    (void)ctx;
    return espnow_sec_port_radio_send(dst, frame, len);
}

static esp_err_t env_store_load(void *ctx, const char *name, uint8_t *buf, size_t cap,
                                size_t *out_len)
{
    (void)ctx;
    return espnow_sec_port_store_load(name, buf, cap, out_len);
}

static esp_err_t env_store_save(void *ctx, const char *name, const uint8_t *buf, size_t len)
{
    (void)ctx;
    return espnow_sec_port_store_save(name, buf, len);
}

static esp_err_t env_store_erase(void *ctx, const char *name)
{
    (void)ctx;
    return espnow_sec_port_store_erase(name);
}

/* Called by the node with `lock` held: copy, hand out later from the core task. */
static void env_event(void *ctx, const espnow_sec_event_t *event)
{
    (void)ctx;
    if (s.ev_count == EVENT_RING) {
        s.events_dropped++;
        return;
    }
    pending_event_t *p = &s.events[(s.ev_head + s.ev_count) % EVENT_RING];
    p->seq = s.seq++;
    p->event = *event;
    s.ev_count++;
}

static void env_deliver(void *ctx, const espnow_sec_rx_info_t *info, const uint8_t *data,
                        size_t len)
{
    (void)ctx;
    if (s.rx_count == DELIVERY_RING || len > sizeof(s.rx[0].data)) {
        s.deliveries_dropped++;
        return;
    }
    pending_rx_t *p = &s.rx[(s.rx_head + s.rx_count) % DELIVERY_RING];
    p->seq = s.seq++;
    p->info = *info;
    p->len = (uint16_t)len;
    if (len) {
        memcpy(p->data, data, len);
    }
    s.rx_count++;
}

static void env_log(void *ctx, espnow_sec_log_level_t level, const char *fmt, va_list ap)
{
    (void)ctx;
    espnow_sec_port_log((int)level, TAG, fmt, ap);
}

/* ------------------------------------------------------------------ radio callbacks */

/* Wi-Fi task / air reader thread: copy and go. */
static void on_radio_rx(const uint8_t src[ESPNOW_SEC_ADDR_LEN],
                        const uint8_t dst[ESPNOW_SEC_ADDR_LEN], const uint8_t *data, size_t len,
                        int8_t rssi, uint8_t channel, void *ctx)
{
    (void)ctx;
    item_t it;
    if (len == 0 || len > sizeof(it.data)) {
        return; /* not an ESP-NOW v1 frame body; the core could not use it either */
    }
    it.kind = ITEM_RX;
    it.channel = channel;
    it.rssi = rssi;
    it.delivered = false;
    it.len = (uint16_t)len;
    memcpy(it.src, src, ESPNOW_SEC_ADDR_LEN);
    memcpy(it.dst, dst, ESPNOW_SEC_ADDR_LEN);
    memcpy(it.data, data, len);
    if (!espnow_sec_port_queue_send(s.queue, &it, 0)) {
        atomic_fetch_add(&s.rx_queue_full, 1); /* as a real radio under load: dropped */
    }
}

static void on_radio_tx(const uint8_t dst[ESPNOW_SEC_ADDR_LEN], bool delivered, void *ctx)
{
    (void)ctx;
    item_t it;
    it.kind = ITEM_TX_STATUS;
    it.channel = 0;
    it.rssi = 0;
    it.delivered = delivered;
    it.len = 0;
    memset(it.src, 0, sizeof(it.src));
    memcpy(it.dst, dst, ESPNOW_SEC_ADDR_LEN);
    if (!espnow_sec_port_queue_send(s.queue, &it, 0)) {
        atomic_fetch_add(&s.rx_queue_full, 1); /* the core's retransmit timer covers it */
    }
}

/* ------------------------------------------------------------------ core task */

static void wake_core(void)
{
    espnow_sec_port_mutex_lock(s.lock);
    bool post = !s.wake_pending;
    s.wake_pending = true;
    espnow_sec_port_mutex_unlock(s.lock);
    if (post) {
        item_t it = {.kind = ITEM_WAKE};
        /* Queue full: the core task is busy anyway and ticks and dispatches after each item. */
        (void)espnow_sec_port_queue_send(s.queue, &it, 0);
    }
}

/* Hand out queued events and deliveries in the order the node produced them. */
static void dispatch_pending(void)
{
    static pending_rx_t rx; /* core task only */
    for (;;) {
        espnow_sec_event_t ev;
        bool have_ev = false, have_rx = false;
        uint32_t dropped_ev = 0, dropped_rx = 0;

        espnow_sec_port_mutex_lock(s.lock);
        if (s.ev_count && s.rx_count) {
            /* seq wraps only after 2^32 items; compare by difference */
            if ((int32_t)(s.events[s.ev_head].seq - s.rx[s.rx_head].seq) < 0) {
                have_ev = true;
            } else {
                have_rx = true;
            }
        } else if (s.ev_count) {
            have_ev = true;
        } else if (s.rx_count) {
            have_rx = true;
        }
        if (have_ev) {
            ev = s.events[s.ev_head].event;
            s.ev_head = (s.ev_head + 1) % EVENT_RING;
            s.ev_count--;
        } else if (have_rx) {
            rx = s.rx[s.rx_head];
            s.rx_head = (s.rx_head + 1) % DELIVERY_RING;
            s.rx_count--;
        }
        dropped_ev = s.events_dropped;
        dropped_rx = s.deliveries_dropped;
        s.events_dropped = 0;
        s.deliveries_dropped = 0;
        espnow_sec_config_t cfg = s.cfg;
        espnow_sec_port_mutex_unlock(s.lock);

        if (dropped_ev) {
            ESP_LOGW(TAG, "%u security events dropped: the app's event callback is too slow",
                     (unsigned)dropped_ev);
        }
        if (dropped_rx) {
            ESP_LOGW(TAG, "%u received frames dropped: the app's receive callback is too slow",
                     (unsigned)dropped_rx);
        }
        if (have_ev) {
            espnow_sec_port_event(&ev);
            if (cfg.on_event) {
                cfg.on_event(&ev, cfg.user_ctx);
            }
        } else if (have_rx) {
            if (cfg.on_recv) {
                cfg.on_recv(&rx.info, rx.data, rx.len, cfg.user_ctx);
            }
            espnow_sec_memzero(&rx, sizeof(rx)); /* decrypted data: not left lying around */
        } else {
            return;
        }
    }
}

static void core_task(void *arg)
{
    (void)arg;
    uint32_t wait_ms = 0;
    bool stop = false;
    while (!stop) {
        bool got = espnow_sec_port_queue_recv(s.queue, &s.item, wait_ms);

        espnow_sec_port_mutex_lock(s.lock);
        if (got) {
            switch ((item_kind_t)s.item.kind) {
            case ITEM_RX:
                espnow_sec_node_on_frame(s.node, s.item.src, s.item.dst, s.item.data, s.item.len,
                                         s.item.rssi, s.item.channel);
                break;
            case ITEM_TX_STATUS:
                espnow_sec_node_on_send_status(s.node, s.item.dst, s.item.delivered);
                break;
            case ITEM_WAKE:
                s.wake_pending = false;
                break;
            case ITEM_STOP:
                stop = true;
                break;
            }
        }
        uint32_t next = espnow_sec_node_tick(s.node);
        espnow_sec_port_mutex_unlock(s.lock);

        dispatch_pending();

        unsigned full = atomic_exchange(&s.rx_queue_full, 0);
        if (full) {
            ESP_LOGW(TAG, "radio queue full: %u frames dropped", full);
        }
        wait_ms = next < MAX_WAIT_MS ? next : MAX_WAIT_MS;
    }
}

/* ------------------------------------------------------------------ public API */

static esp_err_t create_primitives(void)
{
    if (!s.lock && espnow_sec_port_mutex_create(&s.lock) != ESP_OK) {
        return ESP_ERR_NO_MEM;
    }
    if (!s.queue && espnow_sec_port_queue_create(QUEUE_DEPTH, sizeof(item_t), &s.queue) != ESP_OK) {
        return ESP_ERR_NO_MEM;
    }
    return ESP_OK;
}

esp_err_t espnow_sec_start(const espnow_sec_config_t *cfg)
{
    if (!cfg || !cfg->pop || cfg->channel < 1 || cfg->channel > 14 ||
        (cfg->role != ESPNOW_SEC_ROLE_INITIATOR && cfg->role != ESPNOW_SEC_ROLE_RESPONDER)) {
        return ESP_ERR_INVALID_ARG;
    }
    size_t pop_len = strlen(cfg->pop);
    if (pop_len > ESPNOW_SEC_POP_MAX_LEN) {
        ESP_LOGE(TAG, "the PoP is %zu bytes, at most %d are accepted (ESPNOW_SEC_POP_MAX_LEN)", pop_len,
                 ESPNOW_SEC_POP_MAX_LEN);
        return ESP_ERR_INVALID_ARG;
    }
    if (pop_len == 0) {
        ESP_LOGW(TAG, "PoP is empty: the handshake is unauthenticated and open to man-in-the-middle");
    }
    int expected = STOPPED;
    if (!atomic_compare_exchange_strong(&s.state, &expected, STARTING)) {
        return ESP_ERR_INVALID_STATE;
    }

    esp_err_t err = create_primitives();
    if (err != ESP_OK) {
        atomic_store(&s.state, STOPPED);
        return err;
    }
    /* Leftovers of a previous run (a status for a frame sent before stop). */
    while (espnow_sec_port_queue_recv(s.queue, &s.item, 0)) {
    }

    espnow_sec_node_config_t ncfg = {
        .role = cfg->role,
        .channel = cfg->channel,
        .pop = cfg->pop,
        .protocol = cfg->protocol,
    };
    espnow_sec_node_t *node = NULL;
    bool store_open = false, radio_open = false;

    err = espnow_sec_port_radio_get_mac(ncfg.self_mac);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "cannot read this node's MAC address: %s", espnow_sec_err_to_name(err));
        goto fail;
    }
    err = espnow_sec_port_store_open(CONFIG_ESPNOW_SEC_NVS_NAMESPACE);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "cannot open the key store \"%s\": %s", CONFIG_ESPNOW_SEC_NVS_NAMESPACE,
                 espnow_sec_err_to_name(err));
        goto fail;
    }
    store_open = true;

    node = calloc(1, espnow_sec_node_size());
    if (!node) {
        err = ESP_ERR_NO_MEM;
        goto fail;
    }

    espnow_sec_port_mutex_lock(s.lock);
    s.env = (espnow_sec_env_t){
        .ctx = NULL,
        .now_ms = env_now_ms,
        .random = env_random,
        .send = env_send,
        .store_load = env_store_load,
        .store_save = env_store_save,
        .store_erase = env_store_erase,
        .event = env_event,
        .deliver = env_deliver,
        .log = env_log,
    };
    s.cfg = *cfg;
    s.cfg.pop = NULL; /* copied by the node; the caller's string need not outlive start */
    s.wake_pending = false;
    s.ev_head = s.ev_count = 0;
    s.rx_head = s.rx_count = 0;
    s.events_dropped = s.deliveries_dropped = 0;
    atomic_store(&s.rx_queue_full, 0);
    espnow_sec_port_mutex_unlock(s.lock);

    espnow_sec_port_radio_config_t rcfg = {
        .channel = cfg->channel,
        .on_rx = on_radio_rx,
        .on_tx = on_radio_tx,
        .ctx = NULL,
    };
    err = espnow_sec_port_radio_open(&rcfg);
    if (err != ESP_OK) {
        if (err != ESP_ERR_INVALID_STATE) {
            err = ESP_ERR_ESPNOW_SEC_RADIO;
        }
        goto fail;
    }
    radio_open = true;

    espnow_sec_port_mutex_lock(s.lock);
    err = espnow_sec_node_init(node, &s.env, &ncfg);
    if (err == ESP_OK) {
        s.node = node;
    }
    espnow_sec_port_mutex_unlock(s.lock);
    if (err != ESP_OK) {
        if (err == ESP_ERR_ESPNOW_SEC_STORE_CORRUPT) {
            ESP_LOGE(TAG, "the stored key record is damaged; it was left untouched. "
                          "Erase it with espnow_sec_erase_key() and provision again");
        } else {
            ESP_LOGE(TAG, "core init failed: %s", espnow_sec_err_to_name(err));
        }
        goto fail;
    }

    err = espnow_sec_port_task_create(core_task, NULL, "espnow_sec", &s.task);
    if (err != ESP_OK) {
        espnow_sec_port_mutex_lock(s.lock);
        espnow_sec_node_deinit(s.node);
        s.node = NULL;
        espnow_sec_port_mutex_unlock(s.lock);
        goto fail;
    }
    atomic_store(&s.state, RUNNING);
    return ESP_OK;

fail:
    if (radio_open) {
        espnow_sec_port_radio_close();
    }
    if (store_open) {
        espnow_sec_port_store_close();
    }
    free(node);
    atomic_store(&s.state, STOPPED);
    return err;
}

esp_err_t espnow_sec_stop(void)
{
    int expected = RUNNING;
    if (!atomic_compare_exchange_strong(&s.state, &expected, STOPPING)) {
        return ESP_ERR_INVALID_STATE;
    }
    if (espnow_sec_port_task_is_current(s.task)) {
        /* Joining ourselves would deadlock: refuse, as documented in espnow_sec.h. */
        atomic_store(&s.state, RUNNING);
        return ESP_ERR_INVALID_STATE;
    }
    item_t stop = {.kind = ITEM_STOP};
    (void)espnow_sec_port_queue_send(s.queue, &stop, ESPNOW_SEC_PORT_WAIT_FOREVER);
    espnow_sec_port_task_join(s.task);
    s.task = NULL;

    /* The node goes first, under the lock: nothing can use it while the radio closes. */
    espnow_sec_port_mutex_lock(s.lock);
    espnow_sec_node_t *node = s.node;
    s.node = NULL;
    if (node) {
        espnow_sec_node_deinit(node); /* wipes keys in RAM */
    }
    s.ev_count = s.rx_count = 0;
    espnow_sec_memzero(s.rx, sizeof(s.rx));
    espnow_sec_port_mutex_unlock(s.lock);
    free(node);

    espnow_sec_port_radio_close(); /* no callback runs after this */

    espnow_sec_port_store_close();
    atomic_store(&s.state, STOPPED);
    return ESP_OK;
}

esp_err_t espnow_sec_provision(uint32_t scan_ms)
{
    if (atomic_load(&s.state) != RUNNING) {
        return ESP_ERR_INVALID_STATE;
    }
    esp_err_t err = ESP_ERR_INVALID_STATE; /* scan_ms: 0 = Kconfig default, clamped by the node */
    espnow_sec_port_mutex_lock(s.lock);
    if (s.node) {
        err = espnow_sec_node_provision(s.node, scan_ms);
    }
    espnow_sec_port_mutex_unlock(s.lock);
    wake_core();
    return err;
}

esp_err_t espnow_sec_send(const uint8_t *dst, const uint8_t *data, size_t len)
{
    if (!data) {
        return ESP_ERR_INVALID_ARG;
    }
    if (atomic_load(&s.state) != RUNNING) {
        return ESP_ERR_INVALID_STATE;
    }
    esp_err_t err = ESP_ERR_INVALID_STATE;
    espnow_sec_port_mutex_lock(s.lock);
    if (s.node) {
        err = espnow_sec_node_send(s.node, dst, data, len);
    }
    espnow_sec_port_mutex_unlock(s.lock);
    wake_core();
    return err;
}

size_t espnow_sec_max_payload(void)
{
    size_t max = ESPNOW_SEC_PROTOCOL_KCONFIG == ESPNOW_SEC_PROTOCOL_V2 ? ESPNOW_SEC_V2_MAX_PAYLOAD
                                                                      : ESPNOW_SEC_MAX_PAYLOAD_COMPAT;
    if (atomic_load(&s.state) == RUNNING) {
        espnow_sec_port_mutex_lock(s.lock);
        if (s.node) {
            max = espnow_sec_node_max_payload(s.node);
        }
        espnow_sec_port_mutex_unlock(s.lock);
    }
    return max;
}

bool espnow_sec_is_secured(void)
{
    bool secured = false;
    if (atomic_load(&s.state) == RUNNING) {
        espnow_sec_port_mutex_lock(s.lock);
        secured = s.node && espnow_sec_node_is_secured(s.node);
        espnow_sec_port_mutex_unlock(s.lock);
    }
    return secured;
}

esp_err_t espnow_sec_erase_key(void)
{
    int state = atomic_load(&s.state);
    if (state == RUNNING) {
        esp_err_t err = ESP_ERR_INVALID_STATE;
        espnow_sec_port_mutex_lock(s.lock);
        if (s.node) {
            err = espnow_sec_node_erase_key(s.node);
        }
        espnow_sec_port_mutex_unlock(s.lock);
        return err;
    }
    if (state != STOPPED) {
        return ESP_ERR_INVALID_STATE;
    }
    /* Not running (e.g. start refused a damaged record): clear the whole namespace so the
       next start begins unprovisioned. */
    esp_err_t err = espnow_sec_port_store_open(CONFIG_ESPNOW_SEC_NVS_NAMESPACE);
    if (err != ESP_OK) {
        return err;
    }
    err = espnow_sec_port_store_erase_all();
    espnow_sec_port_store_close();
    return err;
}

/* Run `fn` on the node under the lock, then wake the core task (it may have frames to send). */
static esp_err_t with_node(esp_err_t (*fn)(espnow_sec_node_t *node, const void *arg), const void *arg)
{
    if (atomic_load(&s.state) != RUNNING) {
        return ESP_ERR_INVALID_STATE;
    }
    esp_err_t err = ESP_ERR_INVALID_STATE;
    espnow_sec_port_mutex_lock(s.lock);
    if (s.node) {
        err = fn(s.node, arg);
    }
    espnow_sec_port_mutex_unlock(s.lock);
    wake_core();
    return err;
}

static esp_err_t do_rekey(espnow_sec_node_t *node, const void *arg)
{
    (void)arg;
    return espnow_sec_node_rekey(node);
}

static esp_err_t do_add(espnow_sec_node_t *node, const void *arg)
{
    return espnow_sec_node_add_devices(node, *(const uint32_t *)arg);
}

static esp_err_t do_remove(espnow_sec_node_t *node, const void *arg)
{
    return espnow_sec_node_remove_device(node, (const uint8_t *)arg);
}

static esp_err_t do_status(espnow_sec_node_t *node, const void *arg)
{
    espnow_sec_node_get_status(node, (espnow_sec_status_t *)arg);
    return ESP_OK;
}

esp_err_t espnow_sec_rekey(void)
{
    return with_node(do_rekey, NULL);
}

esp_err_t espnow_sec_add_devices(uint32_t scan_ms)
{
    return with_node(do_add, &scan_ms);
}

esp_err_t espnow_sec_remove_device(const uint8_t mac[ESPNOW_SEC_ADDR_LEN])
{
    if (mac == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    return with_node(do_remove, mac);
}

esp_err_t espnow_sec_get_status(espnow_sec_status_t *status)
{
    if (status == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    return with_node(do_status, status);
}

/* espnow_sec_err_to_name() and espnow_sec_fail_reason_str() are pure: core/errors.c. */
