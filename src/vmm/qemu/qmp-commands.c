/* JSON of each QMP command vMatrix uses (see qmp-commands.h).
 *
 * Network byte counters: QEMU (7.2 here) has no QMP command that reports them for a
 * "-netdev user" backend or a virtio-net device (query-stats only has KVM providers,
 * "info usernet" lists connections without totals), so there is no command for them here and
 * the driver reports 0. The HTTP proxy in front of the VM is the place that can count them. */
#include "vmm/qemu/qmp-commands.h"

#include <string.h>

#include "base/util.h"

static const char *const qmp_run_state_names[] = {
        [QMP_RUN_STATE_UNKNOWN] = "unknown",
        [QMP_RUN_STATE_DEBUG] = "debug",
        [QMP_RUN_STATE_INMIGRATE] = "inmigrate",
        [QMP_RUN_STATE_INTERNAL_ERROR] = "internal-error",
        [QMP_RUN_STATE_IO_ERROR] = "io-error",
        [QMP_RUN_STATE_PAUSED] = "paused",
        [QMP_RUN_STATE_POSTMIGRATE] = "postmigrate",
        [QMP_RUN_STATE_PRELAUNCH] = "prelaunch",
        [QMP_RUN_STATE_FINISH_MIGRATE] = "finish-migrate",
        [QMP_RUN_STATE_RESTORE_VM] = "restore-vm",
        [QMP_RUN_STATE_RUNNING] = "running",
        [QMP_RUN_STATE_SAVE_VM] = "save-vm",
        [QMP_RUN_STATE_SHUTDOWN] = "shutdown",
        [QMP_RUN_STATE_SUSPENDED] = "suspended",
        [QMP_RUN_STATE_WATCHDOG] = "watchdog",
        [QMP_RUN_STATE_GUEST_PANICKED] = "guest-panicked",
        [QMP_RUN_STATE_COLO] = "colo",
};

static const char *const qmp_migrate_status_names[] = {
        [QMP_MIGRATE_UNKNOWN] = "unknown",
        [QMP_MIGRATE_NONE] = "none",
        [QMP_MIGRATE_SETUP] = "setup",
        [QMP_MIGRATE_CANCELLING] = "cancelling",
        [QMP_MIGRATE_CANCELLED] = "cancelled",
        [QMP_MIGRATE_ACTIVE] = "active",
        [QMP_MIGRATE_POSTCOPY_ACTIVE] = "postcopy-active",
        [QMP_MIGRATE_POSTCOPY_PAUSED] = "postcopy-paused",
        [QMP_MIGRATE_POSTCOPY_RECOVER] = "postcopy-recover",
        [QMP_MIGRATE_COMPLETED] = "completed",
        [QMP_MIGRATE_FAILED] = "failed",
        [QMP_MIGRATE_COLO] = "colo",
        [QMP_MIGRATE_PRE_SWITCHOVER] = "pre-switchover",
        [QMP_MIGRATE_DEVICE] = "device",
        [QMP_MIGRATE_WAIT_UNPLUG] = "wait-unplug",
};

static int enum_from_string(const char *const *names, size_t n, const char *s) {
        for (size_t i = 1; s && i < n; i++)
                if (names[i] && streq(names[i], s))
                        return (int)i;
        return 0; /* *_UNKNOWN */
}

const char *qmp_run_state_to_string(qmp_run_state_t s) {
        return (size_t)s < ELEMENTSOF(qmp_run_state_names) ? qmp_run_state_names[s] : "unknown";
}

const char *qmp_migrate_status_to_string(qmp_migrate_status_t s) {
        return (size_t)s < ELEMENTSOF(qmp_migrate_status_names) ? qmp_migrate_status_names[s] : "unknown";
}

bool qmp_migrate_status_is_final(qmp_migrate_status_t s) {
        return s == QMP_MIGRATE_COMPLETED || s == QMP_MIGRATE_FAILED || s == QMP_MIGRATE_CANCELLED;
}

/* A non-negative integer member: absent gives 0, any other type or a negative value -EBADMSG. */
static int json_member_u64(json_t *obj, const char *key, uint64_t *ret) {
        json_t *v = json_object_get(obj, key);
        if (!v) {
                *ret = 0;
                return 0;
        }
        if (!json_is_integer(v) || json_integer_value(v) < 0)
                return -EBADMSG;
        *ret = (uint64_t)json_integer_value(v);
        return 0;
}

