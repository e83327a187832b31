/* Pre-staging: the Oracle places hibernated VMs' snapshots on idle production RMs before their
 * activation (node POST /v1/vms/NAME/prestage), so that an activation costs what it costs on the
 * RM that saved the VM. A pure planner (oracle_prestage_plan) decides what goes where; a thread
 * (oracle_prestage_start) ticks, asks it and calls the nodes, within a bandwidth budget
 * (setting prestage_bps, 0 = off) and never while an activation runs. Pre-staging makes no lease
 * and no registry entry: a staged snapshot is a cache on the node, placement only prefers it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/http-server.h"

typedef struct oracle oracle_t;

typedef struct prestage_rm {
        const char *name;
        uint64_t free_bytes;  /* what its cache may still take (UINT64_MAX: unknown, the node decides) */
        size_t staged;        /* snapshots it holds already */
        bool busy;            /* a job runs there */
} prestage_rm_t;

typedef struct prestage_vm {
        const char *name;
        size_t service;       /* index into the services */
        uint64_t bytes;       /* what staging it moves at most (its bundle's files) */
        bool held;            /* its snapshot is on an idle production RM already, or being staged */
} prestage_vm_t;

typedef struct prestage_service {
        int64_t priority;     /* higher first */
        int want;             /* how many of its next VMs to have staged (held ones count) */
} prestage_service_t;

typedef struct prestage_in {
        const prestage_service_t *svcs;
        size_t ns;
        const prestage_vm_t *vms;  /* each service's in activation order (lowest names first) */
        size_t nv;
        const prestage_rm_t *rms;
        size_t nr;
        double budget_bytes;       /* what the bucket holds now */
        bool bucket_full;          /* then one job may pass the budget alone */
        size_t max_jobs;           /* jobs that may start now */
} prestage_in_t;

typedef struct prestage_job {
        size_t vm, rm;             /* indexes into in->vms and in->rms */
} prestage_job_t;

/* The jobs to start now, at most max of them, into out (*ret_n of them): services by priority
 * (then index), each its next `want` VMs (held ones count, are skipped); each job on an idle RM
 * that is not busy, has room for the VM and holds the fewest snapshots; one job per RM; the sum
 * of bytes within the budget, but for one lone job when the bucket is full. Pure. */
int oracle_prestage_plan(const prestage_in_t *in, prestage_job_t *out, size_t max, size_t *ret_n);

/* The thread. start: 0 or -errno; stop joins it (o->stopping set first). */
int oracle_prestage_start(oracle_t *o);
void oracle_prestage_stop(oracle_t *o);
/* GET and PUT /v1/settings/prestage {"prestage_bps": N} (0: off). */
extern const http_route_t oracle_prestage_routes[];
