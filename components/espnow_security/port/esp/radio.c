/*
 * radio.c (ESP32) - the ESP-NOW link: Wi-Fi station on a fixed channel, esp_now callbacks.
 *
 * Bring-up follows ESP-IDF's ESP-NOW example: netif and default event loop (either may
 * already exist), Wi-Fi in station mode with its configuration kept in RAM, power save off
 * (a sleeping station misses broadcasts), the configured channel, then esp_now_init(). An
 * app that already runs Wi-Fi keeps it: the port then only needs the station interface
 * and leaves mode, start and stop to the app.
 *
 * The ESP-NOW callbacks run on the Wi-Fi task. They only copy the frame into api.c's queue
 * (port.h threading contract); no crypto and no blocking there.
 *
 * ESP-NOW sends unicast frames only to peers in its list (at most ESP_NOW_MAX_TOTAL_PEER_NUM,
 * 20, broadcast included). Unicast peers are added on first use and the least recently used
 * one is removed when the list is full. Peers the app added itself are used, never removed.
 *
 * API differences handled here (components/esp_wifi/include/esp_now.h):
 *   v5.1 .. v5.4  send callback (const uint8_t *mac_addr, esp_now_send_status_t)
 *   v5.5 ..       send callback (const esp_now_send_info_t *tx_info, esp_now_send_status_t)
 *   v5.1 ..       receive callback (const esp_now_recv_info_t *, const uint8_t *, int)
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "esp_err.h"
#include "esp_event.h"
#include "esp_idf_version.h"
#include "esp_log.h"
#include "esp_mac.h"
#include "esp_netif.h"
#include "esp_now.h"
#include "esp_timer.h"
#include "esp_wifi.h"
#include "freertos/FreeRTOS.h"
#include "freertos/semphr.h"
#include "freertos/task.h"

#include "espnow_sec.h"
#include "port.h"

#if ESP_IDF_VERSION < ESP_IDF_VERSION_VAL(5, 1, 0)
#error "espnow_security needs ESP-IDF v5.1 or later (esp_now_recv_info_t receive callback)"
#endif

_Static_assert(ESPNOW_SEC_ADDR_LEN == ESP_NOW_ETH_ALEN, "MAC length differs from ESP-NOW's");
_Static_assert(ESPNOW_SEC_FRAME_MAX == ESP_NOW_MAX_DATA_LEN,
               "frames are sized for ESP-NOW v1 (ESP_NOW_MAX_DATA_LEN, 250 bytes)");

/** One entry of ESP-NOW's peer list is the broadcast peer; the rest may hold unicast peers. */
#define UNICAST_PEERS (ESP_NOW_MAX_TOTAL_PEER_NUM - 1)
/** esp_now_send() reports ESP_ERR_ESPNOW_NO_MEM while Wi-Fi's TX buffers are full. */
#define SEND_NO_MEM_RETRIES 3
/** At most one "send failed" warning per this many ms (a dead link must not flood the log). */
#define SEND_WARN_INTERVAL_MS 1000

static const char *TAG = "espnow_sec";

static const uint8_t BROADCAST[ESPNOW_SEC_ADDR_LEN] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t NO_ADDR[ESPNOW_SEC_ADDR_LEN] = {0};

typedef struct {
    uint8_t mac[ESPNOW_SEC_ADDR_LEN];
    uint32_t last_use; /* s.use_clock when last sent to */
    bool used;
} peer_t;

static struct {
    /* Set in open, cleared in close; api.c never sends concurrently with either. */
    bool open;
    bool own_wifi;      /* this port initialised (and started) Wi-Fi, so it stops it too */
    bool espnow_inited;
    espnow_sec_port_radio_config_t cfg;

    /* Callback gate: see radio_teardown(). */
    atomic_bool accepting;
    atomic_int in_callback;

    /* Peer table and esp_now_send(); callers may be the core task or an app task. */
    SemaphoreHandle_t lock;
    StaticSemaphore_t lock_buf;
    uint32_t use_clock;
    peer_t peers[UNICAST_PEERS];
    uint32_t last_warn_ms;
    uint32_t warn_suppressed;
} s;