/* Run a command whose reply carries nothing we need. */
static int qmp_simple(qmp_t *q, const char *command, json_t *args, int timeout_ms, qmp_error_t *err) {
        return qmp_command_send(q, command, args, -1, timeout_ms, err, NULL);
}

int qmp_parse_status(json_t *value, qmp_status_t *ret) {
        json_t *running = json_object_get(value, "running");
        const char *status = json_string_value(json_object_get(value, "status"));
        if (!json_is_boolean(running) || !status)
                return -EBADMSG;
        *ret = (qmp_status_t){
                .running = json_is_true(running),
                .state = enum_from_string(qmp_run_state_names, ELEMENTSOF(qmp_run_state_names), status),
        };
        return 0;
}

int qmp_cmd_query_status(qmp_t *q, int timeout_ms, qmp_error_t *err, qmp_status_t *ret) {
        _cleanup_(json_decrefp) json_t *value = NULL;
        int r = qmp_command_send(q, "query-status", NULL, -1, timeout_ms, err, &value);
        if (r < 0)
                return r;
        r = qmp_parse_status(value, ret);
        if (r < 0)
                qmp_error_set(err, "", "malformed reply to query-status");
        return r;
}

int qmp_cmd_stop(qmp_t *q, int timeout_ms, qmp_error_t *err) { return qmp_simple(q, "stop", NULL, timeout_ms, err); }

int qmp_cmd_cont(qmp_t *q, int timeout_ms, qmp_error_t *err) { return qmp_simple(q, "cont", NULL, timeout_ms, err); }

int qmp_cmd_system_powerdown(qmp_t *q, int timeout_ms, qmp_error_t *err) {
        return qmp_simple(q, "system_powerdown", NULL, timeout_ms, err);
}

int qmp_cmd_quit(qmp_t *q, int timeout_ms, qmp_error_t *err) {
        int r = qmp_simple(q, "quit", NULL, timeout_ms, err);
        return r == -ECONNRESET ? 0 : r;
}

int qmp_cmd_getfd(qmp_t *q, int fd, const char *name, int timeout_ms, qmp_error_t *err) {
        if (fd < 0 || !name)
                return -EINVAL;
        _cleanup_(json_decrefp) json_t *args = json_pack("{s:s}", "fdname", name);
        if (!args)
                return -ENOMEM;
        return qmp_command_send(q, "getfd", args, fd, timeout_ms, err, NULL);
}

int qmp_cmd_closefd(qmp_t *q, const char *name, int timeout_ms, qmp_error_t *err) {
        _cleanup_(json_decrefp) json_t *args = json_pack("{s:s}", "fdname", name ? name : "");
        if (!args)
                return -ENOMEM;
        return qmp_simple(q, "closefd", args, timeout_ms, err);
}

int qmp_cmd_migrate(qmp_t *q, const char *uri, int timeout_ms, qmp_error_t *err) {
        _cleanup_(json_decrefp) json_t *args = json_pack("{s:s}", "uri", uri ? uri : "");
        if (!args)
                return -ENOMEM;
        return qmp_simple(q, "migrate", args, timeout_ms, err);
}

int qmp_cmd_migrate_incoming(qmp_t *q, const char *uri, int timeout_ms, qmp_error_t *err) {
        _cleanup_(json_decrefp) json_t *args = json_pack("{s:s}", "uri", uri ? uri : "");
        if (!args)
                return -ENOMEM;
        return qmp_simple(q, "migrate-incoming", args, timeout_ms, err);
}

int qmp_parse_migrate_info(json_t *value, qmp_migrate_info_t *ret) {
        if (!json_is_object(value))
                return -EBADMSG;
        qmp_migrate_info_t info = { .status = QMP_MIGRATE_NONE };
        json_t *status = json_object_get(value, "status");
        if (status) {
                if (!json_is_string(status))
                        return -EBADMSG;
                info.status = enum_from_string(qmp_migrate_status_names, ELEMENTSOF(qmp_migrate_status_names),
                                               json_string_value(status));
        }
        json_t *ram = json_object_get(value, "ram");
        if (ram) {
                if (!json_is_object(ram))
                        return -EBADMSG;
                if (json_member_u64(ram, "transferred", &info.transferred_bytes) < 0 ||
                    json_member_u64(ram, "total", &info.total_bytes) < 0 ||
                    json_member_u64(ram, "remaining", &info.remaining_bytes) < 0)
                        return -EBADMSG;
        }
        const char *desc = json_string_value(json_object_get(value, "error-desc"));
        snprintf(info.error_desc, sizeof info.error_desc, "%s", desc ? desc : "");
        *ret = info;
        return 0;
}

