/*
 * radio.c (linux) - ESP-NOW over the simulated air (docs/air.md).
 *
 * One SOCK_SEQPACKET connection to the air: HELLO/WELCOME at open, then TX out and
 * RX / TX_STATUS in, read by one reader thread that calls the port callbacks (the
 * counterpart of the ESP32 Wi-Fi task calling the esp_now callbacks).
 *
 * Losing the air while open (the air stopped, or the connection broke) cannot be repaired:
 * the reader logs it, keeps the reason and signals espnow_sec_port_linux_radio_lost_fd(),
 * so the host program can stop with a clear message instead of running on without a radio.
 */
#define _GNU_SOURCE /* pthread_setname_np */

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "esp_log.h"
#include "port.h"
#include "port_linux_priv.h"

static const char *TAG = "espnow_sec";

/* docs/air.md, "Socket protocol" */
enum {
    KIND_HELLO = 0x01,
    KIND_TX = 0x02,
    KIND_SET_CHANNEL = 0x03,
    KIND_WELCOME = 0x81,
    KIND_RX = 0x82,
    KIND_TX_STATUS = 0x83,
};
#define HELLO_LEN (1 + ESPNOW_SEC_ADDR_LEN + 1)                     /* kind mac channel */
#define TX_HDR_LEN (1 + 4 + ESPNOW_SEC_ADDR_LEN)                    /* kind seq dst */
#define RX_HDR_LEN (1 + ESPNOW_SEC_ADDR_LEN + ESPNOW_SEC_ADDR_LEN + 2) /* kind src dst ch rssi */
#define TX_STATUS_LEN (1 + 4 + ESPNOW_SEC_ADDR_LEN + 1)            /* kind seq dst status */
#define WELCOME_TIMEOUT_MS 5000
/* Room for more than the air may send, so an oversized packet is seen, not truncated. */
#define RX_BUF_LEN (RX_HDR_LEN + 2048)

static struct {
    int fd;
    atomic_bool open;
    pthread_t reader;
    espnow_sec_port_radio_config_t cfg;
    atomic_uint seq;
    int lost_fd;       /* eventfd: readable once the air is lost */
    char lost_why[256];
} s = {.fd = -1, .lost_fd = -1};

int espnow_sec_port_linux_radio_lost_fd(void)
{
    if (s.lost_fd < 0) {
        s.lost_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    }
    return s.lost_fd;
}

const char *espnow_sec_port_linux_radio_lost_reason(void)
{
    return s.lost_why[0] ? s.lost_why : NULL;
}

/* Reader thread: the air is gone while the radio is open. */
static void radio_lost(const char *fmt, const char *detail)
{
    const char *path = espnow_sec_port_linux_air_path();
    snprintf(s.lost_why, sizeof(s.lost_why), fmt, path ? path : "?", detail);
    ESP_LOGE(TAG, "%s; the radio is down", s.lost_why);
    if (s.lost_fd >= 0) {
        uint64_t one = 1;
        ssize_t n = write(s.lost_fd, &one, sizeof(one));
        (void)n; /* an eventfd write of 1 cannot fail short of overflow */
    }
}

bool espnow_sec_port_linux_radio_is_open(void)
{
    return s.open;
}

esp_err_t espnow_sec_port_radio_get_mac(uint8_t mac[ESPNOW_SEC_ADDR_LEN])
{
    return espnow_sec_port_linux_mac(mac) ? ESP_OK : ESP_ERR_INVALID_STATE;
}

static void put_u32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void *reader_main(void *arg)
{
    (void)arg;
    static uint8_t buf[RX_BUF_LEN]; /* only this thread */
    bool warned_truncated = false;
    for (;;) {
        ssize_t n = recv(s.fd, buf, sizeof(buf), MSG_TRUNC);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (s.open) {
                radio_lost("the connection to the air at %s failed: %s", strerror(errno));
            }
            return NULL;
        }
        if (n == 0) {
            if (s.open) {
                radio_lost("the air at %s closed the connection%s", "");
            }
            return NULL;
        }
        if ((size_t)n > sizeof(buf)) {
            if (!warned_truncated) {
                ESP_LOGW(TAG, "air sent a %zd-byte packet, larger than any ESP-NOW frame; "
                              "dropped", n);
                warned_truncated = true;
            }
            continue;
        }
        size_t len = (size_t)n;
        switch (buf[0]) {
        case KIND_RX:
            if (len < RX_HDR_LEN) {
                break;
            }
            s.cfg.on_rx(buf + 1, buf + 1 + ESPNOW_SEC_ADDR_LEN, buf + RX_HDR_LEN,
                        len - RX_HDR_LEN, (int8_t)buf[RX_HDR_LEN - 1], buf[RX_HDR_LEN - 2],
                        s.cfg.ctx);
            break;
        case KIND_TX_STATUS:
            if (len < TX_STATUS_LEN) {
                break;
            }
            s.cfg.on_tx(buf + 5, buf[TX_STATUS_LEN - 1] == 0, s.cfg.ctx);
            break;
        default:
            break; /* unknown or unexpected kinds: ignored, as a newer air may add some */
        }
    }
}

