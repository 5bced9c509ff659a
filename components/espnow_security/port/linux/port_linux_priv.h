/*
 * port_linux_priv.h - shared between the files of port/linux only.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "espnow_sec.h"

/** Set by espnow_sec_port_linux_configure(); NULL / zero until then. */
const char *espnow_sec_port_linux_air_path(void);
const char *espnow_sec_port_linux_store_dir(void);
/** False until configured. */
bool espnow_sec_port_linux_mac(uint8_t mac[ESPNOW_SEC_ADDR_LEN]);
/** True while the radio is open (configure refuses then). */
bool espnow_sec_port_linux_radio_is_open(void);
