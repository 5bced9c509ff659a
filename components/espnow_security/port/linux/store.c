/*
 * store.c (linux) - key records as files, one per record, replaced atomically.
 *
 * Record `name` of namespace `ns` is the file <store dir>/<ns>.<name>. A save writes
 * .<ns>.<name>.tmp.<pid>, fsyncs it, renames it over the record and fsyncs the folder,
 * so after a crash or power cut the record holds the old or the new bytes, never a mix.
 * Left-over temporary files are never read as records.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "esp_log.h"
#include "port.h"
#include "port_linux_priv.h"

static const char *TAG = "espnow_sec";

#define NAME_MAX_LEN 15 /* NVS key and namespace limit */

static struct {
    bool open;
    char ns[NAME_MAX_LEN + 1];
    char dir[4096];
} s;

static bool valid_name(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > NAME_MAX_LEN) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_')) {
            return false;
        }
    }
    return true;
}

/* mkdir -p, mode 0700: key material is nobody else's business. */
static esp_err_t make_dirs(const char *dir)
{
    char path[sizeof(s.dir)];
    snprintf(path, sizeof(path), "%s", dir);
    for (char *p = path + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(path, 0700) != 0 && errno != EEXIST) {
                ESP_LOGE(TAG, "cannot create key store folder %s: %s", path, strerror(errno));
                return ESP_FAIL;
            }
            *p = saved;
            if (saved == '\0') {
                break;
            }
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        ESP_LOGE(TAG, "key store path %s is not a folder", dir);
        return ESP_FAIL;
    }
    return ESP_OK;
}

static esp_err_t record_path(const char *name, char *out, size_t cap)
{
    if (!s.open) {
        return ESP_ERR_INVALID_STATE;
    }
    if (!valid_name(name)) {
        return ESP_ERR_INVALID_ARG;
    }
    int n = snprintf(out, cap, "%s/%s.%s", s.dir, s.ns, name);
    return (n > 0 && (size_t)n < cap) ? ESP_OK : ESP_ERR_INVALID_SIZE;
}

static void sync_dir(void)
{
    int fd = open(s.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

esp_err_t espnow_sec_port_store_open(const char *ns)
{
    if (!valid_name(ns)) {
        ESP_LOGE(TAG, "key store namespace \"%s\" is not 1..15 characters of [A-Za-z0-9_]",
                 ns ? ns : "(null)");
        return ESP_ERR_INVALID_ARG;
    }
    const char *dir = espnow_sec_port_linux_store_dir();
    if (!dir) {
        ESP_LOGE(TAG, "host key store not configured: call espnow_sec_port_linux_configure()");
        return ESP_ERR_INVALID_STATE;
    }
    esp_err_t err = make_dirs(dir);
    if (err != ESP_OK) {
        return err;
    }
    snprintf(s.ns, sizeof(s.ns), "%s", ns);
    snprintf(s.dir, sizeof(s.dir), "%s", dir);
    s.open = true;
    return ESP_OK;
}

esp_err_t espnow_sec_port_store_load(const char *name, uint8_t *buf, size_t cap, size_t *out_len)
{
    char path[sizeof(s.dir) + 64];
    esp_err_t err = record_path(name, path, sizeof(path));
    if (err != ESP_OK) {
        return err;
    }
    if (!out_len || (!buf && cap)) {
        return ESP_ERR_INVALID_ARG;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            return ESP_ERR_NOT_FOUND;
        }
        ESP_LOGE(TAG, "cannot read key record %s: %s", path, strerror(errno));
        return ESP_FAIL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        ESP_LOGE(TAG, "key record %s is not a regular file", path);
        return ESP_FAIL;
    }
    if ((uint64_t)st.st_size > cap) {
        close(fd);
        return ESP_ERR_INVALID_SIZE; /* never a partial record */
    }
    size_t want = (size_t)st.st_size, got = 0;
    while (got < want) {
        ssize_t n = read(fd, buf + got, want - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            close(fd);
            ESP_LOGE(TAG, "cannot read key record %s: %s", path,
                     n < 0 ? strerror(errno) : "file shrank while reading");
            return ESP_FAIL;
        }
        got += (size_t)n;
    }
    close(fd);
    *out_len = got;
    return ESP_OK;
}

esp_err_t espnow_sec_port_store_save(const char *name, const uint8_t *buf, size_t len)
{
    char path[sizeof(s.dir) + 64];
    char tmp[sizeof(path) + 32];
    esp_err_t err = record_path(name, path, sizeof(path));
    if (err != ESP_OK) {
        return err;
    }
    if (!buf && len) {
        return ESP_ERR_INVALID_ARG;
    }
    int n = snprintf(tmp, sizeof(tmp), "%s/.%s.%s.tmp.%ld", s.dir, s.ns, name, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        return ESP_ERR_INVALID_SIZE;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        ESP_LOGE(TAG, "cannot write key record %s: %s", tmp, strerror(errno));
        return ESP_FAIL;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, buf + done, len - done);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            goto fail;
        }
        done += (size_t)w;
    }
    if (fsync(fd) != 0) {
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        goto fail;
    }
    sync_dir();
    return ESP_OK;

fail:
    ESP_LOGE(TAG, "cannot write key record %s: %s (the old record is unchanged)", path,
             strerror(errno));
    if (fd >= 0) {
        close(fd);
    }
    unlink(tmp);
    return ESP_FAIL;
}

esp_err_t espnow_sec_port_store_erase(const char *name)
{
    char path[sizeof(s.dir) + 64];
    esp_err_t err = record_path(name, path, sizeof(path));
    if (err != ESP_OK) {
        return err;
    }
    if (unlink(path) != 0 && errno != ENOENT) {
        ESP_LOGE(TAG, "cannot erase key record %s: %s", path, strerror(errno));
        return ESP_FAIL;
    }
    sync_dir();
    return ESP_OK;
}

esp_err_t espnow_sec_port_store_erase_all(void)
{
    if (!s.open) {
        return ESP_ERR_INVALID_STATE;
    }
    DIR *d = opendir(s.dir);
    if (!d) {
        ESP_LOGE(TAG, "cannot list key store folder %s: %s", s.dir, strerror(errno));
        return ESP_FAIL;
    }
    char prefix[NAME_MAX_LEN + 3], tmp_prefix[NAME_MAX_LEN + 4];
    snprintf(prefix, sizeof(prefix), "%s.", s.ns);
    snprintf(tmp_prefix, sizeof(tmp_prefix), ".%s.", s.ns);
    esp_err_t err = ESP_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *rest = NULL;
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
            rest = e->d_name + strlen(prefix);
            if (!valid_name(rest)) {
                continue; /* not one of ours */
            }
        } else if (strncmp(e->d_name, tmp_prefix, strlen(tmp_prefix)) != 0) {
            continue;
        }
        if (unlinkat(dirfd(d), e->d_name, 0) != 0 && errno != ENOENT) {
            ESP_LOGE(TAG, "cannot erase %s/%s: %s", s.dir, e->d_name, strerror(errno));
            err = ESP_FAIL;
        }
    }
    closedir(d);
    sync_dir();
    return err;
}

void espnow_sec_port_store_close(void)
{
    s.open = false;
}