int qmp_cmd_query_migrate(qmp_t *q, int timeout_ms, qmp_error_t *err, qmp_migrate_info_t *ret) {
        _cleanup_(json_decrefp) json_t *value = NULL;
        int r = qmp_command_send(q, "query-migrate", NULL, -1, timeout_ms, err, &value);
        if (r < 0)
                return r;
        r = qmp_parse_migrate_info(value, ret);
        if (r < 0)
                qmp_error_set(err, "", "malformed reply to query-migrate");
        return r;
}

int qmp_cmd_migrate_set_capability(qmp_t *q, const char *capability, bool state, int timeout_ms, qmp_error_t *err) {
        if (!capability)
                return -EINVAL;
        _cleanup_(json_decrefp) json_t *args =
                json_pack("{s:[{s:s, s:b}]}", "capabilities", "capability", capability, "state", state);
        if (!args)
                return -ENOMEM;
        return qmp_simple(q, "migrate-set-capabilities", args, timeout_ms, err);
}

int qmp_cmd_migrate_set_max_bandwidth(qmp_t *q, uint64_t bytes_per_s, int timeout_ms, qmp_error_t *err) {
        _cleanup_(json_decrefp) json_t *args =
                json_pack("{s:I}", "max-bandwidth", (json_int_t)MIN(bytes_per_s, (uint64_t)INT64_MAX));
        if (!args)
                return -ENOMEM;
        return qmp_simple(q, "migrate-set-parameters", args, timeout_ms, err);
}

int qmp_parse_blockstats(json_t *value, qmp_blockstats_t *ret) {
        if (!json_is_array(value))
                return -EBADMSG;
        qmp_blockstats_t sum = { 0 };
        size_t i;
        json_t *dev;
        json_array_foreach(value, i, dev) {
                json_t *stats = json_object_get(dev, "stats");
                uint64_t rd, wr;
                if (!json_is_object(stats) || json_member_u64(stats, "rd_bytes", &rd) < 0 ||
                    json_member_u64(stats, "wr_bytes", &wr) < 0)
                        return -EBADMSG;
                sum.rd_bytes += rd;
                sum.wr_bytes += wr;
        }
        *ret = sum;
        return 0;
}

int qmp_cmd_query_blockstats(qmp_t *q, int timeout_ms, qmp_error_t *err, qmp_blockstats_t *ret) {
        _cleanup_(json_decrefp) json_t *value = NULL;
        int r = qmp_command_send(q, "query-blockstats", NULL, -1, timeout_ms, err, &value);
        if (r < 0)
                return r;
        r = qmp_parse_blockstats(value, ret);
        if (r < 0)
                qmp_error_set(err, "", "malformed reply to query-blockstats");
        return r;
}

/* ---- Live migration with non-shared storage: NBD, block jobs, migration tuning ---- */

int qmp_cmd_nbd_server_start(qmp_t *q, const char *host, int port, const char *tls_creds, const char *tls_authz,
                             int timeout_ms, qmp_error_t *err) {
        if (!host || port < 1 || port > 65535)
                return -EINVAL;
        char p[16];
        snprintf(p, sizeof p, "%d", port); /* QAPI InetSocketAddress.port is a string */
        /* 7.2 still takes the legacy SocketAddress here: {"type": "inet", "data": {...}} */
        _cleanup_(json_decrefp) json_t *args =
                json_pack("{s:{s:s, s:{s:s, s:s}}, s:s?, s:s?}", "addr", "type", "inet", "data", "host", host, "port",
                          p, "tls-creds", tls_creds, "tls-authz", tls_authz);
        if (!args)
                return -ENOMEM;
        return qmp_simple(q, "nbd-server-start", args, timeout_ms, err);
}

int qmp_cmd_nbd_server_stop(qmp_t *q, int timeout_ms, qmp_error_t *err) {
        return qmp_simple(q, "nbd-server-stop", NULL, timeout_ms, err);
}

