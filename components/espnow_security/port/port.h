/*
 * port.h - what src/api.c needs from a platform. Internal to the component.
 *
 * api.c implements espnow_sec.h once, over these functions. Each port folder
 * (port/esp: Wi-Fi + esp_now + NVS + FreeRTOS; port/linux: the simulated air,
 * files, pthreads) provides the same three files:
 *
 *   radio.c     espnow_sec_port_radio_*   the ESP-NOW link
 *   store.c     espnow_sec_port_store_*   persistent key records
 *   platform.c  clock, CSPRNG, mutex, queue, task, log
 *
 * Ports only translate and forward: no protocol logic lives here.
 *
 * Threading contract. The radio's receive and send-status callbacks run in a
 * context the port chooses (ESP32: the Wi-Fi task; host: the air reader thread).
 * They must not block and must not call back into the radio: api.c only copies
 * the frame into a queue (espnow_sec_port_queue_send() with timeout 0) and
 * returns. Everything else runs on api.c's core task.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esp_err.h"
#include "espnow_sec.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Wait forever (queue functions). */
#define ESPNOW_SEC_PORT_WAIT_FOREVER UINT32_MAX

/* ------------------------------------------------------------------ radio */

/**
 * One received ESP-NOW frame body. `data` is valid only during the call; `len` is the
 * real received length (the port never pads or truncates). `dst` is the MAC-layer
 * destination: this node's MAC or ff:ff:ff:ff:ff:ff.
 */
typedef void (*espnow_sec_port_rx_cb_t)(const uint8_t src[ESPNOW_SEC_ADDR_LEN],
                                        const uint8_t dst[ESPNOW_SEC_ADDR_LEN],
                                        const uint8_t *data, size_t len, int8_t rssi,
                                        uint8_t channel, void *ctx);

/** Completion of one espnow_sec_port_radio_send(): delivered = MAC-layer ACK (or broadcast). */
typedef void (*espnow_sec_port_tx_cb_t)(const uint8_t dst[ESPNOW_SEC_ADDR_LEN], bool delivered,
                                        void *ctx);

typedef struct {
    uint8_t channel;                  /**< 1..14 */
    espnow_sec_port_rx_cb_t on_rx;    /**< not NULL */
    espnow_sec_port_tx_cb_t on_tx;    /**< not NULL */
    void *ctx;                        /**< passed to both callbacks */
} espnow_sec_port_radio_config_t;

/**
 * This node's station MAC (ESP32: the Wi-Fi STA MAC; host: ESPNOW_MAC or the
 * pid-derived default). Valid before espnow_sec_port_radio_open().
 */
esp_err_t espnow_sec_port_radio_get_mac(uint8_t mac[ESPNOW_SEC_ADDR_LEN]);

/**
 * Bring the radio up on `cfg->channel` and start delivering frames to the callbacks.
 * @return ESP_OK; ESP_ERR_INVALID_STATE (already open); ESP_ERR_ESPNOW_SEC_RADIO (could
 *         not be opened: the reason is logged).
 */
esp_err_t espnow_sec_port_radio_open(const espnow_sec_port_radio_config_t *cfg);

/**
 * Queue one frame body (1..ESPNOW_SEC_FRAME_MAX bytes) for `dst` (unicast or broadcast).
 * `frame` may be reused when this returns. Every ESP_OK send gets exactly one on_tx later
 * (a lost one is treated as not delivered by the core's retransmit timers).
 * @return ESP_OK; ESP_ERR_INVALID_SIZE; ESP_ERR_INVALID_STATE (not open);
 *         ESP_ERR_ESPNOW_SEC_RADIO (the radio refused it).
 */
esp_err_t espnow_sec_port_radio_send(const uint8_t dst[ESPNOW_SEC_ADDR_LEN], const uint8_t *frame,
                                     size_t len);

/** Stop the radio. When it returns no callback is running and none will run. */
void espnow_sec_port_radio_close(void);

/* ------------------------------------------------------------------ key store */

/**
 * Open the store `ns` (ESP32: NVS namespace; host: file name prefix inside the store folder).
 * Names of namespaces and records: 1..15 characters of [A-Za-z0-9_] (NVS key limits).
 */