static bool is_broadcast(const uint8_t mac[ESPNOW_SEC_ADDR_LEN])
{
    return memcmp(mac, BROADCAST, ESPNOW_SEC_ADDR_LEN) == 0;
}

/* ------------------------------------------------------------------ callbacks (Wi-Fi task) */

static void recv_cb(const esp_now_recv_info_t *info, const uint8_t *data, int data_len)
{
    atomic_fetch_add(&s.in_callback, 1);
    if (atomic_load(&s.accepting) && info && info->src_addr && info->des_addr && data &&
        data_len > 0) {
        int8_t rssi = 0;
        uint8_t channel = s.cfg.channel;
        if (info->rx_ctrl) {
            /* Present on every target: wifi_pkt_rx_ctrl_t, or esp_wifi_rxctrl_t on Wi-Fi 6
               chips (ESP32-C5/C6/C61); both have `rssi` (dBm) and `channel`. */
            rssi = (int8_t)info->rx_ctrl->rssi;
            channel = (uint8_t)info->rx_ctrl->channel;
        }
        /* The real length: api.c copies it and refuses anything over ESPNOW_SEC_FRAME_MAX
           (an ESP-NOW v2 sender can send up to ESP_NOW_MAX_DATA_LEN_V2). */
        s.cfg.on_rx(info->src_addr, info->des_addr, data, (size_t)data_len, rssi, channel,
                    s.cfg.ctx);
    }
    atomic_fetch_sub(&s.in_callback, 1);
}

static void tx_done(const uint8_t *dst, esp_now_send_status_t status)
{
    atomic_fetch_add(&s.in_callback, 1);
    if (atomic_load(&s.accepting)) {
        /* A status without an address still completes a send; it matches no peer. */
        s.cfg.on_tx(dst ? dst : NO_ADDR, status == ESP_NOW_SEND_SUCCESS, s.cfg.ctx);
    }
    atomic_fetch_sub(&s.in_callback, 1);
}

#if ESP_IDF_VERSION >= ESP_IDF_VERSION_VAL(5, 5, 0)
/* v5.5+: esp_now_send_info_t (= wifi_tx_info_t). `status` equals tx_info->tx_status. */
static void send_cb(const esp_now_send_info_t *tx_info, esp_now_send_status_t status)
{
    tx_done(tx_info ? tx_info->des_addr : NULL, status);
}
#else
static void send_cb(const uint8_t *mac_addr, esp_now_send_status_t status)
{
    tx_done(mac_addr, status);
}
#endif

/* ------------------------------------------------------------------ MAC */

esp_err_t espnow_sec_port_radio_get_mac(uint8_t mac[ESPNOW_SEC_ADDR_LEN])
{
    if (!mac) {
        return ESP_ERR_INVALID_ARG;
    }
    /* If Wi-Fi already runs, ask it: that honours an esp_wifi_set_mac() by the app.
       Otherwise the station MAC derived from eFuse, which Wi-Fi will use. */
    wifi_mode_t mode;
    if (esp_wifi_get_mode(&mode) == ESP_OK && esp_wifi_get_mac(WIFI_IF_STA, mac) == ESP_OK) {
        return ESP_OK;
    }
    return esp_read_mac(mac, ESP_MAC_WIFI_STA);
}

/* ------------------------------------------------------------------ bring-up */

