/*
 * app.c - the espnow-security example: UART lines in, (encrypted) broadcast out,
 * received frames logged. Portable: only the espnow_sec API and ESP_LOGx.
 *
 * Its log lines are a contract: tests on boards and on the host match them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
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
    cfg->protocol = ESPNOW_SEC_PROTOCOL_DEFAULT;
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
    case ESPNOW_SEC_EVENT_REKEY_DONE:
        if (s_role == ESPNOW_SEC_ROLE_INITIATOR) {
            ESP_LOGI(TAG, "rekey done: epoch %u, acknowledged: %" PRIu32 ", stragglers: %" PRIu32,
                     (unsigned)event->data.rekey.epoch, event->data.rekey.acked, event->data.rekey.stragglers);
        } else {
            ESP_LOGI(TAG, "key epoch %u active", (unsigned)event->data.rekey.epoch);
        }
        break;
    case ESPNOW_SEC_EVENT_DEVICE_REMOVED:
        ESP_LOGI(TAG, "device %s removed%s", mac_str(event->data.peer.mac, mac),
                 event->data.peer.reason == ESPNOW_SEC_FAIL_NONE ? "" : " (it did not answer; cut off by the re-key)");
        break;
    case ESPNOW_SEC_EVENT_UNPROVISIONED:
        ESP_LOGW(TAG, "un-provisioned by %s: keys erased", mac_str(event->data.peer.mac, mac));
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
        .protocol = cfg->protocol,
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

/* ---- UART commands (README "UART commands") ---- */

static bool parse_mac(const char *s, uint8_t mac[ESPNOW_SEC_ADDR_LEN])
{
    unsigned v[ESPNOW_SEC_ADDR_LEN];
    char tail;
    if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6 ||
        strlen(s) != 17) {
        return false;
    }
    for (int i = 0; i < ESPNOW_SEC_ADDR_LEN; i++) {
        mac[i] = (uint8_t)v[i];
    }
    return true;
}

static void cmd_status(void)
{
    espnow_sec_status_t st;
    esp_err_t err = espnow_sec_get_status(&st);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "/status failed: %s", espnow_sec_err_to_name(err));
        return;
    }
    ESP_LOGI(TAG, "status: protocol %s, %s, %s, epoch %u (staged %u, previous %u), peers %" PRIu32
                  ", tx counter %" PRIu64 " (reserved to %" PRIu64 "), rx %" PRIu32 ", delivered %" PRIu32
                  ", tx %" PRIu32,
             espnow_sec_protocol_str(st.protocol), st.role == ESPNOW_SEC_ROLE_INITIATOR ? "initiator" : "responder",
             st.secured ? "secured" : "not secured", (unsigned)st.epoch, (unsigned)st.staged_epoch,
             (unsigned)st.previous_epoch, st.peers, st.tx_counter, st.counter_reserved, st.rx_frames,
             st.rx_delivered, st.tx_frames);
    char line[256];
    size_t n = 0;
    for (int r = 0; r < ESPNOW_SEC_DROP_COUNT; r++) {
        int w = snprintf(line + n, sizeof(line) - n, "%s%s %" PRIu32, r ? ", " : "",
                         espnow_sec_drop_reason_str((espnow_sec_drop_reason_t)r), st.drops[r]);
        if (w < 0 || (size_t)w >= sizeof(line) - n) {
            break;
        }
        n += (size_t)w;
    }
    ESP_LOGI(TAG, "status drops: %s", line);
}

/* A line starting with APP_CMD_PREFIX. Every command logs exactly one result line. */
static void run_command(const char *cmd)
{
    esp_err_t err;
    if (strcmp(cmd, "/rekey") == 0) {
        err = espnow_sec_rekey();
        if (err == ESP_OK) {
            ESP_LOGI(TAG, "/rekey: started");
        } else {
            ESP_LOGE(TAG, "/rekey failed: %s", espnow_sec_err_to_name(err));
        }
    } else if (strcmp(cmd, "/add") == 0 || strncmp(cmd, "/add ", 5) == 0) {
        unsigned long ms = CONFIG_ESPNOW_SEC_SCAN_DURATION_MS;
        if (cmd[4] == ' ') {
            char *end = NULL;
            ms = strtoul(cmd + 5, &end, 10);
            if (end == cmd + 5 || *end != '\0' || ms < 100 || ms > 60000) {
                ESP_LOGE(TAG, "/add failed: scan time \"%s\" is not 100..60000 ms", cmd + 5);
                return;
            }
        }
        err = espnow_sec_add_devices((uint32_t)ms);
        if (err == ESP_OK) {
            ESP_LOGI(TAG, "/add: scanning %lu ms for new devices", ms);
        } else {
            ESP_LOGE(TAG, "/add failed: %s", espnow_sec_err_to_name(err));
        }
    } else if (strncmp(cmd, "/remove", 7) == 0 && (cmd[7] == ' ' || cmd[7] == '\0')) {
        uint8_t mac[ESPNOW_SEC_ADDR_LEN];
        if (cmd[7] != ' ' || !parse_mac(cmd + 8, mac)) {
            ESP_LOGE(TAG, "/remove failed: expected /remove aa:bb:cc:dd:ee:ff");
            return;
        }
        err = espnow_sec_remove_device(mac);
        if (err == ESP_OK) {
            ESP_LOGI(TAG, "/remove: removing %s", cmd + 8);
        } else {
            ESP_LOGE(TAG, "/remove failed: %s", espnow_sec_err_to_name(err));
        }
    } else if (strcmp(cmd, "/status") == 0) {
        cmd_status();
    } else if (strcmp(cmd, "/help") == 0) {
        ESP_LOGI(TAG, "commands: /rekey, /add [scan_ms], /remove aa:bb:cc:dd:ee:ff, /status, /help; "
                      "//text sends /text");
    } else {
        ESP_LOGE(TAG, "unknown command \"%s\": try /help (to send a line starting with /, type //)", cmd);
    }
}

void app_uart_line(const uint8_t *data, size_t len)
{
    static char text[1471];
    if (len == 0) {
        return; /* an empty line carries nothing to send */
    }
    if (data[0] == APP_CMD_PREFIX) {
        if (len >= 2 && data[1] == APP_CMD_PREFIX) {
            data++; /* "//text" sends "/text" */
            len--;
        } else {
            char cmd[64];
            if (len >= sizeof(cmd) || memchr(data, '\0', len) != NULL) {
                ESP_LOGE(TAG, "unknown command: try /help");
                return;
            }
            memcpy(cmd, data, len);
            cmd[len] = '\0';
            run_command(cmd);
            return;
        }
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
