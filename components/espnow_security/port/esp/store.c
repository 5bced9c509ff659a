/*
 * store.c (ESP32) - key records in NVS, one blob per record.
 *
 * Namespace: CONFIG_ESPNOW_SEC_NVS_NAMESPACE (api.c passes it). Each record is one NVS
 * blob written with nvs_set_blob() + nvs_commit(). NVS writes the new entry before it
 * erases the old one, so a power cut leaves the old or the new record, never a mix
 * (port.h: store_save is atomic per record).
 *
 * NVS itself must be initialised by the app (nvs_flash_init(), main_esp.c). If it is
 * not, the store initialises the default partition once, without erasing anything:
 * erasing a partition that holds other data is the app's decision.
 */
#include <stdbool.h>

#include "esp_err.h"
#include "esp_log.h"
#include "nvs.h"
#include "nvs_flash.h"

#include "espnow_sec.h"
#include "port.h"

/* NVS_KEY_NAME_MAX_SIZE (16) includes the terminating NUL; namespaces share the limit. */
#define NAME_MAX_LEN (NVS_KEY_NAME_MAX_SIZE - 1)

static const char *TAG = "espnow_sec";

static struct {
    bool open;
    nvs_handle_t handle;
} s;

/* port.h: 1..15 characters of [A-Za-z0-9_], the same rule on every port. */
static bool valid_name(const char *name)
{
    if (!name) {
        return false;
    }
    size_t n = 0;
    for (; name[n] != '\0'; n++) {
        char c = name[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_';
        if (!ok || n == NAME_MAX_LEN) {
            return false;
        }
    }
    return n > 0;
}

/* NVS codes to the few port.h promises; the NVS name goes to the log. */
static esp_err_t map_err(esp_err_t err, const char *what, const char *name)
{
    switch (err) {
    case ESP_OK:
        return ESP_OK;
    case ESP_ERR_NVS_NOT_FOUND:
        return ESP_ERR_NOT_FOUND;
    case ESP_ERR_NVS_INVALID_LENGTH:
        return ESP_ERR_INVALID_SIZE;
    case ESP_ERR_NVS_INVALID_NAME:
    case ESP_ERR_NVS_KEY_TOO_LONG:
        return ESP_ERR_INVALID_ARG;
    case ESP_ERR_NVS_NOT_ENOUGH_SPACE:
        ESP_LOGE(TAG, "key store: cannot %s \"%s\": the NVS partition is full; enlarge it in the "
                      "partition table or erase unused namespaces", what, name);
        return ESP_ERR_NO_MEM;
    default:
        ESP_LOGE(TAG, "key store: cannot %s \"%s\": %s", what, name, esp_err_to_name(err));
        return ESP_FAIL;
    }
}

esp_err_t espnow_sec_port_store_open(const char *ns)
{
    if (!valid_name(ns)) {
        ESP_LOGE(TAG, "key store: namespace \"%s\" is not 1..%d characters of [A-Za-z0-9_]; "
                      "fix CONFIG_ESPNOW_SEC_NVS_NAMESPACE", ns ? ns : "(null)", NAME_MAX_LEN);
        return ESP_ERR_INVALID_ARG;
    }
    if (s.open) {
        return ESP_ERR_INVALID_STATE;
    }
    esp_err_t err = nvs_open(ns, NVS_READWRITE, &s.handle);
    if (err == ESP_ERR_NVS_NOT_INITIALIZED) {
        esp_err_t init = nvs_flash_init();
        if (init != ESP_OK) {
            ESP_LOGE(TAG, "key store: NVS is not initialised and nvs_flash_init() failed (%s); "
                          "call nvs_flash_init() in app_main, erasing the partition on "
                          "ESP_ERR_NVS_NO_FREE_PAGES / ESP_ERR_NVS_NEW_VERSION_FOUND",
                     esp_err_to_name(init));
            return ESP_FAIL;
        }
        err = nvs_open(ns, NVS_READWRITE, &s.handle);
    }
    if (err != ESP_OK) {
        return map_err(err, "open namespace", ns);
    }
    s.open = true;
    return ESP_OK;
}

esp_err_t espnow_sec_port_store_load(const char *name, uint8_t *buf, size_t cap, size_t *out_len)
{
    if (!valid_name(name) || !out_len || (cap && !buf)) {
        return ESP_ERR_INVALID_ARG;
    }
    if (!s.open) {
        return ESP_ERR_INVALID_STATE;
    }
    /* Ask the size first so a record larger than `cap` is refused without copying any of it. */
    size_t len = 0;
    esp_err_t err = nvs_get_blob(s.handle, name, NULL, &len);
    if (err != ESP_OK) {
        return map_err(err, "read", name);
    }
    if (len > cap) {
        return ESP_ERR_INVALID_SIZE;
    }
    if (len > 0) {
        size_t got = len;
        err = nvs_get_blob(s.handle, name, buf, &got);
        if (err != ESP_OK) {
            return map_err(err, "read", name);
        }
        if (got != len) {
            ESP_LOGE(TAG, "key store: \"%s\" changed size while being read", name);
            return ESP_FAIL;
        }
    }
    *out_len = len;
    return ESP_OK;
}

esp_err_t espnow_sec_port_store_save(const char *name, const uint8_t *buf, size_t len)
{
    if (!valid_name(name) || (len && !buf)) {
        return ESP_ERR_INVALID_ARG;
    }
    if (!s.open) {
        return ESP_ERR_INVALID_STATE;
    }
    esp_err_t err = nvs_set_blob(s.handle, name, buf, len);
    if (err == ESP_OK) {
        err = nvs_commit(s.handle);
    }
    return map_err(err, "write", name);
}

esp_err_t espnow_sec_port_store_erase(const char *name)
{
    if (!valid_name(name)) {
        return ESP_ERR_INVALID_ARG;
    }
    if (!s.open) {
        return ESP_ERR_INVALID_STATE;
    }
    esp_err_t err = nvs_erase_key(s.handle, name);
    if (err == ESP_ERR_NVS_NOT_FOUND) {
        return ESP_OK;
    }
    if (err == ESP_OK) {
        err = nvs_commit(s.handle);
    }
    return map_err(err, "erase", name);
}

esp_err_t espnow_sec_port_store_erase_all(void)
{
    if (!s.open) {
        return ESP_ERR_INVALID_STATE;
    }
    esp_err_t err = nvs_erase_all(s.handle);
    if (err == ESP_OK) {
        err = nvs_commit(s.handle);
    }
    return map_err(err, "erase", "(all records)");
}

void espnow_sec_port_store_close(void)
{
    if (s.open) {
        nvs_close(s.handle);
        s.open = false;
    }
}