int qmp_cmd_block_export_add_nbd(qmp_t *q, const char *id, const char *node_name, bool writable, int timeout_ms,
                                 qmp_error_t *err) {
        if (!id || !node_name)
                return -EINVAL;
        /* the export's NBD name defaults to node_name */
        _cleanup_(json_decrefp) json_t *args = json_pack("{s:s, s:s, s:s, s:b}", "type", "nbd", "id", id,
                                                         "node-name", node_name, "writable", writable);
        if (!args)
                return -ENOMEM;
        return qmp_simple(q, "block-export-add", args, timeout_ms, err);
}

int qmp_cmd_blockdev_add_nbd(qmp_t *q, const char *node_name, const char *host, int port, const char *export,
                             const char *tls_creds, const char *tls_hostname, int timeout_ms, qmp_error_t *err) {
        if (!node_name || !host || !export || port < 1 || port > 65535 || (tls_hostname && !tls_creds))
                return -EINVAL;
        char p[16];
        snprintf(p, sizeof p, "%d", port);
        /* blockdev-add takes the flat SocketAddress: {"type": "inet", "host": ..., "port": ...} */
        _cleanup_(json_decrefp) json_t *args =
                json_pack("{s:s, s:s, s:{s:s, s:s, s:s}, s:s, s:s?, s:s?}", "driver", "nbd", "node-name", node_name,
                          "server", "type", "inet", "host", host, "port", p, "export", export, "tls-creds", tls_creds,
                          "tls-hostname", tls_hostname);
        if (!args)
                return -ENOMEM;
        return qmp_simple(q, "blockdev-add", args, timeout_ms, err);
}

int qmp_cmd_blockdev_del(qmp_t *q, const char *node_name, int timeout_ms, qmp_error_t *err) {
        if (!node_name)
                return -EINVAL;
        _cleanup_(json_decrefp) json_t *args = json_pack("{s:s}", "node-name", node_name);
        if (!args)
                return -ENOMEM;
        return qmp_simple(q, "blockdev-del", args, timeout_ms, err);
}

int qmp_cmd_blockdev_mirror(qmp_t *q, const char *job_id, const char *device, const char *target, const char *sync,
                            int timeout_ms, qmp_error_t *err) {
        if (!job_id || !device || !target || !sync)
                return -EINVAL;
        _cleanup_(json_decrefp) json_t *args = json_pack("{s:s, s:s, s:s, s:s}", "job-id", job_id, "device", device,
                                                         "target", target, "sync", sync);
        if (!args)
                return -ENOMEM;
        return qmp_simple(q, "blockdev-mirror", args, timeout_ms, err);
}

int qmp_cmd_block_job_cancel(qmp_t *q, const char *job_id, bool force, int timeout_ms, qmp_error_t *err) {
        if (!job_id)
                return -EINVAL;
        _cleanup_(json_decrefp) json_t *args = json_pack("{s:s, s:b}", "device", job_id, "force", force);
        if (!args)
                return -ENOMEM;
        return qmp_simple(q, "block-job-cancel", args, timeout_ms, err);
}

int qmp_parse_block_jobs(json_t *value, const char *job_id, qmp_block_job_t *ret) {
        if (!json_is_array(value) || !job_id)
                return -EBADMSG;
        qmp_block_job_t job = { 0 };
        size_t i;
        json_t *j;
        json_array_foreach(value, i, j) {
                /* a job started with job-id reports it as "device" */
                const char *id = json_string_value(json_object_get(j, "device"));
                if (!json_is_object(j) || !id)
                        return -EBADMSG;
                if (!streq(id, job_id))
                        continue;
                json_t *ready = json_object_get(j, "ready");
                const char *status = json_string_value(json_object_get(j, "status"));
                if (!json_is_boolean(ready) || !status || json_member_u64(j, "offset", &job.offset) < 0 ||
                    json_member_u64(j, "len", &job.len) < 0)
                        return -EBADMSG;
                job.found = true;
                job.ready = json_is_true(ready);
                snprintf(job.status, sizeof job.status, "%s", status);
                break;
        }
        *ret = job;
        return 0;
}

int qmp_cmd_query_block_job(qmp_t *q, const char *job_id, int timeout_ms, qmp_error_t *err, qmp_block_job_t *ret) {
        _cleanup_(json_decrefp) json_t *value = NULL;
        int r = qmp_command_send(q, "query-block-jobs", NULL, -1, timeout_ms, err, &value);
        if (r < 0)
                return r;
        r = qmp_parse_block_jobs(value, job_id, ret);
        if (r < 0)
                qmp_error_set(err, "", "malformed reply to query-block-jobs");
        return r;
}

