/*
 * main_linux.c - the host node: one process per ESP-NOW station on the simulated air.
 *
 * Environment (docs/air.md, "Starting a node"): ESPNOW_AIR (required), ESPNOW_MAC,
 * ESPNOW_ROLE, ESPNOW_POP, ESPNOW_CHANNEL, ESPNOW_STORE_DIR, ESPNOW_PROTOCOL (compat|v2)
 * override the compiled-in Kconfig values; ESPNOW_LOG_LEVEL (none|error|warn|info|debug|verbose) sets the log
 * level. A bad value prints one line on stderr and exits 2.
 *
 * stdin is the UART: every line read is sent. EOF on stdin does not stop the node;
 * SIGTERM / SIGINT stop it cleanly (exit 0). Exit 1: the node could not start; 2: a bad
 * setting (one line on stderr); 3: the air went away while running (one line on stderr:
 * "the air at <path> closed the connection"), the node cannot work without it.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app.h"
#include "esp_log.h"
#include "espnow_sec_port_linux.h"

#define EXIT_USAGE 2
#define EXIT_AIR_LOST 3
/* Longer than any ESP-NOW payload (v2: 1470), so a line is either sent or refused whole. */
#define LINE_CAP 2048

static const char *PROG = "espnow_node";

__attribute__((format(printf, 1, 2), noreturn)) static void die_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", PROG);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(EXIT_USAGE);
}

