/*
 * platform.c (ESP32) - clock, CSPRNG, FreeRTOS mutex/queue/task, ESP_LOG, esp_event.
 *
 * port.h's OS primitives map one to one onto FreeRTOS. Objects are allocated once, when
 * espnow_sec_start() creates them; nothing here allocates per frame.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "esp_err.h"
#include "esp_event.h"
#include "esp_log.h"
#include "esp_random.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/queue.h"
#include "freertos/semphr.h"
#include "freertos/task.h"
#include "sdkconfig.h"

#include "env.h"
#include "espnow_sec.h"
#include "espnow_sec_port_esp.h"
#include "port.h"

#ifndef CONFIG_ESPNOW_SEC_TASK_STACK_SIZE
#define CONFIG_ESPNOW_SEC_TASK_STACK_SIZE 6144
#endif
#ifndef CONFIG_ESPNOW_SEC_TASK_PRIORITY
#define CONFIG_ESPNOW_SEC_TASK_PRIORITY 5
#endif

/** Longest formatted core log line; longer text is cut (the line still ends cleanly). */
#define LOG_LINE_MAX 200

static const char *TAG = "espnow_sec";

ESP_EVENT_DEFINE_BASE(ESPNOW_SEC_EVENT);

/* ------------------------------------------------------------------ clock, random */

uint32_t espnow_sec_port_clock_ms(void)
{
    /* esp_timer counts microseconds since boot in 64 bits; the core wants wrapping ms. */
    return (uint32_t)(esp_timer_get_time() / 1000);
}

void espnow_sec_port_random(uint8_t *buf, size_t len)
{
    /* True random numbers once Wi-Fi runs (esp_random.h); api.c opens the radio before
       the core draws any key material. */
    esp_fill_random(buf, len);
}

/* ------------------------------------------------------------------ OS primitives */

struct espnow_sec_port_mutex {
    SemaphoreHandle_t handle;
};

struct espnow_sec_port_queue {
    QueueHandle_t handle;
};

struct espnow_sec_port_task {
    TaskHandle_t handle;
    SemaphoreHandle_t done; /* given by the task when fn has returned */
    void (*fn)(void *arg);
    void *arg;
};

/* Milliseconds to ticks, rounding up so a short non-zero wait never becomes "do not wait". */
static TickType_t to_ticks(uint32_t ms)
{
    if (ms == ESPNOW_SEC_PORT_WAIT_FOREVER) {
        return portMAX_DELAY;
    }
    uint64_t ticks = ((uint64_t)ms * configTICK_RATE_HZ + 999) / 1000;
    return ticks >= portMAX_DELAY ? portMAX_DELAY - 1 : (TickType_t)ticks;
}

esp_err_t espnow_sec_port_mutex_create(espnow_sec_port_mutex_t **out)
{
    if (!out) {
        return ESP_ERR_INVALID_ARG;
    }
    espnow_sec_port_mutex_t *m = calloc(1, sizeof(*m));
    if (!m) {
        return ESP_ERR_NO_MEM;
    }
    m->handle = xSemaphoreCreateMutex();
    if (!m->handle) {
        free(m);
        return ESP_ERR_NO_MEM;
    }
    *out = m;
    return ESP_OK;
}

void espnow_sec_port_mutex_lock(espnow_sec_port_mutex_t *m)
{
    (void)xSemaphoreTake(m->handle, portMAX_DELAY);
}

void espnow_sec_port_mutex_unlock(espnow_sec_port_mutex_t *m)
{
    (void)xSemaphoreGive(m->handle);
}

void espnow_sec_port_mutex_delete(espnow_sec_port_mutex_t *m)
{
    if (m) {
        vSemaphoreDelete(m->handle);
        free(m);
    }
}

esp_err_t espnow_sec_port_queue_create(size_t depth, size_t item_size,
                                       espnow_sec_port_queue_t **out)
{
    /* size_t and UBaseType_t are both 32 bits on every ESP chip. */
    if (!out || depth == 0 || item_size == 0) {
        return ESP_ERR_INVALID_ARG;
    }
    espnow_sec_port_queue_t *q = calloc(1, sizeof(*q));
    if (!q) {
        return ESP_ERR_NO_MEM;
    }
    q->handle = xQueueCreate((UBaseType_t)depth, (UBaseType_t)item_size);
    if (!q->handle) {
        free(q);
        return ESP_ERR_NO_MEM;
    }
    *out = q;
    return ESP_OK;
}