int qmp_parse_block_job_end(json_t *event, qmp_block_job_end_t *ret) {
        json_t *data = json_object_get(event, "data");
        if (!json_is_object(data))
                return -EBADMSG;
        qmp_block_job_end_t end = { 0 };
        if (json_member_u64(data, "offset", &end.offset) < 0 || json_member_u64(data, "len", &end.len) < 0)
                return -EBADMSG;
        const char *error = json_string_value(json_object_get(data, "error"));
        snprintf(end.error, sizeof end.error, "%s", error ? error : "");
        *ret = end;
        return 0;
}

int qmp_event_block_job_completed(qmp_t *q, int timeout_ms, qmp_error_t *err, qmp_block_job_end_t *ret) {
        _cleanup_(json_decrefp) json_t *event = NULL;
        int r = qmp_event_wait(q, "BLOCK_JOB_COMPLETED", timeout_ms, err, &event);
        if (r < 0)
                return r;
        r = qmp_parse_block_job_end(event, ret);
        if (r < 0)
                qmp_error_set(err, "", "malformed BLOCK_JOB_COMPLETED event");
        return r;
}

int qmp_cmd_migrate_set_downtime_limit(qmp_t *q, uint64_t ms, int timeout_ms, qmp_error_t *err) {
        _cleanup_(json_decrefp) json_t *args =
                json_pack("{s:I}", "downtime-limit", (json_int_t)MIN(ms, (uint64_t)INT64_MAX));
        if (!args)
                return -ENOMEM;
        return qmp_simple(q, "migrate-set-parameters", args, timeout_ms, err);
}

int qmp_cmd_migrate_continue(qmp_t *q, qmp_migrate_status_t state, int timeout_ms, qmp_error_t *err) {
        _cleanup_(json_decrefp) json_t *args = json_pack("{s:s}", "state", qmp_migrate_status_to_string(state));
        if (!args)
                return -ENOMEM;
        return qmp_simple(q, "migrate-continue", args, timeout_ms, err);
}

int qmp_cmd_migrate_cancel(qmp_t *q, int timeout_ms, qmp_error_t *err) {
        return qmp_simple(q, "migrate_cancel", NULL, timeout_ms, err);
}

int qmp_parse_migrate_times(json_t *value, qmp_migrate_times_t *ret) {
        if (!json_is_object(value))
                return -EBADMSG;
        qmp_migrate_times_t t = { 0 };
        if (json_member_u64(value, "total-time", &t.total_ms) < 0 ||
            json_member_u64(value, "downtime", &t.downtime_ms) < 0 ||
            json_member_u64(value, "setup-time", &t.setup_ms) < 0)
                return -EBADMSG;
        *ret = t;
        return 0;
}

int qmp_cmd_query_migrate_times(qmp_t *q, int timeout_ms, qmp_error_t *err, qmp_migrate_times_t *ret) {
        _cleanup_(json_decrefp) json_t *value = NULL;
        int r = qmp_command_send(q, "query-migrate", NULL, -1, timeout_ms, err, &value);
        if (r < 0)
                return r;
        r = qmp_parse_migrate_times(value, ret);
        if (r < 0)
                qmp_error_set(err, "", "malformed reply to query-migrate");
        return r;
}

int qmp_parse_version(json_t *value, qmp_version_t *ret) {
        json_t *qemu = json_object_get(value, "qemu");
        uint64_t v[3];
        if (!json_is_object(qemu) || json_member_u64(qemu, "major", &v[0]) < 0 ||
            json_member_u64(qemu, "minor", &v[1]) < 0 || json_member_u64(qemu, "micro", &v[2]) < 0 ||
            v[0] > INT32_MAX || v[1] > INT32_MAX || v[2] > INT32_MAX)
                return -EBADMSG;
        *ret = (qmp_version_t){ .major = (int)v[0], .minor = (int)v[1], .micro = (int)v[2] };
        return 0;
}

int qmp_cmd_query_version(qmp_t *q, int timeout_ms, qmp_error_t *err, qmp_version_t *ret) {
        _cleanup_(json_decrefp) json_t *value = NULL;
        int r = qmp_command_send(q, "query-version", NULL, -1, timeout_ms, err, &value);
        if (r < 0)
                return r;
        r = qmp_parse_version(value, ret);
        if (r < 0)
                qmp_error_set(err, "", "malformed reply to query-version");
        return r;
}