static esp_err_t wifi_up(uint8_t channel)
{
    esp_err_t err = esp_netif_init(); /* returns ESP_OK when already initialised */
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "esp_netif_init failed: %s", esp_err_to_name(err));
        return err;
    }
    err = esp_event_loop_create_default();
    if (err != ESP_OK && err != ESP_ERR_INVALID_STATE) { /* INVALID_STATE: the app made it */
        ESP_LOGE(TAG, "cannot create the default event loop: %s", esp_err_to_name(err));
        return err;
    }

    wifi_mode_t mode;
    if (esp_wifi_get_mode(&mode) == ESP_OK) {
        /* The app owns Wi-Fi (e.g. it is also connected to an AP). Use it as it is. */
        s.own_wifi = false;
        if (mode != WIFI_MODE_STA && mode != WIFI_MODE_APSTA) {
            ESP_LOGE(TAG, "Wi-Fi runs in mode %d; ESP-NOW security uses the station interface: "
                          "set WIFI_MODE_STA or WIFI_MODE_APSTA before espnow_sec_start()",
                     (int)mode);
            return ESP_ERR_INVALID_STATE;
        }
    } else {
        wifi_init_config_t wcfg = WIFI_INIT_CONFIG_DEFAULT();
        err = esp_wifi_init(&wcfg);
        if (err != ESP_OK) {
            ESP_LOGE(TAG, "esp_wifi_init failed: %s", esp_err_to_name(err));
            return err;
        }
        s.own_wifi = true;
        /* Nothing to remember across reboots: keep Wi-Fi's configuration out of NVS. */
        if ((err = esp_wifi_set_storage(WIFI_STORAGE_RAM)) != ESP_OK ||
            (err = esp_wifi_set_mode(WIFI_MODE_STA)) != ESP_OK ||
            (err = esp_wifi_start()) != ESP_OK) {
            ESP_LOGE(TAG, "cannot start Wi-Fi in station mode: %s", esp_err_to_name(err));
            return err;
        }
    }

    /* A station in modem sleep misses frames sent while its radio is off. With Bluetooth
       coexistence Wi-Fi refuses WIFI_PS_NONE: keep going, frames may then be lost. */
    err = esp_wifi_set_ps(WIFI_PS_NONE);
    if (err != ESP_OK) {
        ESP_LOGW(TAG, "cannot turn Wi-Fi power save off (%s); frames may be missed",
                 esp_err_to_name(err));
    }

    /* After esp_wifi_start(): the channel is not kept across a Wi-Fi restart. */
    err = esp_wifi_set_channel(channel, WIFI_SECOND_CHAN_NONE);
    if (err == ESP_ERR_WIFI_NOT_STARTED) {
        ESP_LOGE(TAG, "Wi-Fi is initialised but not started: call esp_wifi_start() before "
                      "espnow_sec_start(), or leave Wi-Fi to this component");
        return err;
    }
    if (err != ESP_OK) {
        if (s.own_wifi) {
            ESP_LOGE(TAG, "cannot set Wi-Fi channel %u: %s", channel, esp_err_to_name(err));
            return err;
        }
        /* A station connected to an AP must stay on the AP's channel. */
        ESP_LOGW(TAG, "cannot set Wi-Fi channel %u (%s): the station is probably connected to "
                      "an AP and stays on its channel", channel, esp_err_to_name(err));
    }
    uint8_t primary = 0;
    wifi_second_chan_t second;
    if (esp_wifi_get_channel(&primary, &second) == ESP_OK && primary != channel) {
        ESP_LOGW(TAG, "radio is on channel %u, not %u: nodes on channel %u will not hear it",
                 primary, channel, channel);
    }
    return ESP_OK;
}

static esp_err_t add_peer(const uint8_t mac[ESPNOW_SEC_ADDR_LEN])
{
    esp_now_peer_info_t peer;
    memset(&peer, 0, sizeof(peer));
    memcpy(peer.peer_addr, mac, ESPNOW_SEC_ADDR_LEN);
    peer.channel = 0;          /* the current channel, whatever esp_wifi_set_channel() chose */
    peer.ifidx = WIFI_IF_STA;
    peer.encrypt = false;      /* frames are protected by this component, not by ESP-NOW's LMK */
    esp_err_t err = esp_now_add_peer(&peer);
    return err == ESP_ERR_ESPNOW_EXIST ? ESP_OK : err;
}

