/* Unit tests of the pre-staging planner (oracle-prestage.h): pure, on scripted inputs. */
#include <stdint.h>
#include <string.h>

#include "oracle/oracle-prestage.h"
#include "tap.h"

#define GB (1000.0 * 1000 * 1000)

static size_t plan(const prestage_in_t *in, prestage_job_t *out) {
        size_t n = 99;
        CHECK(oracle_prestage_plan(in, out, 16, &n) == 0);
        return n;
}

int main(void) {
        prestage_job_t out[16];
        /* two services: "web" (priority 1, index 0) and "api" (priority 5, index 1) */
        prestage_service_t svcs[2] = { { .priority = 1, .want = 2 }, { .priority = 5, .want = 1 } };
        prestage_vm_t vms[] = {
                { .name = "web-1", .service = 0, .bytes = 1000 },
                { .name = "web-2", .service = 0, .bytes = 1000 },
                { .name = "web-3", .service = 0, .bytes = 1000 },
                { .name = "api-1", .service = 1, .bytes = 1000 },
                { .name = "api-2", .service = 1, .bytes = 1000 },
        };
        prestage_rm_t rms[] = {
                { .name = "rm1", .free_bytes = UINT64_MAX, .staged = 2 },
                { .name = "rm2", .free_bytes = UINT64_MAX, .staged = 0 },
                { .name = "rm3", .free_bytes = UINT64_MAX, .staged = 1 },
        };
        prestage_in_t in = { .svcs = svcs, .ns = 2, .vms = vms, .nv = 5, .rms = rms, .nr = 3, .budget_bytes = GB,
                             .max_jobs = 16 };

        /* priority first (api-1), then web's next two by name; one job per RM, fewest staged first */
        size_t n = plan(&in, out);
        CHECK(n == 3);
        CHECK(n == 3 && out[0].vm == 3 && out[0].rm == 1);
        CHECK(n == 3 && out[1].vm == 0 && out[1].rm == 2);
        CHECK(n == 3 && out[2].vm == 1 && out[2].rm == 0);
        CHECK(n < 2 || out[0].rm != out[1].rm);

        /* nothing for a VM already held; a held one still counts as one of the service's next */
        vms[3].held = true;
        vms[0].held = true;
        n = plan(&in, out);
        CHECK(n == 1 && out[0].vm == 1);
        vms[3].held = vms[0].held = false;

        /* max_jobs */
        in.max_jobs = 1;
        n = plan(&in, out);
        CHECK(n == 1 && out[0].vm == 3);
        in.max_jobs = 16;

        /* the cap: no job where the VM does not fit */
        rms[0].free_bytes = rms[1].free_bytes = rms[2].free_bytes = 999;
        CHECK(plan(&in, out) == 0);
        rms[2].free_bytes = 1000;
        n = plan(&in, out);
        CHECK(n == 1 && out[0].vm == 3 && out[0].rm == 2);
        rms[0].free_bytes = rms[1].free_bytes = rms[2].free_bytes = UINT64_MAX;

        /* a busy RM takes none */
        rms[1].busy = true;
        n = plan(&in, out);
        CHECK(n == 2);
        for (size_t i = 0; i < n; i++)
                CHECK(out[i].rm != 1);
        rms[1].busy = false;

        /* the budget: the sum within it; a job over it only alone and with a full bucket */
        in.budget_bytes = 2500;
        n = plan(&in, out);
        CHECK(n == 2);
        in.budget_bytes = 500;
        CHECK(plan(&in, out) == 0);
        in.bucket_full = true;
        n = plan(&in, out);
        CHECK(n == 1 && out[0].vm == 3);
        in.bucket_full = false;

        /* equal priorities: by index */
        svcs[1].priority = 1;
        in.budget_bytes = GB;
        n = plan(&in, out);
        CHECK(n == 3 && out[0].vm == 0 && out[1].vm == 1 && out[2].vm == 3);

        /* no RM, no service: nothing */
        in.nr = 0;
        CHECK(plan(&in, out) == 0);
        in.nr = 3;
        in.ns = 0;
        CHECK(plan(&in, out) == 0);
        return tap_finish();
}
