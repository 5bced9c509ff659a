/*
 * espnow_sec_port_linux.h - settings only the host port has (docs/air.md).
 *
 * main_linux.c reads ESPNOW_AIR / ESPNOW_MAC / ESPNOW_STORE_DIR, validates them and
 * hands them over here before espnow_sec_start(). The ESP32 port needs nothing of the
 * kind: its MAC is in eFuse, its radio is the chip and its store is NVS.
 */
#pragma once

#include <stdint.h>

#include "esp_err.h"
#include "espnow_sec.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *air_path;                 /**< the air's SOCK_SEQPACKET Unix socket; copied */
    uint8_t mac[ESPNOW_SEC_ADDR_LEN];     /**< this node's STA MAC */
    const char *store_dir;                /**< key store folder, created when needed; copied */
} espnow_sec_port_linux_config_t;

/**
 * Set the host port's parameters. Call before espnow_sec_start().
 * @return ESP_OK; ESP_ERR_INVALID_ARG (NULL or too long a path);
 *         ESP_ERR_INVALID_STATE (the radio is open).
 */
esp_err_t espnow_sec_port_linux_configure(const espnow_sec_port_linux_config_t *cfg);

/**
 * A descriptor that becomes readable (poll POLLIN) when the radio loses the air while open:
 * the air stopped or the connection broke. The node cannot send or receive any more; the
 * host program should stop. -1 if it cannot be created. Never closed.
 */
int espnow_sec_port_linux_radio_lost_fd(void);

/** Why the air was lost, one line ("the air at <path> closed the connection"); NULL if not. */
const char *espnow_sec_port_linux_radio_lost_reason(void);

#ifdef __cplusplus
}
#endif