int qmp_parse_kvm(json_t *value, bool *ret_enabled) {
        json_t *enabled = json_object_get(value, "enabled");
        if (!json_is_boolean(enabled))
                return -EBADMSG;
        *ret_enabled = json_is_true(enabled);
        return 0;
}

int qmp_cmd_query_kvm(qmp_t *q, int timeout_ms, qmp_error_t *err, bool *ret_enabled) {
        _cleanup_(json_decrefp) json_t *value = NULL;
        int r = qmp_command_send(q, "query-kvm", NULL, -1, timeout_ms, err, &value);
        if (r < 0)
                return r;
        r = qmp_parse_kvm(value, ret_enabled);
        if (r < 0)
                qmp_error_set(err, "", "malformed reply to query-kvm");
        return r;
}

/* ---- TLS of the live migration streams ---- */

int qmp_cmd_object_add_tls_creds(qmp_t *q, const char *id, bool server, const char *dir, int timeout_ms,
                                 qmp_error_t *err) {
        if (!id || !dir)
                return -EINVAL;
        /* 7.2's object-add takes the properties flat, beside qom-type and id */
        _cleanup_(json_decrefp) json_t *args =
                json_pack("{s:s, s:s, s:s, s:s, s:b}", "qom-type", "tls-creds-x509", "id", id, "endpoint",
                          server ? "server" : "client", "dir", dir, "verify-peer", true);
        if (!args)
                return -ENOMEM;
        return qmp_simple(q, "object-add", args, timeout_ms, err);
}

int qmp_cmd_object_add_authz_simple(qmp_t *q, const char *id, const char *identity, int timeout_ms,
                                    qmp_error_t *err) {
        if (!id || !identity || !*identity)
                return -EINVAL;
        _cleanup_(json_decrefp) json_t *args =
                json_pack("{s:s, s:s, s:s}", "qom-type", "authz-simple", "id", id, "identity", identity);
        if (!args)
                return -ENOMEM;
        return qmp_simple(q, "object-add", args, timeout_ms, err);
}

int qmp_cmd_object_del(qmp_t *q, const char *id, int timeout_ms, qmp_error_t *err) {
        if (!id)
                return -EINVAL;
        _cleanup_(json_decrefp) json_t *args = json_pack("{s:s}", "id", id);
        if (!args)
                return -ENOMEM;
        return qmp_simple(q, "object-del", args, timeout_ms, err);
}

int qmp_cmd_migrate_set_tls(qmp_t *q, const qmp_migrate_tls_t *tls, int timeout_ms, qmp_error_t *err) {
        if (!tls)
                return -EINVAL;
        _cleanup_(json_decrefp) json_t *args = json_pack("{s:s, s:s, s:s}", "tls-creds", tls->creds, "tls-hostname",
                                                         tls->hostname, "tls-authz", tls->authz);
        if (!args)
                return -ENOMEM;
        return qmp_simple(q, "migrate-set-parameters", args, timeout_ms, err);
}

/* A string member into buf: absent gives "", another type or one too long -EBADMSG. */
static int json_member_str(json_t *obj, const char *key, char *buf, size_t size) {
        json_t *v = json_object_get(obj, key);
        const char *s = v ? json_string_value(v) : "";
        if (!s || strlen(s) >= size)
                return -EBADMSG;
        memcpy(buf, s, strlen(s) + 1);
        return 0;
}

int qmp_parse_migrate_tls(json_t *value, qmp_migrate_tls_t *ret) {
        if (!json_is_object(value))
                return -EBADMSG;
        qmp_migrate_tls_t t = { 0 };
        if (json_member_str(value, "tls-creds", t.creds, sizeof t.creds) < 0 ||
            json_member_str(value, "tls-hostname", t.hostname, sizeof t.hostname) < 0 ||
            json_member_str(value, "tls-authz", t.authz, sizeof t.authz) < 0)
                return -EBADMSG;
        *ret = t;
        return 0;
}

int qmp_cmd_query_migrate_tls(qmp_t *q, int timeout_ms, qmp_error_t *err, qmp_migrate_tls_t *ret) {
        _cleanup_(json_decrefp) json_t *value = NULL;
        int r = qmp_command_send(q, "query-migrate-parameters", NULL, -1, timeout_ms, err, &value);
        if (r < 0)
                return r;
        r = qmp_parse_migrate_tls(value, ret);
        if (r < 0)
                qmp_error_set(err, "", "malformed reply to query-migrate-parameters");
        return r;
}
