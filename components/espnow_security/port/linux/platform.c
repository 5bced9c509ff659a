/*
 * platform.c (linux) - clock, CSPRNG, pthread primitives, log and the host settings.
 */
#define _GNU_SOURCE /* pthread_setname_np */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "esp_log.h"
#include "espnow_sec_port_linux.h"
#include "port.h"
#include "port_linux_priv.h"

/* ------------------------------------------------------------------ host settings */

#define PATH_CAP 4096

static pthread_mutex_t s_cfg_lock = PTHREAD_MUTEX_INITIALIZER;
static char s_air_path[PATH_CAP];
static char s_store_dir[PATH_CAP];
static uint8_t s_mac[ESPNOW_SEC_ADDR_LEN];
static bool s_configured;

esp_err_t espnow_sec_port_linux_configure(const espnow_sec_port_linux_config_t *cfg)
{
    if (!cfg || !cfg->air_path || !cfg->store_dir || !cfg->air_path[0] || !cfg->store_dir[0] ||
        strlen(cfg->air_path) >= PATH_CAP || strlen(cfg->store_dir) >= PATH_CAP) {
        return ESP_ERR_INVALID_ARG;
    }
    if (espnow_sec_port_linux_radio_is_open()) {
        return ESP_ERR_INVALID_STATE;
    }
    pthread_mutex_lock(&s_cfg_lock);
    snprintf(s_air_path, sizeof(s_air_path), "%s", cfg->air_path);
    snprintf(s_store_dir, sizeof(s_store_dir), "%s", cfg->store_dir);
    memcpy(s_mac, cfg->mac, sizeof(s_mac));
    s_configured = true;
    pthread_mutex_unlock(&s_cfg_lock);
    return ESP_OK;
}

const char *espnow_sec_port_linux_air_path(void)
{
    return s_configured ? s_air_path : NULL;
}

const char *espnow_sec_port_linux_store_dir(void)
{
    return s_configured ? s_store_dir : NULL;
}

bool espnow_sec_port_linux_mac(uint8_t mac[ESPNOW_SEC_ADDR_LEN])
{
    if (!s_configured) {
        return false;
    }
    memcpy(mac, s_mac, ESPNOW_SEC_ADDR_LEN);
    return true;
}

/* ------------------------------------------------------------------ clock */

static struct timespec s_boot;

__attribute__((constructor)) static void platform_boot(void)
{
    clock_gettime(CLOCK_MONOTONIC, &s_boot);
}

uint32_t espnow_sec_port_clock_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t ms = (int64_t)(now.tv_sec - s_boot.tv_sec) * 1000 +
                 (now.tv_nsec - s_boot.tv_nsec) / 1000000;
    return (uint32_t)ms; /* wraps after 49 days, as the core expects */
}

/* ------------------------------------------------------------------ random */

void espnow_sec_port_random(uint8_t *buf, size_t len)
{
    while (len) {
        ssize_t n = getrandom(buf, len, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            /* Keys from a broken RNG would be worse than no node at all. */
            fprintf(stderr, "espnow_sec: getrandom() failed: %s\n", strerror(errno));
            abort();
        }
        buf += n;
        len -= (size_t)n;
    }
}

/* ------------------------------------------------------------------ mutex */

struct espnow_sec_port_mutex {
    pthread_mutex_t m;
};

esp_err_t espnow_sec_port_mutex_create(espnow_sec_port_mutex_t **out)
{
    espnow_sec_port_mutex_t *m = calloc(1, sizeof(*m));
    if (!m) {
        return ESP_ERR_NO_MEM;
    }
    if (pthread_mutex_init(&m->m, NULL) != 0) {
        free(m);
        return ESP_ERR_NO_MEM;
    }
    *out = m;
    return ESP_OK;
}

void espnow_sec_port_mutex_lock(espnow_sec_port_mutex_t *m)
{
    pthread_mutex_lock(&m->m);
}

void espnow_sec_port_mutex_unlock(espnow_sec_port_mutex_t *m)
{
    pthread_mutex_unlock(&m->m);
}

void espnow_sec_port_mutex_delete(espnow_sec_port_mutex_t *m)
{
    if (m) {
        pthread_mutex_destroy(&m->m);
        free(m);
    }
}

/* ------------------------------------------------------------------ queue */

struct espnow_sec_port_queue {
    pthread_mutex_t m;
    pthread_cond_t not_empty;
    pthread_cond_t not_full;
    size_t depth, item_size, head, count;
    uint8_t *items;
};