bool espnow_sec_port_queue_send(espnow_sec_port_queue_t *q, const void *item, uint32_t timeout_ms)
{
    /* ESP-NOW callbacks run on the Wi-Fi task, not in an ISR: the task API is right, and
       with timeout 0 it never blocks the Wi-Fi task. */
    return xQueueSend(q->handle, item, to_ticks(timeout_ms)) == pdTRUE;
}

bool espnow_sec_port_queue_recv(espnow_sec_port_queue_t *q, void *item, uint32_t timeout_ms)
{
    return xQueueReceive(q->handle, item, to_ticks(timeout_ms)) == pdTRUE;
}

void espnow_sec_port_queue_delete(espnow_sec_port_queue_t *q)
{
    if (q) {
        vQueueDelete(q->handle);
        free(q);
    }
}

static void task_trampoline(void *param)
{
    espnow_sec_port_task_t *t = param;
    SemaphoreHandle_t done = t->done;
    t->fn(t->arg);
    /* From here on `t` belongs to espnow_sec_port_task_join(), which may free it. */
    (void)xSemaphoreGive(done);
    vTaskDelete(NULL);
}

esp_err_t espnow_sec_port_task_create(void (*fn)(void *arg), void *arg, const char *name,
                                      espnow_sec_port_task_t **out)
{
    if (!fn || !out) {
        return ESP_ERR_INVALID_ARG;
    }
    espnow_sec_port_task_t *t = calloc(1, sizeof(*t));
    if (!t) {
        return ESP_ERR_NO_MEM;
    }
    t->fn = fn;
    t->arg = arg;
    t->done = xSemaphoreCreateBinary();
    if (!t->done) {
        free(t);
        return ESP_ERR_NO_MEM;
    }
    /* Publish before the task can run: is_current() may be asked from inside fn. */
    *out = t;
    if (xTaskCreate(task_trampoline, name ? name : "espnow_sec", CONFIG_ESPNOW_SEC_TASK_STACK_SIZE,
                    t, CONFIG_ESPNOW_SEC_TASK_PRIORITY, &t->handle) != pdPASS) {
        *out = NULL;
        vSemaphoreDelete(t->done);
        free(t);
        ESP_LOGE(TAG, "cannot create the core task (%d bytes of stack): out of memory",
                 (int)CONFIG_ESPNOW_SEC_TASK_STACK_SIZE);
        return ESP_ERR_NO_MEM;
    }
    return ESP_OK;
}

void espnow_sec_port_task_join(espnow_sec_port_task_t *t)
{
    if (!t) {
        return;
    }
    (void)xSemaphoreTake(t->done, portMAX_DELAY);
    vSemaphoreDelete(t->done);
    free(t);
}

bool espnow_sec_port_task_is_current(const espnow_sec_port_task_t *t)
{
    return t && t->handle && t->handle == xTaskGetCurrentTaskHandle();
}

/* ------------------------------------------------------------------ log */

void espnow_sec_port_log(int level, const char *tag, const char *fmt, va_list ap)
{
    char line[LOG_LINE_MAX];
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(line, sizeof(line), fmt, copy);
    va_end(copy);
    if (n < 0) {
        return;
    }
    /* ESP_LOGx adds the `L (ms) tag: ` prefix, the newline and the per-tag level filter. */
    switch (level) {
    case ESPNOW_SEC_LOG_ERROR:
        ESP_LOGE(tag, "%s", line);
        break;
    case ESPNOW_SEC_LOG_WARN:
        ESP_LOGW(tag, "%s", line);
        break;
    case ESPNOW_SEC_LOG_INFO:
        ESP_LOGI(tag, "%s", line);
        break;
    default:
        ESP_LOGD(tag, "%s", line);
        break;
    }
}

/* ------------------------------------------------------------------ esp_event */

void espnow_sec_port_event(const espnow_sec_event_t *event)
{
    if (!event) {
        return;
    }
    /* Never block the core task: a full event queue drops the post, not a handshake. */
    esp_err_t err = esp_event_post(ESPNOW_SEC_EVENT, (int32_t)event->id, event, sizeof(*event), 0);
    if (err == ESP_ERR_TIMEOUT) {
        ESP_LOGW(TAG, "default event loop full: ESPNOW_SEC_EVENT %d not posted", (int)event->id);
    } else if (err != ESP_OK) {
        ESP_LOGD(TAG, "ESPNOW_SEC_EVENT %d not posted: %s", (int)event->id, esp_err_to_name(err));
    }
}
