/*
 * espnow_sec_port_esp.h - what only the ESP32 port adds to espnow_sec.h: esp_event events.
 *
 * Every security event the app's espnow_sec_config_t.on_event callback receives is also
 * posted to ESP-IDF's default event loop, so other components can follow provisioning
 * without owning the callback:
 *
 *     esp_event_handler_register(ESPNOW_SEC_EVENT, ESPNOW_SEC_EVENT_PEER_SECURED,
 *                                on_secured, NULL);
 *
 *   - event base: ESPNOW_SEC_EVENT
 *   - event id:   an espnow_sec_event_id_t (ESPNOW_SEC_EVENT_SCAN_DONE, _PEER_SECURED,
 *                 _PEER_FAILED, _PROVISION_DONE), or ESP_EVENT_ANY_ID
 *   - event data: a copy of the espnow_sec_event_t (cast `event_data` to
 *                 `const espnow_sec_event_t *`); valid only during the handler
 *
 * Posting needs the default event loop; the port creates it when it starts Wi-Fi, or uses
 * the app's. An event that does not fit in the loop's queue is dropped (logged at WARN);
 * the on_event callback still gets it. Handlers run on the event loop task, not on the
 * component's task, so they may call any espnow_sec_* function.
 */
#pragma once

#include "esp_event.h"
#include "espnow_sec.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Event base of the espnow_security component (ids: espnow_sec_event_id_t). */
ESP_EVENT_DECLARE_BASE(ESPNOW_SEC_EVENT);

#ifdef __cplusplus
}
#endif
