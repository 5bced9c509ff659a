/*
 * app.h - the example's portable logic, shared by main_esp.c and main_linux.c.
 *
 * The entry point fills an app_config_t (app_config_default() gives the Kconfig values;
 * it then sets the MAC and any overrides), calls app_start() once, and feeds every line
 * read from the UART (newline stripped) to app_uart_line().
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "esp_err.h"
#include "espnow_sec.h"

#ifdef __cplusplus
extern "C" {
#endif

/** First byte of a UART command line. */
#define APP_CMD_PREFIX '/'

typedef struct {
    espnow_sec_role_t role;                /**< CONFIG_APP_ESPNOW_SEC_INITIATOR / _RESPONDER */
    const char *pop;                       /**< CONFIG_APP_ESPNOW_SESSION_POP */
    uint8_t channel;                       /**< CONFIG_APP_ESPNOW_CHANNEL */
    uint8_t mac[ESPNOW_SEC_ADDR_LEN];      /**< this node's STA MAC, for the boot line */
    espnow_sec_protocol_t protocol;        /**< DEFAULT = CONFIG_ESPNOW_SEC_PROTOCOL */
} app_config_t;

/** The compiled-in (Kconfig) configuration; mac is left zero. */
void app_config_default(app_config_t *cfg);

/**
 * Start espnow_sec, log the boot line and, on an initiator, start provisioning.
 * @return ESP_OK, or the espnow_sec_start() error (already logged).
 */
esp_err_t app_start(const app_config_t *cfg);

/**
 * One UART line (without its newline). Lines starting with APP_CMD_PREFIX ("/") are
 * commands (README "UART commands": /rekey, /add [scan_ms], /remove <mac>, /status,
 * /help; "//text" sends "/text"); every other line is sent as a broadcast. Logs the result.
 */
void app_uart_line(const uint8_t *data, size_t len);

/** A UART line of `len` bytes was too long to even buffer: log the same error as a send. */
void app_uart_line_too_long(size_t len);

/** Stop espnow_sec. */
void app_stop(void);

#ifdef __cplusplus
}
#endif
