/*
 * main_esp.c - the ESP-IDF entry point of the example.
 *
 * app_main: NVS (the key store lives there), the app (app.c: espnow_sec + logs), then a
 * task that reads lines from the UART and hands each to app_uart_line(). The host entry
 * point, main_linux.c, does the same with stdin.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "driver/uart.h"
#include "esp_err.h"
#include "esp_log.h"
#include "esp_mac.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "nvs_flash.h"
#include "sdkconfig.h"

#include "app.h"

static const char *TAG = "app_main";

#define UART_PORT ((uart_port_t)CONFIG_APP_UART_PORT_NUM)
/** Longest line kept whole: an ESP-NOW v2 frame (ESP_NOW_MAX_DATA_LEN_V2, 1470). A longer
    line cannot be sent either; it is reported with its length and dropped. */
#define LINE_MAX 1470
/** Bytes fetched from the driver per read, and how long a read waits for the first one. */
#define READ_CHUNK 64
#define READ_WAIT_MS 20
/** app_uart_line() encrypts on this task (espnow_sec_send runs the AEAD in the caller). */
#define CONSOLE_TASK_STACK 6144
#define CONSOLE_TASK_PRIO 3

static esp_err_t nvs_init(void)
{
    esp_err_t err = nvs_flash_init();
    if (err == ESP_ERR_NVS_NO_FREE_PAGES || err == ESP_ERR_NVS_NEW_VERSION_FOUND) {
        /* The partition was truncated or written by a newer NVS format: it cannot be read
           as it is. Erasing it also forgets a stored app key (re-provisioning needed). */
        ESP_LOGW(TAG, "NVS partition unreadable (%s): erasing it", esp_err_to_name(err));
        err = nvs_flash_erase();
        if (err == ESP_OK) {
            err = nvs_flash_init();
        }
    }
    return err;
}

static esp_err_t uart_init(void)
{
    uart_config_t cfg = {
        .baud_rate = CONFIG_APP_UART_BAUD_RATE,
        .data_bits = UART_DATA_8_BITS,
        .parity = UART_PARITY_DISABLE,
        .stop_bits = UART_STOP_BITS_1,
        .flow_ctrl = UART_HW_FLOWCTRL_DISABLE,
        .source_clk = UART_SCLK_DEFAULT,
    };
    /* RX only: log output keeps going through the console, not through this driver. */
    esp_err_t err = uart_driver_install(UART_PORT, CONFIG_APP_UART_RX_BUF_SIZE, 0, 0, NULL, 0);
    if (err != ESP_OK) {
        return err;
    }
    err = uart_param_config(UART_PORT, &cfg);
#if defined(CONFIG_APP_UART_TXD) && defined(CONFIG_APP_UART_RXD)
    if (err == ESP_OK) {
        err = uart_set_pin(UART_PORT, CONFIG_APP_UART_TXD, CONFIG_APP_UART_RXD, UART_PIN_NO_CHANGE,
                           UART_PIN_NO_CHANGE);
    }
#endif
    if (err != ESP_OK) {
        (void)uart_driver_delete(UART_PORT);
    }
    return err;
}

/* Split the byte stream into lines: CR, LF and CR LF all end one (idf.py monitor sends
   CR LF, pytest-embedded LF). Empty lines are skipped. */
static void console_task(void *arg)
{
    (void)arg;
    static uint8_t line[LINE_MAX];
    uint8_t chunk[READ_CHUNK];
    size_t len = 0;     /* bytes of the current line (total, even past LINE_MAX) */

    for (;;) {
        int got = uart_read_bytes(UART_PORT, chunk, sizeof(chunk), pdMS_TO_TICKS(READ_WAIT_MS));
        if (got <= 0) {
            continue;
        }
        for (int i = 0; i < got; i++) {
            uint8_t c = chunk[i];
            if (c == '\r' || c == '\n') {
                if (len > LINE_MAX) {
                    app_uart_line_too_long(len);
                } else if (len > 0) {
                    app_uart_line(line, len);
                }
                len = 0;
                continue;
            }
            if (len < LINE_MAX) {
                line[len] = c;
            }
            if (len <= LINE_MAX) {
                len++; /* stops at LINE_MAX + 1: "too long" is all that is left to say */
            }
        }
    }
}

/* Called by ESP-IDF's startup code once the scheduler runs; no IDF header declares it. */
void app_main(void);

void app_main(void)
{
    esp_err_t err = nvs_init();
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "NVS init failed: %s; check the partition table has an \"nvs\" partition",
                 esp_err_to_name(err));
        return;
    }

    app_config_t cfg;
    app_config_default(&cfg);
    err = esp_read_mac(cfg.mac, ESP_MAC_WIFI_STA);
    if (err != ESP_OK) {
        ESP_LOGW(TAG, "cannot read the station MAC: %s", esp_err_to_name(err));
    }

    if (app_start(&cfg) != ESP_OK) {
        return; /* app_start logged why */
    }

    err = uart_init();
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "UART%d console unavailable (%s): received frames are still logged, "
                      "but nothing can be sent; check CONFIG_APP_UART_PORT_NUM",
                 (int)CONFIG_APP_UART_PORT_NUM, esp_err_to_name(err));
        return;
    }
    if (xTaskCreate(console_task, "uart_console", CONSOLE_TASK_STACK, NULL, CONSOLE_TASK_PRIO,
                    NULL) != pdPASS) {
        ESP_LOGE(TAG, "cannot create the UART console task: out of memory");
    }
}