esp_err_t espnow_sec_port_store_open(const char *ns);

/**
 * Read record `name` whole into `buf`.
 * @return ESP_OK with *out_len set; ESP_ERR_NOT_FOUND; ESP_ERR_INVALID_SIZE (larger than
 *         `cap`: nothing is copied); ESP_ERR_INVALID_ARG (bad name); ESP_FAIL (I/O error).
 */
esp_err_t espnow_sec_port_store_load(const char *name, uint8_t *buf, size_t cap, size_t *out_len);

/** Replace record `name` atomically: after a power cut it holds the old or the new bytes. */
esp_err_t espnow_sec_port_store_save(const char *name, const uint8_t *buf, size_t len);

/** Remove record `name`; ESP_OK if it did not exist. */
esp_err_t espnow_sec_port_store_erase(const char *name);

/** Remove every record of the open namespace (espnow_sec_erase_key() while stopped). */
esp_err_t espnow_sec_port_store_erase_all(void);

void espnow_sec_port_store_close(void);

/* ------------------------------------------------------------------ clock, random */

/** Monotonic milliseconds since boot; wraps at 2^32. */
uint32_t espnow_sec_port_clock_ms(void);

/** Fill `buf` from the platform CSPRNG. Never fails silently: a broken RNG aborts. */
void espnow_sec_port_random(uint8_t *buf, size_t len);

/* ------------------------------------------------------------------ OS primitives */

typedef struct espnow_sec_port_mutex espnow_sec_port_mutex_t;
typedef struct espnow_sec_port_queue espnow_sec_port_queue_t;
typedef struct espnow_sec_port_task espnow_sec_port_task_t;

/** Non-recursive mutex. */
esp_err_t espnow_sec_port_mutex_create(espnow_sec_port_mutex_t **out);
void espnow_sec_port_mutex_lock(espnow_sec_port_mutex_t *m);
void espnow_sec_port_mutex_unlock(espnow_sec_port_mutex_t *m);
void espnow_sec_port_mutex_delete(espnow_sec_port_mutex_t *m);

/** FIFO of `depth` fixed-size items, copied in and out (FreeRTOS xQueue semantics). */
esp_err_t espnow_sec_port_queue_create(size_t depth, size_t item_size,
                                       espnow_sec_port_queue_t **out);
/** Copy `item` in; wait up to `timeout_ms` for room (0 from radio callbacks). False if full. */
bool espnow_sec_port_queue_send(espnow_sec_port_queue_t *q, const void *item, uint32_t timeout_ms);
/** Copy the oldest item out; wait up to `timeout_ms` (ESPNOW_SEC_PORT_WAIT_FOREVER). */
bool espnow_sec_port_queue_recv(espnow_sec_port_queue_t *q, void *item, uint32_t timeout_ms);
void espnow_sec_port_queue_delete(espnow_sec_port_queue_t *q);

/** Run fn(arg) on a new task/thread; `name` is for debuggers (ESP32: also the stack owner). */
esp_err_t espnow_sec_port_task_create(void (*fn)(void *arg), void *arg, const char *name,
                                      espnow_sec_port_task_t **out);
/** Wait until fn has returned, then free the task. Never call it from the task itself. */
void espnow_sec_port_task_join(espnow_sec_port_task_t *t);
/** True when called from task `t`. */
bool espnow_sec_port_task_is_current(const espnow_sec_port_task_t *t);

/* ------------------------------------------------------------------ log */

/**
 * One ESP-IDF format log line: `<L> (<ms>) <tag>: <text>` + newline, subject to the
 * platform's log level for `tag`. `level` uses ESPNOW_SEC_LOG_* values (core/env.h):
 * 1 error, 2 warn, 3 info, 4 debug.
 */
void espnow_sec_port_log(int level, const char *tag, const char *fmt, va_list ap);

/* ------------------------------------------------------------------ events */

/**
 * Publish a security event on the platform's event system, before the app's callback
 * runs (ESP32: posted to the default esp_event loop as ESPNOW_SEC_EVENT without blocking;
 * host: nothing to do). Called on the core task with no lock held.
 */
void espnow_sec_port_event(const espnow_sec_event_t *event);

#ifdef __cplusplus
}
#endif
