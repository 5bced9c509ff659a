/*
 * env.h - everything the pure core is given by its port (or by a test).
 *
 * The core never calls an OS, a radio or a clock itself: time, randomness,
 * persistent storage, the radio and the app's callbacks arrive here. That is
 * what lets tests drive two cores against each other in one process with
 * fixed randomness, and lets the same core run on ESP32 and on a host.
 */
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "espnow_sec.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    ESPNOW_SEC_LOG_ERROR = 1,
    ESPNOW_SEC_LOG_WARN = 2,
    ESPNOW_SEC_LOG_INFO = 3,
    ESPNOW_SEC_LOG_DEBUG = 4,
} espnow_sec_log_level_t;

typedef struct espnow_sec_env {
    void *ctx; /**< passed back to every callback */

    /** Monotonic milliseconds. Wraps at 2^32; the core compares with subtraction. */
    uint32_t (*now_ms)(void *ctx);

    /** Fill `buf` with `len` bytes from a CSPRNG (tests inject fixed bytes). */
    void (*random)(void *ctx, uint8_t *buf, size_t len);

    /**
     * Hand one ESP-NOW frame body (<= ESPNOW_SEC_FRAME_MAX bytes) to the radio.
     * `dst` is a unicast MAC or ff:ff:ff:ff:ff:ff. The frame is only valid during
     * the call. Completion is reported later through espnow_sec_node_on_send_status().
     */
    esp_err_t (*send)(void *ctx, const uint8_t dst[ESPNOW_SEC_ADDR_LEN], const uint8_t *frame,
                      size_t len);

    /**
     * Read the record `name` into buf. Returns ESP_OK with *out_len set,
     * ESP_ERR_NOT_FOUND if there is none, or another error. Never partial.
     */
    esp_err_t (*store_load)(void *ctx, const char *name, uint8_t *buf, size_t cap,
                            size_t *out_len);
    /** Replace the record `name` atomically: after a crash either the old or the new record. */
    esp_err_t (*store_save)(void *ctx, const char *name, const uint8_t *buf, size_t len);
    /** Remove the record `name`; ESP_OK if it did not exist. */
    esp_err_t (*store_erase)(void *ctx, const char *name);

    /** Security events (see espnow_sec.h). */
    void (*event)(void *ctx, const espnow_sec_event_t *event);
    /** A data frame for the app. */
    void (*deliver)(void *ctx, const espnow_sec_rx_info_t *info, const uint8_t *data, size_t len);

    /** Log sink; the core never logs secrets above DEBUG. May be NULL. */
    void (*log)(void *ctx, espnow_sec_log_level_t level, const char *fmt, va_list ap);
} espnow_sec_env_t;

#ifdef __cplusplus
}
#endif