/* Send HELLO, wait for WELCOME. */
static esp_err_t hello(int fd, const uint8_t mac[ESPNOW_SEC_ADDR_LEN], uint8_t channel,
                       const char *path)
{
    uint8_t msg[HELLO_LEN];
    msg[0] = KIND_HELLO;
    memcpy(msg + 1, mac, ESPNOW_SEC_ADDR_LEN);
    msg[1 + ESPNOW_SEC_ADDR_LEN] = channel;
    if (send(fd, msg, sizeof(msg), MSG_NOSIGNAL) != (ssize_t)sizeof(msg)) {
        ESP_LOGE(TAG, "cannot greet the air at %s: %s", path, strerror(errno));
        return ESP_FAIL;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int rc;
    do {
        rc = poll(&pfd, 1, WELCOME_TIMEOUT_MS);
    } while (rc < 0 && errno == EINTR);
    if (rc <= 0) {
        ESP_LOGE(TAG, "the air at %s did not answer HELLO within %d ms", path,
                 WELCOME_TIMEOUT_MS);
        return ESP_ERR_TIMEOUT;
    }
    uint8_t reply[16];
    ssize_t n = recv(fd, reply, sizeof(reply), 0);
    if (n < 2 || reply[0] != KIND_WELCOME) {
        ESP_LOGE(TAG, "the air at %s answered HELLO with something other than WELCOME "
                      "(is it an espnow-sec air?)", path);
        return ESP_FAIL;
    }
    if (reply[1] == 1) {
        ESP_LOGE(TAG, "the air refused MAC %02x:%02x:%02x:%02x:%02x:%02x: already in use by "
                      "another node; give each node its own ESPNOW_MAC",
                 mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
        return ESP_ERR_INVALID_MAC;
    }
    if (reply[1] != 0) {
        ESP_LOGE(TAG, "the air refused this node (WELCOME status %u)", reply[1]);
        return ESP_FAIL;
    }
    return ESP_OK;
}

esp_err_t espnow_sec_port_radio_open(const espnow_sec_port_radio_config_t *cfg)
{
    if (!cfg || !cfg->on_rx || !cfg->on_tx) {
        return ESP_ERR_INVALID_ARG;
    }
    if (s.open) {
        return ESP_ERR_INVALID_STATE;
    }
    const char *path = espnow_sec_port_linux_air_path();
    uint8_t mac[ESPNOW_SEC_ADDR_LEN];
    if (!path || !espnow_sec_port_linux_mac(mac)) {
        ESP_LOGE(TAG, "host radio not configured: call espnow_sec_port_linux_configure() "
                      "before espnow_sec_start()");
        return ESP_ERR_INVALID_STATE;
    }
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(addr.sun_path)) {
        ESP_LOGE(TAG, "air socket path too long (max %zu bytes): %s", sizeof(addr.sun_path) - 1,
                 path);
        return ESP_ERR_INVALID_ARG;
    }
    memcpy(addr.sun_path, path, strlen(path) + 1);

    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        ESP_LOGE(TAG, "socket(AF_UNIX, SOCK_SEQPACKET): %s", strerror(errno));
        return ESP_FAIL;
    }
    if (connect(fd, (const struct sockaddr *)&addr, sizeof(addr)) != 0) {
        ESP_LOGE(TAG, "cannot connect to the air at %s: %s (is the air running?)", path,
                 strerror(errno));
        close(fd);
        return ESP_FAIL;
    }
    esp_err_t err = hello(fd, mac, cfg->channel, path);
    if (err != ESP_OK) {
        close(fd);
        return err;
    }
    s.fd = fd;
    s.cfg = *cfg;
    s.lost_why[0] = '\0';
    (void)espnow_sec_port_linux_radio_lost_fd(); /* exists before the reader can need it */
    atomic_store(&s.seq, 0);
    s.open = true;
    int rc = pthread_create(&s.reader, NULL, reader_main, NULL);
    if (rc != 0) {
        ESP_LOGE(TAG, "cannot create the air reader thread: %s", strerror(rc));
        s.open = false;
        close(fd);
        s.fd = -1;
        return ESP_ERR_NO_MEM;
    }
    pthread_setname_np(s.reader, "espnow_air");
    return ESP_OK;
}

esp_err_t espnow_sec_port_radio_send(const uint8_t dst[ESPNOW_SEC_ADDR_LEN], const uint8_t *frame,
                                     size_t len)
{
    if (!s.open) {
        return ESP_ERR_INVALID_STATE;
    }
    if (!dst || !frame || len == 0 || len > ESPNOW_SEC_FRAME_MAX) {
        return ESP_ERR_INVALID_SIZE;
    }
    uint8_t msg[TX_HDR_LEN + ESPNOW_SEC_FRAME_MAX];
    msg[0] = KIND_TX;
    put_u32le(msg + 1, atomic_fetch_add(&s.seq, 1));
    memcpy(msg + 5, dst, ESPNOW_SEC_ADDR_LEN);
    memcpy(msg + TX_HDR_LEN, frame, len);
    ssize_t n;
    do {
        n = send(s.fd, msg, TX_HDR_LEN + len, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n != (ssize_t)(TX_HDR_LEN + len)) {
        return ESP_ERR_ESPNOW_SEC_RADIO;
    }
    return ESP_OK;
}

void espnow_sec_port_radio_close(void)
{
    if (!s.open) {
        return;
    }
    s.open = false;
    shutdown(s.fd, SHUT_RDWR); /* the reader's recv() returns 0 */
    pthread_join(s.reader, NULL);
    close(s.fd);
    s.fd = -1;
}