/* Undo whatever open did, in reverse. After it no callback runs and none will. */
static void radio_teardown(void)
{
    /* Gate first, then unregister, then wait for callbacks already inside: a callback
       that increments in_callback and still sees `accepting` true is waited for. */
    atomic_store(&s.accepting, false);
    if (s.espnow_inited) {
        (void)esp_now_unregister_recv_cb();
        (void)esp_now_unregister_send_cb();
        while (atomic_load(&s.in_callback) != 0) {
            vTaskDelay(1);
        }
        (void)esp_now_deinit(); /* also empties the peer list */
        s.espnow_inited = false;
    }
    if (s.own_wifi) {
        (void)esp_wifi_stop();
        (void)esp_wifi_deinit();
        s.own_wifi = false;
    }
    memset(s.peers, 0, sizeof(s.peers));
    /* The netif layer and the default event loop stay: other components may use them. */
}

esp_err_t espnow_sec_port_radio_open(const espnow_sec_port_radio_config_t *cfg)
{
    if (!cfg || !cfg->on_rx || !cfg->on_tx || cfg->channel < 1 || cfg->channel > 14) {
        return ESP_ERR_INVALID_ARG;
    }
    if (s.open) {
        return ESP_ERR_INVALID_STATE;
    }
    if (!s.lock) {
        s.lock = xSemaphoreCreateMutexStatic(&s.lock_buf);
    }
    s.cfg = *cfg;
    s.use_clock = 0;
    s.warn_suppressed = 0;
    memset(s.peers, 0, sizeof(s.peers));

    esp_err_t err = wifi_up(cfg->channel);
    if (err != ESP_OK) {
        goto fail;
    }
    err = esp_now_init();
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "esp_now_init failed: %s", esp_err_to_name(err));
        goto fail;
    }
    s.espnow_inited = true;
    atomic_store(&s.accepting, true);
    if ((err = esp_now_register_recv_cb(recv_cb)) != ESP_OK ||
        (err = esp_now_register_send_cb(send_cb)) != ESP_OK) {
        ESP_LOGE(TAG, "cannot register the ESP-NOW callbacks: %s", esp_err_to_name(err));
        goto fail;
    }
    err = add_peer(BROADCAST);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "cannot add the ESP-NOW broadcast peer: %s", esp_err_to_name(err));
        goto fail;
    }
    s.open = true;
    ESP_LOGD(TAG, "ESP-NOW up on channel %u (%s Wi-Fi)", cfg->channel,
             s.own_wifi ? "own" : "the app's");
    return ESP_OK;

fail:
    radio_teardown();
    return ESP_ERR_ESPNOW_SEC_RADIO;
}

void espnow_sec_port_radio_close(void)
{
    if (!s.open) {
        return;
    }
    xSemaphoreTake(s.lock, portMAX_DELAY); /* no send is half-way through */
    s.open = false;
    xSemaphoreGive(s.lock);
    radio_teardown();
}

/* ------------------------------------------------------------------ peers */

static peer_t *find_peer(const uint8_t mac[ESPNOW_SEC_ADDR_LEN])
{
    for (size_t i = 0; i < UNICAST_PEERS; i++) {
        if (s.peers[i].used && memcmp(s.peers[i].mac, mac, ESPNOW_SEC_ADDR_LEN) == 0) {
            return &s.peers[i];
        }
    }
    return NULL;
}

/* The least recently used of our peers, or NULL if we hold none. */
static peer_t *lru_peer(void)
{
    peer_t *lru = NULL;
    for (size_t i = 0; i < UNICAST_PEERS; i++) {
        peer_t *p = &s.peers[i];
        if (p->used && (!lru || (int32_t)(p->last_use - lru->last_use) < 0)) {
            lru = p;
        }
    }
    return lru;
}

static void evict(peer_t *p)
{
    esp_err_t err = esp_now_del_peer(p->mac);
    if (err != ESP_OK && err != ESP_ERR_ESPNOW_NOT_FOUND) {
        ESP_LOGD(TAG, "esp_now_del_peer " MACSTR ": %s", MAC2STR(p->mac), esp_err_to_name(err));
    }
    p->used = false;
}