static int hex_nibble(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Exactly "aa:bb:cc:dd:ee:ff". */
static bool parse_mac(const char *s, uint8_t mac[ESPNOW_SEC_ADDR_LEN])
{
    if (strlen(s) != 17) {
        return false;
    }
    for (int i = 0; i < ESPNOW_SEC_ADDR_LEN; i++) {
        int hi = hex_nibble(s[i * 3]), lo = hex_nibble(s[i * 3 + 1]);
        if (hi < 0 || lo < 0 || (i < 5 && s[i * 3 + 2] != ':')) {
            return false;
        }
        mac[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static void configure_from_env(app_config_t *cfg, espnow_sec_port_linux_config_t *port,
                               char *store_dir, size_t store_cap)
{
    const char *air = getenv("ESPNOW_AIR");
    if (!air || !air[0]) {
        die_usage("ESPNOW_AIR is not set: set it to the Unix socket path of a running air "
                  "(espnow-sec-air), see docs/air.md");
    }
    struct stat st;
    if (stat(air, &st) != 0) {
        die_usage("ESPNOW_AIR=%s: %s (is the air running?)", air, strerror(errno));
    }
    if (!S_ISSOCK(st.st_mode)) {
        die_usage("ESPNOW_AIR=%s is not a Unix socket (expected the air's socket)", air);
    }
    port->air_path = air;

    const char *v = getenv("ESPNOW_MAC");
    if (v) {
        if (!parse_mac(v, cfg->mac)) {
            die_usage("ESPNOW_MAC=\"%s\" is not a MAC address: expected aa:bb:cc:dd:ee:ff", v);
        }
        if (cfg->mac[0] & 0x01) {
            die_usage("ESPNOW_MAC=%s is a group (multicast/broadcast) address: a station needs "
                      "a unicast MAC (first byte even), e.g. 02:00:00:00:00:01", v);
        }
    } else {
        /* Locally administered, from the pid: unique among the nodes of one machine. */
        unsigned pid = (unsigned)getpid();
        const uint8_t mac[ESPNOW_SEC_ADDR_LEN] = {0x02, 0x00, 0x00, (uint8_t)(pid >> 16),
                                                  (uint8_t)(pid >> 8), (uint8_t)pid};
        memcpy(cfg->mac, mac, sizeof(mac));
    }
    memcpy(port->mac, cfg->mac, ESPNOW_SEC_ADDR_LEN);

    v = getenv("ESPNOW_ROLE");
    if (v) {
        if (strcmp(v, "initiator") == 0) {
            cfg->role = ESPNOW_SEC_ROLE_INITIATOR;
        } else if (strcmp(v, "responder") == 0) {
            cfg->role = ESPNOW_SEC_ROLE_RESPONDER;
        } else {
            die_usage("ESPNOW_ROLE=\"%s\" is not valid: expected initiator or responder", v);
        }
    }

    v = getenv("ESPNOW_POP");
    if (v) {
        cfg->pop = v;
    }
    if (cfg->pop && strlen(cfg->pop) > ESPNOW_SEC_POP_MAX_LEN) {
        die_usage("the PoP (ESPNOW_POP) is %zu bytes: at most %d are allowed", strlen(cfg->pop),
                  ESPNOW_SEC_POP_MAX_LEN);
    }

    v = getenv("ESPNOW_PROTOCOL");
    if (v) {
        if (strcmp(v, "compat") == 0) {
            cfg->protocol = ESPNOW_SEC_PROTOCOL_COMPAT;
        } else if (strcmp(v, "v2") == 0) {
            cfg->protocol = ESPNOW_SEC_PROTOCOL_V2;
        } else {
            die_usage("ESPNOW_PROTOCOL=\"%s\" is not valid: expected compat or v2", v);
        }
    }

    v = getenv("ESPNOW_CHANNEL");
    if (v) {
        /* Digits only: strtol alone would take " 3", "+3" or "3\n". */
        bool digits = v[0] != '\0' && strlen(v) <= 2;
        for (const char *c = v; *c && digits; c++) {
            digits = *c >= '0' && *c <= '9';
        }
        long ch = digits ? strtol(v, NULL, 10) : 0;
        if (ch < 1 || ch > 14) {
            die_usage("ESPNOW_CHANNEL=\"%s\" is not valid: expected a channel number 1..14", v);
        }
        cfg->channel = (uint8_t)ch;
    }

    v = getenv("ESPNOW_STORE_DIR");
    if (v) {
        if (!v[0]) {
            die_usage("ESPNOW_STORE_DIR is empty: set it to a folder for this node's keys");
        }
        if (strlen(v) >= store_cap) {
            die_usage("ESPNOW_STORE_DIR is too long (max %zu bytes)", store_cap - 1);
        }
        snprintf(store_dir, store_cap, "%s", v);
    } else {
        snprintf(store_dir, store_cap, "./espnow_store/%02x%02x%02x%02x%02x%02x", cfg->mac[0],
                 cfg->mac[1], cfg->mac[2], cfg->mac[3], cfg->mac[4], cfg->mac[5]);
    }
    port->store_dir = store_dir;

    v = getenv("ESPNOW_LOG_LEVEL");
    if (v) {
        static const char *names[] = {"none", "error", "warn", "info", "debug", "verbose"};
        size_t i;
        for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            if (strcmp(v, names[i]) == 0) {
                break;
            }
        }
        if (i == sizeof(names) / sizeof(names[0])) {
            die_usage("ESPNOW_LOG_LEVEL=\"%s\" is not valid: expected none, error, warn, info, "
                      "debug or verbose", v);
        }
        esp_log_level_set("*", (esp_log_level_t)i);
    }
}

/* Feed complete lines of `buf` to the app; keep a trailing partial line. */
static size_t feed_lines(char *buf, size_t len, size_t *overflow)
{
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != '\n') {
            continue;
        }
        size_t end = i;
        if (end > start && buf[end - 1] == '\r') {
            end--;
        }
        if (*overflow) {
            app_uart_line_too_long(*overflow + (end - start));
            *overflow = 0;
        } else {
            app_uart_line((const uint8_t *)buf + start, end - start);
        }
        start = i + 1;
    }
    memmove(buf, buf + start, len - start);
    return len - start;
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);

    app_config_t cfg;
    app_config_default(&cfg);
    espnow_sec_port_linux_config_t port = {0};
    static char store_dir[4096];
    configure_from_env(&cfg, &port, store_dir, sizeof(store_dir));

    /* Signals become readable events on a descriptor; block them before any thread
       exists so every thread inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    if (sigprocmask(SIG_BLOCK, &sigs, NULL) != 0) {
        perror("sigprocmask");
        return 1;
    }
    int sig_fd = signalfd(-1, &sigs, SFD_CLOEXEC);
    if (sig_fd < 0) {
        perror("signalfd");
        return 1;
    }

    if (espnow_sec_port_linux_configure(&port) != ESP_OK) {
        die_usage("invalid host configuration (air path or store folder)");
    }
    esp_err_t err = app_start(&cfg);
    if (err == ESP_ERR_ESPNOW_SEC_STORE_CORRUPT) {
        if (cfg.role == ESPNOW_SEC_ROLE_INITIATOR) {
            /* A new initiator key re-provisions the responders on its first run, but anything
               else still holding the old key (a second initiator's group) is cut off. */
            fprintf(stderr, "%s: cannot start: the key store in %s is damaged (%s); restore it "
                            "from a backup, or remove that folder: a new app key is made and the "
                            "responders are provisioned again on the next run\n", PROG, store_dir,
                    espnow_sec_err_to_name(err));
        } else {
            fprintf(stderr, "%s: cannot start: the key store in %s is damaged (%s); remove that "
                            "folder to start unprovisioned\n", PROG, store_dir,
                    espnow_sec_err_to_name(err));
        }
        return 1;
    }
    if (err != ESP_OK) {
        fprintf(stderr, "%s: cannot start: %s (see the log above)\n", PROG,
                espnow_sec_err_to_name(err));
        return 1;
    }

    static char line[LINE_CAP];
    size_t used = 0, overflow = 0;
    bool stdin_open = true;
    int status = 0;
    for (;;) {
        struct pollfd fds[3] = {
            {.fd = sig_fd, .events = POLLIN},
            {.fd = espnow_sec_port_linux_radio_lost_fd(), .events = POLLIN},
            {.fd = STDIN_FILENO, .events = POLLIN},
        };
        int rc = poll(fds, stdin_open ? 3 : 2, -1);
        if (rc < 0) {
            if (errno == EINTR) {
                continue;
            }
            perror("poll");
            break;
        }
        if (fds[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                ESP_LOGI("app_main", "%s received, stopping",
                         si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
            }
            break;
        }
        if (fds[1].revents & POLLIN) {
            const char *why = espnow_sec_port_linux_radio_lost_reason();
            fprintf(stderr, "%s: stopping: %s\n", PROG, why ? why : "the radio is down");
            status = EXIT_AIR_LOST;
            break;
        }
        if (stdin_open && (fds[2].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = read(STDIN_FILENO, line + used, sizeof(line) - used);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                /* EOF (or a broken stdin): the UART went quiet, the node keeps running.
                   A last line without a newline is still a line. */
                stdin_open = false;
                if (used || overflow) {
                    line[used++] = '\n';
                    used = feed_lines(line, used, &overflow);
                }
                continue;
            }
            used = feed_lines(line, used + (size_t)n, &overflow);
            if (used == sizeof(line)) {
                /* A line longer than the buffer: count it, report it at its newline. */
                overflow += used;
                used = 0;
            }
        }
    }

    app_stop();
    close(sig_fd);
    return status;
}