static void deadline_after(struct timespec *ts, uint32_t timeout_ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Wait on `cond` until `ready` or the deadline; false on timeout. Called locked. */
static bool wait_until(espnow_sec_port_queue_t *q, pthread_cond_t *cond, bool (*ready)(
                           const espnow_sec_port_queue_t *), uint32_t timeout_ms)
{
    if (ready(q)) {
        return true;
    }
    if (timeout_ms == 0) {
        return false;
    }
    struct timespec deadline;
    if (timeout_ms != ESPNOW_SEC_PORT_WAIT_FOREVER) {
        deadline_after(&deadline, timeout_ms);
    }
    while (!ready(q)) {
        if (timeout_ms == ESPNOW_SEC_PORT_WAIT_FOREVER) {
            pthread_cond_wait(cond, &q->m);
        } else if (pthread_cond_timedwait(cond, &q->m, &deadline) == ETIMEDOUT) {
            return ready(q);
        }
    }
    return true;
}

static bool has_room(const espnow_sec_port_queue_t *q)
{
    return q->count < q->depth;
}

static bool has_item(const espnow_sec_port_queue_t *q)
{
    return q->count > 0;
}

esp_err_t espnow_sec_port_queue_create(size_t depth, size_t item_size,
                                       espnow_sec_port_queue_t **out)
{
    if (!depth || !item_size || !out) {
        return ESP_ERR_INVALID_ARG;
    }
    espnow_sec_port_queue_t *q = calloc(1, sizeof(*q));
    if (!q) {
        return ESP_ERR_NO_MEM;
    }
    q->items = calloc(depth, item_size);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (!q->items || pthread_mutex_init(&q->m, NULL) != 0 ||
        pthread_cond_init(&q->not_empty, &attr) != 0 ||
        pthread_cond_init(&q->not_full, &attr) != 0) {
        pthread_condattr_destroy(&attr);
        free(q->items);
        free(q);
        return ESP_ERR_NO_MEM;
    }
    pthread_condattr_destroy(&attr);
    q->depth = depth;
    q->item_size = item_size;
    *out = q;
    return ESP_OK;
}

bool espnow_sec_port_queue_send(espnow_sec_port_queue_t *q, const void *item, uint32_t timeout_ms)
{
    pthread_mutex_lock(&q->m);
    bool ok = wait_until(q, &q->not_full, has_room, timeout_ms);
    if (ok) {
        size_t tail = (q->head + q->count) % q->depth;
        memcpy(q->items + tail * q->item_size, item, q->item_size);
        q->count++;
        pthread_cond_signal(&q->not_empty);
    }
    pthread_mutex_unlock(&q->m);
    return ok;
}

bool espnow_sec_port_queue_recv(espnow_sec_port_queue_t *q, void *item, uint32_t timeout_ms)
{
    pthread_mutex_lock(&q->m);
    bool ok = wait_until(q, &q->not_empty, has_item, timeout_ms);
    if (ok) {
        memcpy(item, q->items + q->head * q->item_size, q->item_size);
        q->head = (q->head + 1) % q->depth;
        q->count--;
        pthread_cond_signal(&q->not_full);
    }
    pthread_mutex_unlock(&q->m);
    return ok;
}

void espnow_sec_port_queue_delete(espnow_sec_port_queue_t *q)
{
    if (q) {
        pthread_cond_destroy(&q->not_empty);
        pthread_cond_destroy(&q->not_full);
        pthread_mutex_destroy(&q->m);
        free(q->items);
        free(q);
    }
}

/* ------------------------------------------------------------------ task */

struct espnow_sec_port_task {
    pthread_t thread;
    void (*fn)(void *arg);
    void *arg;
};

static void *task_main(void *p)
{
    espnow_sec_port_task_t *t = p;
    t->fn(t->arg);
    return NULL;
}

esp_err_t espnow_sec_port_task_create(void (*fn)(void *arg), void *arg, const char *name,
                                      espnow_sec_port_task_t **out)
{
    espnow_sec_port_task_t *t = calloc(1, sizeof(*t));
    if (!t) {
        return ESP_ERR_NO_MEM;
    }
    t->fn = fn;
    t->arg = arg;
    int rc = pthread_create(&t->thread, NULL, task_main, t);
    if (rc != 0) {
        ESP_LOGE("espnow_sec", "cannot create thread %s: %s", name, strerror(rc));
        free(t);
        return ESP_ERR_NO_MEM;
    }
    char short_name[16]; /* the kernel's limit, terminator included */
    snprintf(short_name, sizeof(short_name), "%s", name);
    pthread_setname_np(t->thread, short_name);
    *out = t;
    return ESP_OK;
}

void espnow_sec_port_task_join(espnow_sec_port_task_t *t)
{
    if (t) {
        pthread_join(t->thread, NULL);
        free(t);
    }
}

bool espnow_sec_port_task_is_current(const espnow_sec_port_task_t *t)
{
    return t && pthread_equal(t->thread, pthread_self());
}

/* ------------------------------------------------------------------ log */

void espnow_sec_port_log(int level, const char *tag, const char *fmt, va_list ap)
{
    esp_log_host_linev((esp_log_level_t)level, tag, fmt, ap);
}

/* ------------------------------------------------------------------ events */

void espnow_sec_port_event(const espnow_sec_event_t *event)
{
    (void)event; /* the host has no event loop: the app's callback is the only listener */
}
