/* Load profiles: per VM and per service time series, from the nodes' heartbeats (QEMU's CPU
 * time, resident memory, disk and network bytes) and from HAProxy (request rate, queue,
 * response time). The latest values are kept in memory for the switching policy and `service
 * top`; every sample also goes to the store, downsampled (1 s for an hour, 1 min for a week,
 * 1 h for a year: store-metrics.h). Served as JSON (/v1/metrics, /v1/services/NAME/top) and in
 * Prometheus' text format (/metrics). Thread-safe: heartbeats arrive on the HTTP threads, LB
 * figures on the switching thread. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "lb/lb.h"
#include "net/http-server.h"
#include "store/store.h"

typedef struct oracle_metrics oracle_metrics_t;

typedef struct vm_metrics {
        double cpu;             /* share of the VM's vCPU capacity used over the last interval (1.0: all busy) */
        uint64_t rss_bytes;     /* QEMU's resident memory */
        double disk_read_bps, disk_write_bps;
        double net_rx_bps, net_tx_bps;
        int64_t updated_ms;     /* time_now_ms() of the last report */
} vm_metrics_t;

typedef struct service_metrics {
        double request_rate;    /* HTTP requests/s at its frontend */
        double queue;           /* requests waiting in HAProxy for a server */
        double sessions;        /* open sessions at its frontend */
        double response_ms;     /* backend average response time */
        double queue_ms;        /* backend average time in queue */
        int64_t requests;       /* cumulative (since HAProxy started) */
        int64_t errors;         /* cumulative failed requests */
        double load;            /* VM-capacity units, as the switching loop computed it */
        int active;             /* VMs in rotation */
        int64_t updated_ms;
        int64_t lb_updated_ms;   /* of the last oracle_metrics_lb_report naming it, 0: none */
        int64_t load_updated_ms; /* of the last oracle_metrics_service_load, 0: none */
} service_metrics_t;

oracle_metrics_t *oracle_metrics_new(store_t *store);
oracle_metrics_t *oracle_metrics_free(oracle_metrics_t *m);

/* A heartbeat's figures for one VM: stats is the node's {"cpu_ns","rss_bytes","block_rd_bytes",
 * "block_wr_bytes","net_rx_bytes","net_tx_bytes"} (cumulative counters of its QEMU); rates are
 * the difference to the previous report. A counter that went backwards (a new QEMU) restarts
 * the rates. Bad or missing fields are ignored. The latest figures always follow the report; the
 * samples kept for the load profiles and plots do at every report only for a serving VM (active
 * or deactivating: what the policy and `service top` read), else once every
 * ORACLE_METRICS_IDLE_SAMPLE_MS, so that 100,000 VMs in chambers do not write 600,000 samples a
 * second. */
#define ORACLE_METRICS_IDLE_SAMPLE_MS 60000
void oracle_metrics_vm_report(oracle_metrics_t *m, const char *vm, bool serving, int64_t vcpus, const json_t *stats,
                              int64_t now_ms);
/* The VM no longer runs: its latest figures go. */
void oracle_metrics_vm_forget(oracle_metrics_t *m, const char *vm);
/* -ENOENT when there is no report for vm. */
int oracle_metrics_vm_get(oracle_metrics_t *m, const char *vm, vm_metrics_t *ret);

/* HAProxy's counters (lb_stats) for every service. */
void oracle_metrics_lb_report(oracle_metrics_t *m, const lb_stats_t *st, int64_t now_ms);
/* What the switching loop computed for a service this tick. */
void oracle_metrics_service_load(oracle_metrics_t *m, const char *service, double load, int active, int64_t now_ms);
/* -ENOENT when nothing was reported for service. */
int oracle_metrics_service_get(oracle_metrics_t *m, const char *service, service_metrics_t *ret);

/* Writes the samples gathered since the last call to the store in one transaction and drops
 * those past their retention. Called about once a second (the switching thread). */
int oracle_metrics_flush(oracle_metrics_t *m, int64_t wall_ms);

/* GET /metrics (Prometheus), GET /v1/metrics?series=S&res=1|60|3600[&since=EPOCH_S],
 * GET /v1/services/:name/top. */
extern const http_route_t oracle_metrics_routes[];

/* ---- what the routes are made of (oracle-metrics-http.c), public for the unit tests ----
 * Clocks: every now_ms above and below is time_now_ms() (monotonic), the wall_ms of flush is
 * time_wall_ms(). m may be NULL in all of these (nothing reported yet). */

/* A report older than this is not shown (/metrics, top): the VM stopped or moved. */
#define ORACLE_METRICS_STALE_MS 30000

/* The service was deleted: its latest figures go (its stored series age out). */
void oracle_metrics_service_forget(oracle_metrics_t *m, const char *service);
/* Samples lost because oracle_metrics_flush was not called for a long time. */
uint64_t oracle_metrics_dropped(oracle_metrics_t *m);
/* "vm:NAME:KIND" (KIND: cpu, rss_bytes, disk_read_bps, disk_write_bps, net_rx_bps, net_tx_bps)
 * or "service:NAME:KIND" (request_rate, queue, response_ms, sessions, load, active). */
bool oracle_metrics_series_is_valid(const char *series);
/* The /metrics page (Prometheus text format 0.0.4) from the latest figures in m and the VMs,
 * RMs and services in store. *ret is malloc'd. -errno when the store cannot be read. */
int oracle_metrics_prometheus(oracle_metrics_t *m, store_t *store, int64_t now_ms, char **ret);
/* GET /v1/metrics: the query arguments as received (NULL when absent). -EINVAL and a message
 * for the client in *ret_msg (malloc'd) for a bad argument; *ret is
 * {"series","res","points":[[t,avg,max],...]}. Defaults: until now_s; since until minus an
 * hour (res 1), a day (res 60) or a week (res 3600). */
int oracle_metrics_query(store_t *store, const char *series, const char *res, const char *since, const char *until,
                         int64_t now_s, json_t **ret, char **ret_msg);
/* GET /v1/services/NAME/top: {"service":{...},"vms":[...]}; listen is the Oracle's "IP:PORT"
 * (for the endpoint). -ENOENT for an unknown service. */
int oracle_metrics_service_top(oracle_metrics_t *m, store_t *store, const char *listen, const char *service,
                               int64_t now_ms, json_t **ret);
