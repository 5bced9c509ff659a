/*
 * app.c - the espnow-security example: UART lines in, (encrypted) broadcast out,
 * received frames logged. Portable: only the espnow_sec API and ESP_LOGx.
 *
 * Its log lines are a contract: tests on boards and on the host match them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "esp_log.h"
#include "espnow_sec.h"
#include "sdkconfig.h"

static const char *TAG = "app_main";

/* Counters as in Espressif's example: they start at 0. send_count is touched only by the
   UART feeder, recv_count only by espnow_sec's task. */
static uint32_t s_send_count;
static uint32_t s_recv_count;
static espnow_sec_role_t s_role;

#define MAC_STR_LEN 18

static const char *mac_str(const uint8_t mac[ESPNOW_SEC_ADDR_LEN], char out[MAC_STR_LEN])
{
    snprintf(out, MAC_STR_LEN, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
             mac[4], mac[5]);
    return out;
}

/* Payload as text: bytes outside printable ASCII become '.', so a log line stays one line. */
static const char *printable(const uint8_t *data, size_t len, char *out, size_t cap)
{
    size_t n = len < cap - 1 ? len : cap - 1;
    for (size_t i = 0; i < n; i++) {
        out[i] = (data[i] >= 0x20 && data[i] < 0x7f) ? (char)data[i] : '.';
    }
    out[n] = '\0';
    return out;
}

void app_config_default(app_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
#if CONFIG_APP_ESPNOW_SEC_RESPONDER
    cfg->role = ESPNOW_SEC_ROLE_RESPONDER;
#else
    cfg->role = ESPNOW_SEC_ROLE_INITIATOR;
#endif
    cfg->pop = CONFIG_APP_ESPNOW_SESSION_POP;
    cfg->channel = CONFIG_APP_ESPNOW_CHANNEL;
}

static void on_event(const espnow_sec_event_t *event, void *ctx)
{
    (void)ctx;
    char mac[MAC_STR_LEN];
    switch (event->id) {
    case ESPNOW_SEC_EVENT_SCAN_DONE:
        ESP_LOGW(TAG, "espnow wait security num: %" PRIu32, event->data.scan.found);
        break;
    case ESPNOW_SEC_EVENT_PEER_SECURED:
        if (s_role == ESPNOW_SEC_ROLE_RESPONDER) {
            ESP_LOGI(TAG, "Get APP key");
        } else {
            ESP_LOGD(TAG, "%s secured", mac_str(event->data.peer.mac, mac));
        }
        break;
    case ESPNOW_SEC_EVENT_PEER_FAILED:
        ESP_LOGW(TAG, "handshake with %s failed: %s", mac_str(event->data.peer.mac, mac),
                 espnow_sec_fail_reason_str(event->data.peer.reason));
        break;
    case ESPNOW_SEC_EVENT_PROVISION_DONE:
        ESP_LOGI(TAG, "App key is sent to the device to complete, Spend time: %" PRIu32
                      "ms, Scan time: %" PRIu32 "ms",
                 event->data.done.spend_ms, event->data.done.scan_ms);
        ESP_LOGI(TAG, "Devices security completed, successed_num: %" PRIu32
                      ", unfinished_num: %" PRIu32,
                 event->data.done.succeeded, event->data.done.unfinished);
        break;
    }
}

static void on_recv(const espnow_sec_rx_info_t *info, const uint8_t *data, size_t len, void *ctx)
{
    (void)ctx;
    static char text[1471]; /* ESP-NOW v2 max + 1; callbacks run on one task */
    char mac[MAC_STR_LEN];
    printable(data, len, text, sizeof(text));
    mac_str(info->src, mac);
    if (info->protection == ESPNOW_SEC_RX_ENCRYPTED) {
        ESP_LOGI(TAG, "espnow_recv, <%" PRIu32 "> [%s][%u][%d][%u]: %s", s_recv_count++, mac,
                 (unsigned)info->channel, (int)info->rssi, (unsigned)len, text);
    } else {
        ESP_LOGW(TAG, "espnow_recv plaintext (not authenticated), <%" PRIu32
                      "> [%s][%u][%d][%u]: %s",
                 s_recv_count++, mac, (unsigned)info->channel, (int)info->rssi, (unsigned)len,
                 text);
    }
}

esp_err_t app_start(const app_config_t *cfg)
{
    s_role = cfg->role;
    espnow_sec_config_t sec = {
        .role = cfg->role,
        .pop = cfg->pop,
        .channel = cfg->channel,
        .on_recv = on_recv,
        .on_event = on_event,
        .user_ctx = NULL,
    };
    esp_err_t err = espnow_sec_start(&sec);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "espnow_sec_start failed: %s", espnow_sec_err_to_name(err));
        return err;
    }
    char mac[MAC_STR_LEN];
    ESP_LOGI(TAG, "ESP-NOW %s ready, mac %s, channel %u, %s",
             cfg->role == ESPNOW_SEC_ROLE_INITIATOR ? "initiator" : "responder",
             mac_str(cfg->mac, mac), (unsigned)cfg->channel,
             espnow_sec_is_secured() ? "secured" : "not secured");

    if (cfg->role == ESPNOW_SEC_ROLE_INITIATOR) {
        /* Responders are expected to be up already; the scan repeats its requests for the
           whole scan duration, so one that joins a little later is still found. */
        err = espnow_sec_provision(CONFIG_ESPNOW_SEC_SCAN_DURATION_MS);
        if (err != ESP_OK) {
            ESP_LOGE(TAG, "espnow_sec_provision failed: %s", espnow_sec_err_to_name(err));
        }
    }
    return ESP_OK;
}

static void log_too_long(size_t len)
{
    ESP_LOGE(TAG, "espnow_send failed: %u bytes, max payload is %u (%s)", (unsigned)len,
             (unsigned)espnow_sec_max_payload(),
             espnow_sec_err_to_name(ESP_ERR_ESPNOW_SEC_TOO_LONG));
}

void app_uart_line(const uint8_t *data, size_t len)
{
    static char text[1471];
    if (len == 0) {
        return; /* an empty line carries nothing to send */
    }
    esp_err_t err = espnow_sec_send(NULL, data, len);
    if (err == ESP_ERR_ESPNOW_SEC_TOO_LONG) {
        log_too_long(len);
        return;
    }
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "espnow_send failed: %s", espnow_sec_err_to_name(err));
        return;
    }
    ESP_LOGI(TAG, "espnow_send, count: %" PRIu32 ", size: %u, data: %s", s_send_count++,
             (unsigned)len, printable(data, len, text, sizeof(text)));
}

void app_uart_line_too_long(size_t len)
{
    log_too_long(len);
}

void app_stop(void)
{
    esp_err_t err = espnow_sec_stop();
    if (err != ESP_OK && err != ESP_ERR_INVALID_STATE) {
        ESP_LOGW(TAG, "espnow_sec_stop: %s", espnow_sec_err_to_name(err));
    }
}