/* Make `mac` an ESP-NOW peer so esp_now_send() accepts it. Called with s.lock held. */
static esp_err_t ensure_peer(const uint8_t mac[ESPNOW_SEC_ADDR_LEN])
{
    peer_t *p = find_peer(mac);
    if (p) {
        p->last_use = ++s.use_clock;
        /* Still there unless the app deleted it; then add it back. */
        return esp_now_is_peer_exist(mac) ? ESP_OK : add_peer(mac);
    }
    if (esp_now_is_peer_exist(mac)) {
        return ESP_OK; /* the app's own peer: use it, never evict it */
    }
    for (size_t i = 0; i < UNICAST_PEERS && !p; i++) {
        if (!s.peers[i].used) {
            p = &s.peers[i];
        }
    }
    if (!p) {
        p = lru_peer();
        evict(p);
    }
    esp_err_t err = add_peer(mac);
    if (err == ESP_ERR_ESPNOW_FULL) {
        /* The app's peers take part of the list: make room from ours, if we hold any. */
        peer_t *victim = lru_peer();
        if (victim) {
            evict(victim);
            err = add_peer(mac);
        }
    }
    if (err != ESP_OK) {
        ESP_LOGW(TAG, "cannot add ESP-NOW peer " MACSTR ": %s", MAC2STR(mac),
                 esp_err_to_name(err));
        return err;
    }
    memcpy(p->mac, mac, ESPNOW_SEC_ADDR_LEN);
    p->used = true;
    p->last_use = ++s.use_clock;
    return ESP_OK;
}

/* ------------------------------------------------------------------ send */

static void warn_send_failed(const uint8_t dst[ESPNOW_SEC_ADDR_LEN], esp_err_t err)
{
    uint32_t now = (uint32_t)(esp_timer_get_time() / 1000);
    if (s.last_warn_ms != 0 && now - s.last_warn_ms < SEND_WARN_INTERVAL_MS) {
        s.warn_suppressed++;
        return;
    }
    ESP_LOGW(TAG, "esp_now_send to " MACSTR " failed: %s (%u similar warnings suppressed)",
             MAC2STR(dst), esp_err_to_name(err), (unsigned)s.warn_suppressed);
    s.last_warn_ms = now ? now : 1;
    s.warn_suppressed = 0;
}

esp_err_t espnow_sec_port_radio_send(const uint8_t dst[ESPNOW_SEC_ADDR_LEN], const uint8_t *frame,
                                     size_t len)
{
    if (!dst || !frame) {
        return ESP_ERR_INVALID_ARG;
    }
    if (len == 0 || len > ESPNOW_SEC_FRAME_MAX) {
        return ESP_ERR_INVALID_SIZE;
    }
    if (!s.open) {
        return ESP_ERR_INVALID_STATE;
    }
    xSemaphoreTake(s.lock, portMAX_DELAY);
    esp_err_t err = s.open ? ESP_OK : ESP_ERR_INVALID_STATE;
    if (err == ESP_OK && !is_broadcast(dst)) {
        err = ensure_peer(dst);
    }
    if (err == ESP_OK) {
        bool re_added = false;
        for (int attempt = 0;; attempt++) {
            err = esp_now_send(dst, frame, len);
            if (err == ESP_ERR_ESPNOW_NO_MEM && attempt < SEND_NO_MEM_RETRIES) {
                vTaskDelay(1); /* let the Wi-Fi task drain its TX buffers */
                continue;
            }
            if (err == ESP_ERR_ESPNOW_NOT_FOUND && !re_added) {
                /* The peer vanished (the app deleted it): forget our entry, add it again. */
                re_added = true;
                peer_t *p = find_peer(dst);
                if (p) {
                    p->used = false;
                }
                if ((is_broadcast(dst) ? add_peer(dst) : ensure_peer(dst)) == ESP_OK) {
                    continue;
                }
            }
            break;
        }
    }
    if (err != ESP_OK && err != ESP_ERR_INVALID_STATE) {
        warn_send_failed(dst, err);
        err = ESP_ERR_ESPNOW_SEC_RADIO;
    }
    xSemaphoreGive(s.lock);
    return err;
}
