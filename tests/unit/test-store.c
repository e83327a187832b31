/* Unit tests for the SQLite store: migrations, optimistic version checks, ops, events, users and
 * tokens, reopen; paging of VMs and RMs while rows come and go around the cursor; the store
 * view (store-view.h) in and out of transactions, after rollbacks and failed commits, after
 * random writes, and its snapshots. */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/util.h"
#include "store/store.h"
#include "store/store-auth.h"
#include "store/store-figures.h"
#include "store/store-view.h"
#include "tap.h"

/* Services: insert, duplicate, read back, update, list, delete; a VM keeps its service. */
static void test_services(store_t *s) {
        service_record_t sv = { .pool = 4, .min = 1, .max = 3, .window_s = 5, .high = 70, .priority = 2,
                                .memory_mib = 128, .vcpus = 1, .port = 8100, .created_ms = 1 };
        snprintf(sv.name, sizeof sv.name, "web");
        snprintf(sv.image, sizeof sv.image, "tiny-http");
        snprintf(sv.state, sizeof sv.state, "creating");
        snprintf(sv.health_kind, sizeof sv.health_kind, "http");
        snprintf(sv.health_path, sizeof sv.health_path, "/status?full=1");
        CHECK(store_service_insert(s, &sv) == 0);
        CHECK(store_service_insert(s, &sv) == -EEXIST);
        service_record_t got = { 0 };
        CHECK(store_service_get(s, "web", &got) == 0);
        CHECK(got.pool == 4 && got.min == 1 && got.max == 3 && got.window_s == 5 && got.high == 70 && got.port == 8100);
        CHECK_STREQ(got.state, "creating");
        CHECK_STREQ(got.health_kind, "http");
        CHECK_STREQ(got.health_path, "/status?full=1");
        snprintf(got.state, sizeof got.state, "failed");
        snprintf(got.error, sizeof got.error, "vm \"web-1\" did not boot");
        snprintf(got.health_kind, sizeof got.health_kind, "tcp");
        got.health_path[0] = 0;
        CHECK(store_service_update(s, &got) == 0);
        service_record_t *list = NULL;
        size_t n = 0;
        CHECK(store_service_list(s, &list, &n) == 0 && n == 1 && streq(list[0].state, "failed"));
        CHECK(n == 1 && streq(list[0].health_kind, "tcp") && streq(list[0].health_path, ""));
        json_t *j = service_record_to_json(&list[0]);
        CHECK(j && streq(json_string_value(json_object_get(j, "error")) ?: "", "vm \"web-1\" did not boot"));
        /* "health": {"kind": "tcp"}, no path for a tcp check */
        json_t *health = json_object_get(j, "health");
        CHECK(json_is_object(health) && json_object_size(health) == 1);
        CHECK_STREQ(json_string_value(json_object_get(health, "kind")), "tcp");
        json_decref(j);
        j = service_record_to_json(&sv);
        health = json_object_get(j, "health");
        CHECK_STREQ(json_string_value(json_object_get(health, "kind")), "http");
        CHECK_STREQ(json_string_value(json_object_get(health, "path")), "/status?full=1");
        json_decref(j);
        free(list);
        CHECK(store_service_get(s, "nope", &got) == -ENOENT);
        snprintf(got.name, sizeof got.name, "nope");
        CHECK(store_service_update(s, &got) == -ENOENT);
        CHECK(store_service_delete(s, "web") == 0);
        CHECK(store_service_delete(s, "web") == -ENOENT);
}

/* What migration 8 (the measured figures) adds, dropped: a database as version 7 wrote it. */
#define UNDO_MIGRATION_8 "DROP TABLE figures;"

/* What migrations 8 and 7 (the marketplace) add, dropped: a database as version 6 wrote it. */
#define UNDO_MIGRATION_7                                                                                               \
        UNDO_MIGRATION_8 "DROP INDEX vms_offer; ALTER TABLE vms DROP COLUMN market; ALTER TABLE vms DROP COLUMN offer;"                 \
        "ALTER TABLE vms DROP COLUMN offer_next; ALTER TABLE vms DROP COLUMN disk_gib;"                               \
        "DROP TABLE offers; DROP TABLE market_configs; DROP TABLE market_prices; DROP TABLE settings;"                \
        "DROP TABLE spans; DROP TABLE charges; DROP TABLE billing; DROP TABLE deposits; DROP TABLE unpaid;"           \
        "ALTER TABLE users DROP COLUMN balance;"

/* A database of schema 2 (before health checks) with a service in it: made from a new one by
 * dropping the tables migration 4 and the columns migration 3 add, so it is exactly what
 * version 2 wrote. */
static void test_migration_health(const char *dir) {
        _cleanup_free_ char *path = xasprintf("%s/v2.db", dir);
        store_t *s = NULL;
        CHECK(store_open(path, &s) == 0 && store_schema_version(s) == 8);
        s = store_close(s);
        sqlite3 *db = NULL;
        CHECK(sqlite3_open(path, &db) == SQLITE_OK);
        char *err = NULL;
        int rc = sqlite3_exec(db,
                              UNDO_MIGRATION_7 "DROP TABLE join_tokens; DROP TABLE rm_certs;"
                              "DROP TABLE tokens; DROP TABLE users;"
                              "ALTER TABLE vms DROP COLUMN owner; ALTER TABLE rms DROP COLUMN provider;"
                              "ALTER TABLE services DROP COLUMN health_kind;"
                              "ALTER TABLE services DROP COLUMN health_path;"
                              "INSERT INTO services (name,image,pool,min,max,window_s,high,priority,memory_mib,vcpus,"
                              "port,state,error,created_ms) VALUES ('old','tiny-http',2,1,2,30,70,0,128,1,8100,"
                              "'ready','',5);"
                              "PRAGMA user_version=2;",
                              NULL, NULL, &err);
        CHECK(rc == SQLITE_OK);
        if (err)
                fprintf(stderr, "  %s\n", err);
        sqlite3_free(err);
        sqlite3_close(db);

        CHECK(store_open(path, &s) == 0 && s && store_schema_version(s) == 8);
        service_record_t got = { 0 };
        CHECK(s && store_service_get(s, "old", &got) == 0);
        CHECK_STREQ(got.state, "ready");
        CHECK(got.pool == 2 && got.port == 8100 && got.created_ms == 5);
        CHECK_STREQ(got.health_kind, "http");
        CHECK_STREQ(got.health_path, "/health");
        /* and it can be changed like any other */
        snprintf(got.health_kind, sizeof got.health_kind, "tcp");
        got.health_path[0] = 0;
        CHECK(s && store_service_update(s, &got) == 0);
        service_record_t again = { 0 };
        CHECK(s && store_service_get(s, "old", &again) == 0 && streq(again.health_kind, "tcp") && !*again.health_path);
        store_close(s);
}

/* A database of schema 3 (before accounts) with a VM and a service in it, made by dropping
 * what migration 4 adds: opened, it gains empty users and tokens tables and keeps its rows. */
static void test_migration_auth(const char *dir) {
        _cleanup_free_ char *path = xasprintf("%s/v3.db", dir);
        store_t *s = NULL;
        CHECK(store_open(path, &s) == 0 && store_schema_version(s) == 8);
        s = store_close(s);
        sqlite3 *db = NULL;
        CHECK(sqlite3_open(path, &db) == SQLITE_OK);
        int rc = sqlite3_exec(db,
                              UNDO_MIGRATION_7 "DROP TABLE join_tokens; DROP TABLE rm_certs;"
                              "DROP TABLE tokens; DROP TABLE users;"
                              "ALTER TABLE vms DROP COLUMN owner; ALTER TABLE rms DROP COLUMN provider;"
                              "INSERT INTO vms (name,state,version,image,memory_mib,vcpus,mac,created_ms) VALUES"
                              " ('keep','stored',3,'tiny-http',128,1,'52:54:00:00:00:09',7);"
                              "INSERT INTO services (name,image,pool,min,max,window_s,high,priority,memory_mib,vcpus,"
                              "port,state,error,created_ms,health_kind,health_path) VALUES ('svc','tiny-http',2,1,2,30,"
                              "70,0,128,1,8100,'ready','',5,'tcp','');"
                              "PRAGMA user_version=3;",
                              NULL, NULL, NULL);
        CHECK(rc == SQLITE_OK);
        sqlite3_close(db);

        CHECK(store_open(path, &s) == 0 && s && store_schema_version(s) == 8);
        vm_record_t v = { 0 };
        CHECK(s && store_vm_get(s, "keep", &v) == 0 && v.version == 3 && v.created_ms == 7);
        vm_record_clear(&v);
        service_record_t sv = { 0 };
        CHECK(s && store_service_get(s, "svc", &sv) == 0 && streq(sv.health_kind, "tcp"));
        user_record_t *users = NULL;
        token_record_t *tokens = NULL;
        size_t nu = 1, nt = 1;
        CHECK(s && store_user_list(s, &users, &nu) == 0 && nu == 0);
        CHECK(s && store_token_list(s, NULL, &tokens, &nt) == 0 && nt == 0);
        free(users);
        free(tokens);
        user_record_t u = { .created_ms = 1 };
        SET(u.name, "bob");
        SET(u.role, "buyer");
        SET(u.password_hash, "$argon2id$x");
        CHECK(s && store_user_insert(s, &u) == 0);
        store_close(s);
}

/* Users and tokens: insert, duplicate, a token of no user, revoke keeps its first time, touch,
 * prune, delete takes the tokens along, and the last admin stays. */
static void test_auth_rows(store_t *s) {
        user_record_t u = { .created_ms = 1 };
        SET(u.name, "root");
        SET(u.role, "admin");
        SET(u.password_hash, "$argon2id$a");
        CHECK(store_user_insert(s, &u) == 0);
        CHECK(store_user_insert(s, &u) == -EEXIST);
        SET(u.name, "bob");
        SET(u.role, "buyer");
        CHECK(store_user_insert(s, &u) == 0);
        size_t n = 0;
        CHECK(store_user_count(s, &n) == 0 && n == 2);
        CHECK(store_user_set_password(s, "bob", "$argon2id$b") == 0);
        CHECK(store_user_set_password(s, "nobody", "$argon2id$b") == -ENOENT);
        user_record_t got = { 0 };
        CHECK(store_user_get(s, "bob", &got) == 0 && streq(got.password_hash, "$argon2id$b") && streq(got.role, "buyer"));

        token_record_t t = { .created_ms = 10, .expires_ms = 100 };
        SET(t.id, "00000000000000aa");
        SET(t.user, "bob");
        SET(t.name, "ci");
        SET(t.role, "buyer");
        memset(t.hash, 0x5a, sizeof t.hash);
        CHECK(store_token_insert(s, &t) == 0);
        CHECK(store_token_insert(s, &t) == -EEXIST);
        token_record_t orphan = t;
        SET(orphan.id, "00000000000000bb");
        SET(orphan.user, "nobody");
        CHECK(store_token_insert(s, &orphan) == -ENOENT);
        SET(t.id, "00000000000000cc");
        t.role[0] = 0;
        t.expires_ms = 0;
        CHECK(store_token_insert(s, &t) == 0);
        token_record_t tg = { 0 };
        CHECK(store_token_get(s, "00000000000000aa", &tg) == 0 && tg.hash[31] == 0x5a && streq(tg.role, "buyer"));
        CHECK(tg.expires_ms == 100 && tg.revoked_ms == 0 && tg.last_used_ms == 0);
        CHECK(store_token_get(s, "00000000000000cc", &tg) == 0 && !*tg.role && tg.expires_ms == 0);
        CHECK(store_token_revoke(s, "00000000000000aa", 50) == 0);
        CHECK(store_token_revoke(s, "00000000000000aa", 60) == 0);
        CHECK(store_token_get(s, "00000000000000aa", &tg) == 0 && tg.revoked_ms == 50);
        CHECK(store_token_revoke(s, "ffffffffffffffff", 60) == -ENOENT);
        CHECK(store_token_touch(s, "00000000000000cc", 70) == 0);
        CHECK(store_token_get(s, "00000000000000cc", &tg) == 0 && tg.last_used_ms == 70);
        token_record_t *list = NULL;
        CHECK(store_token_list(s, "bob", &list, &n) == 0 && n == 2);
        free(list);
        CHECK(store_token_list(s, "root", &list, &n) == 0 && n == 0);
        free(list);
        CHECK(store_token_prune(s, 200) == 1); /* the one expiring at 100; never-expiring stays */
        CHECK(store_token_get(s, "00000000000000aa", &tg) == -ENOENT);

        CHECK(store_user_delete(s, "root") == -EBUSY);
        CHECK(store_user_get(s, "root", &got) == 0);
        CHECK(store_user_delete(s, "bob") == 0);
        CHECK(store_token_get(s, "00000000000000cc", &tg) == -ENOENT);
        CHECK(store_user_delete(s, "bob") == -ENOENT);
        user_record_t *users = NULL;
        CHECK(store_user_list(s, &users, &n) == 0 && n == 1 && streq(users[0].name, "root"));
        free(users);
}

static vm_record_t sample_vm(const char *name) {
        vm_record_t v = { 0 };
        snprintf(v.name, sizeof v.name, "%s", name);
        snprintf(v.state, sizeof v.state, "stored");
        snprintf(v.image, sizeof v.image, "tiny-http");
        snprintf(v.mac, sizeof v.mac, "52:54:00:00:00:01");
        v.version = 1;
        v.memory_mib = 128;
        v.vcpus = 1;
        v.bundle = json_pack("{s:{}}", "files");
        return v;
}

/* The view is clean (equal to the tables); the message of a difference is printed. */
static bool view_clean(store_t *s) {
        _cleanup_free_ char *msg = NULL;
        int r = store_view_check(s, &msg);
        if (r < 0)
                fprintf(stderr, "view check: %s\n", msg ? msg : "?");
        return r == 0;
}

static op_record_t sample_op(const char *vm, const char *target, const char *origin) {
        op_record_t o = { 0 };
        snprintf(o.vm, sizeof o.vm, "%s", vm);
        snprintf(o.kind, sizeof o.kind, "activate");
        snprintf(o.state, sizeof o.state, "running");
        o.args = json_pack("{s:s?,s:s?}", "rm", target, "origin", origin);
        return o;
}

/* Writes outside and inside transactions reach the view only once committed; lookups by name,
 * the VMs of an RM (by name), the ops touching an RM. */
static void test_view_writes(store_t *s) {
        rm_record_t rm = { .name = "vrm1", .role = "production", .address = "10.0.0.9:7001", .state = "up",
                           .last_seen_ms = 11 };
        CHECK(store_rm_upsert(s, &rm) == 0);
        rm_record_t got_rm = { 0 };
        CHECK(store_view_rm_get(s, "vrm1", &got_rm) == 0 && streq(got_rm.address, "10.0.0.9:7001") &&
              got_rm.last_seen_ms == 11 && streq(got_rm.provider, ""));
        CHECK(store_rm_provider_set(s, "vrm1", "prov9") == 0);
        SET(rm.state, "down");
        CHECK(store_rm_upsert(s, &rm) == 0);
        CHECK(store_view_rm_get(s, "vrm1", &got_rm) == 0 && streq(got_rm.provider, "prov9") &&
              streq(got_rm.state, "down"));
        CHECK(store_view_rm_get(s, "vrm-none", &got_rm) == -ENOENT);
        /* the last_seen checkpoint moves forward only, for RMs that exist, in table and view */
        rm_record_t seen[3] = { { .name = "vrm1", .last_seen_ms = 50 }, { .name = "vrm-gone", .last_seen_ms = 60 },
                                { .name = "vrm1", .last_seen_ms = 40 } };
        CHECK(store_rm_seen_batch(s, seen, 3) == 0);
        rm_record_t row = { 0 };
        CHECK(store_rm_get(s, "vrm1", &row) == 0 && row.last_seen_ms == 50);
        CHECK(store_view_rm_get(s, "vrm1", &got_rm) == 0 && got_rm.last_seen_ms == 50);
        CHECK(store_view_rm_get(s, "vrm-gone", &got_rm) == -ENOENT);
        CHECK(view_clean(s));
        rm.last_seen_ms = 11;

        vm_record_t a = sample_vm("va"), b = sample_vm("vb"), c = sample_vm("vc");
        SET(a.rm, "vrm1");
        SET(b.rm, "vrm1");
        json_object_set_new(json_object_get(c.bundle, "files"), "memory",
                            json_pack("{s:s,s:i}", "digest", "ab12", "size", 1000));
        json_object_set_new(json_object_get(c.bundle, "files"), "disk", json_pack("{s:s,s:i}", "digest", "cd", "size", 24));
        CHECK(store_vm_insert(s, &b) == 0);
        uint64_t gen = store_view_gen(s);
        store_view_vm_t got = { 0 };
        /* inside a transaction: nothing shows until the COMMIT */
        CHECK(store_tx_begin(s) == 0);
        CHECK(store_vm_insert(s, &a) == 0);
        CHECK(store_vm_insert(s, &c) == 0);
        CHECK(store_view_vm_get(s, "va", &got) == -ENOENT && store_view_gen(s) == gen);
        CHECK(store_tx_commit(s) == 0);
        CHECK(store_view_gen(s) > gen);
        CHECK(store_view_vm_get(s, "va", &got) == 0 && streq(got.rm, "vrm1") && got.version == 1);
        CHECK(store_view_vm_get(s, "vc", &got) == 0 && streq(got.mem_digest, "ab12") && got.bundle_bytes == 1024);
        CHECK(store_view_count_on(s, "vrm1") == 2 && store_view_count_on(s, "") >= 1);
        store_view_vm_t *on = NULL;
        size_t n = 0;
        store_view_vms_on(s, "vrm1", &on, &n);
        CHECK(n == 2 && streq(on[0].name, "va") && streq(on[1].name, "vb"));
        free(on);
        /* a move between RMs leaves the old RM's chain */
        a.version = 2;
        SET(a.rm, "vrm2");
        SET(a.state, "active");
        CHECK(store_vm_update(s, &a, 1) == 0);
        CHECK(store_view_count_on(s, "vrm1") == 1 && store_view_count_on(s, "vrm2") == 1);
        CHECK(store_view_vm_get(s, "va", &got) == 0 && streq(got.state, "active") && got.version == 2);
        /* a refused update changes nothing */
        a.version = 9;
        CHECK(store_vm_update(s, &a, 1) == -ESTALE);
        CHECK(store_view_vm_get(s, "va", &got) == 0 && got.version == 2);
        CHECK(store_vm_delete(s, "vb") == 0);
        CHECK(store_view_vm_get(s, "vb", &got) == -ENOENT && store_view_count_on(s, "vrm1") == 0);

        op_record_t o1 = sample_op("va", "vrm2", "vrm1"), o2 = sample_op("vc", "vrm3", NULL);
        CHECK(store_op_insert(s, &o1) == 0 && store_op_insert(s, &o2) == 0);
        store_view_op_t *ops = NULL;
        store_view_ops_touching(s, "vrm1", &ops, &n);
        CHECK(n == 1 && streq(ops[0].vm, "va") && streq(ops[0].target, "vrm2"));
        free(ops);
        store_view_ops_touching(s, "vrm3", &ops, &n);
        CHECK(n == 1 && streq(ops[0].vm, "vc"));
        free(ops);
        SET(o1.state, "done");
        CHECK(store_op_update(s, &o1) == 0);
        store_view_ops_touching(s, "vrm1", &ops, &n);
        CHECK(n == 0 && !ops);
        CHECK(view_clean(s));
        SET(o2.state, "failed");
        CHECK(store_op_update(s, &o2) == 0);
        CHECK(store_vm_delete(s, "va") == 0 && store_vm_delete(s, "vc") == 0);
        CHECK(view_clean(s));
        op_record_clear(&o1);
        op_record_clear(&o2);
        vm_record_clear(&a);
        vm_record_clear(&b);
        vm_record_clear(&c);
}

/* A rolled-back transaction leaves the view as it was; so does a failed write inside one. */
static void test_view_rollback(store_t *s) {
        vm_record_t a = sample_vm("vr1");
        CHECK(store_vm_insert(s, &a) == 0);
        uint64_t gen = store_view_gen(s);
        CHECK(store_tx_begin(s) == 0);
        vm_record_t b = sample_vm("vr2");
        CHECK(store_vm_insert(s, &b) == 0);
        a.version = 2;
        SET(a.state, "active");
        SET(a.rm, "vrm9");
        CHECK(store_vm_update(s, &a, 1) == 0);
        rm_record_t rm = { .name = "vrm9", .role = "chamber", .address = "x:1", .state = "up" };
        CHECK(store_rm_upsert(s, &rm) == 0);
        op_record_t o = sample_op("vr1", "vrm9", NULL);
        CHECK(store_op_insert(s, &o) == 0);
        CHECK(store_vm_delete(s, "vr1") == 0);
        store_tx_rollback(s);
        store_view_vm_t got = { 0 };
        rm_record_t got_rm = { 0 };
        CHECK(store_view_gen(s) == gen);
        CHECK(store_view_vm_get(s, "vr2", &got) == -ENOENT);
        CHECK(store_view_vm_get(s, "vr1", &got) == 0 && got.version == 1 && streq(got.state, "stored") &&
              streq(got.rm, ""));
        CHECK(store_view_rm_get(s, "vrm9", &got_rm) == -ENOENT && store_view_count_on(s, "vrm9") == 0);
        CHECK(view_clean(s));
        /* a nested rollback does not roll back SQLite's outer transaction: its writes stay
         * queued and the view gets them with the outer COMMIT, as the tables do */
        CHECK(store_tx_begin(s) == 0);
        CHECK(store_tx_begin(s) == 0);
        CHECK(store_vm_insert(s, &b) == 0);
        store_tx_rollback(s);
        CHECK(store_tx_commit(s) == 0);
        vm_record_t row = { 0 };
        bool in_table = store_vm_get(s, "vr2", &row) == 0;
        vm_record_clear(&row);
        CHECK(in_table == (store_view_vm_get(s, "vr2", &got) == 0));
        CHECK(view_clean(s));
        store_vm_delete(s, "vr2");
        CHECK(store_vm_delete(s, "vr1") == 0);
        CHECK(view_clean(s));
        op_record_clear(&o);
        vm_record_clear(&a);
        vm_record_clear(&b);
}

/* In a child with VMATRIX_FAULT=store-write:N (read once per process, hence a fresh child per
 * N): a transaction of a VM insert and an RM upsert. Exit 0: it committed and the view has
 * both; 2: the COMMIT (or a write) failed and the view has neither; 1: the view differs. */
static int view_fault_child(const char *dir, int n) {
        char env[32];
        snprintf(env, sizeof env, "store-write:%d", n);
        setenv("VMATRIX_FAULT", env, 1);
        _cleanup_free_ char *path = xasprintf("%s/fault-%d.db", dir, n);
        store_t *s = NULL;
        if (store_open(path, &s) < 0)
                return 1;
        vm_record_t v = sample_vm("vf1");
        SET(v.rm, "vrmf");
        rm_record_t rm = { .name = "vrmf", .role = "chamber", .address = "x:1", .state = "up" };
        int r = store_tx_begin(s);
        bool began = r >= 0;
        if (r >= 0)
                r = store_vm_insert(s, &v);
        if (r >= 0)
                r = store_rm_upsert(s, &rm);
        if (r >= 0)
                r = store_tx_commit(s);
        else if (began)
                store_tx_rollback(s);
        vm_record_clear(&v);
        store_view_vm_t got;
        rm_record_t got_rm;
        bool vm_in = store_view_vm_get(s, "vf1", &got) == 0, rm_in = store_view_rm_get(s, "vrmf", &got_rm) == 0;
        bool clean = view_clean(s);
        store_close(s);
        if (!clean)
                return 1;
        if (r >= 0)
                return vm_in && rm_in ? 0 : 1;
        return !vm_in && !rm_in ? 2 : 1;
}

static void test_view_commit_fault(const char *dir) {
        int failed = 0, committed = 0;
        for (int n = 1; n <= 4; n++) {
                pid_t pid = fork();
                CHECK(pid >= 0);
                if (pid == 0)
                        _exit(view_fault_child(dir, n));
                int status = 0;
                CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status));
                int code = WEXITSTATUS(status);
                CHECK(code == 0 || code == 2);
                failed += code == 2;
                committed += code == 0;
        }
        /* writes 1 and 2 and the COMMIT (3) failed; at 4 nothing did */
        CHECK(failed == 3 && committed == 1);
}

/* 1,000 random writes (VMs moving between RMs, deletes, RMs, ops), some in transactions that
 * are rolled back: the view equals the tables after them. */
static void test_view_random(store_t *s) {
        srand(14);
        char name[64];
        const char *rms[] = { "", "vx-rm1", "vx-rm2", "vx-rm3" };
        const char *states[] = { "stored", "active", "loading", "suspended" };
        op_record_t ops[8] = { 0 };
        size_t n_ops = 0;
        bool in_tx = false;
        for (int i = 0; i < 1000; i++) {
                if (!in_tx && rand() % 10 == 0)
                        in_tx = store_tx_begin(s) == 0;
                else if (in_tx && rand() % 5 == 0) {
                        if (rand() % 3 == 0)
                                store_tx_rollback(s);
                        else
                                CHECK(store_tx_commit(s) == 0);
                        in_tx = false;
                }
                snprintf(name, sizeof name, "vx%d", rand() % 40);
                vm_record_t v = { 0 };
                int what = rand() % 6;
                if (what <= 2) {
                        if (store_vm_get(s, name, &v) < 0) {
                                vm_record_clear(&v);
                                v = sample_vm(name);
                                store_vm_insert(s, &v);
                        } else {
                                int64_t was = v.version++;
                                SET(v.rm, rms[rand() % 4]);
                                SET(v.state, states[rand() % 4]);
                                store_vm_update(s, &v, was);
                        }
                } else if (what == 3) {
                        store_vm_delete(s, name);
                } else if (what == 4) {
                        rm_record_t rm = { .role = "production", .address = "a:1", .last_seen_ms = i };
                        SET(rm.name, rms[1 + rand() % 3]);
                        SET(rm.state, rand() % 2 ? "up" : "down");
                        store_rm_upsert(s, &rm);
                } else if (n_ops < ELEMENTSOF(ops) && rand() % 2) {
                        ops[n_ops] = sample_op(name, rms[1 + rand() % 3], rms[rand() % 4]);
                        store_op_insert(s, &ops[n_ops++]);
                } else if (n_ops > 0) {
                        op_record_t *o = &ops[rand() % n_ops];
                        SET(o->state, rand() % 2 ? "done" : "running");
                        store_op_update(s, o);
                }
                vm_record_clear(&v);
        }
        if (in_tx)
                CHECK(store_tx_commit(s) == 0);
        CHECK(view_clean(s));
        /* the snapshot's counts per RM add up to the VMs */
        store_view_snap_t *snap = store_view_snapshot(s);
        size_t total = 0;
        for (size_t i = 0; i < ELEMENTSOF(rms); i++) {
                size_t on = 0;
                for (const store_view_vm_t *v = store_view_snap_first_on(snap, rms[i]); v;
                     v = store_view_snap_next_on(snap, v)) {
                        CHECK(streq(v->rm, rms[i]));
                        on++;
                }
                CHECK(on == store_view_snap_count_on(snap, rms[i]) && on == store_view_count_on(s, rms[i]));
                total += on;
        }
        size_t vx = 0;
        for (size_t i = 0; i < store_view_snap_nvms(snap); i++)
                vx += str_startswith(store_view_snap_vm_at(snap, i)->name, "vx");
        CHECK(total >= vx);
        store_view_release(snap);
        for (size_t i = 0; i < n_ops; i++) {
                SET(ops[i].state, "done");
                store_op_update(s, &ops[i]);
                op_record_clear(&ops[i]);
        }
        for (int i = 0; i < 40; i++) {
                snprintf(name, sizeof name, "vx%d", i);
                store_vm_delete(s, name);
        }
        CHECK(view_clean(s));
}

/* A snapshot is immutable: one taken before a write keeps the old row; an unchanged view
 * hands out the same snapshot; RMs come ordered by name. */
static void test_view_snapshot(store_t *s) {
        vm_record_t v = sample_vm("vs1");
        CHECK(store_vm_insert(s, &v) == 0);
        rm_record_t b = { .name = "vs-b", .role = "chamber", .address = "b:1", .state = "up" };
        rm_record_t a = { .name = "vs-a", .role = "chamber", .address = "a:1", .state = "up" };
        CHECK(store_rm_upsert(s, &b) == 0 && store_rm_upsert(s, &a) == 0);
        store_view_snap_t *old = store_view_snapshot(s);
        store_view_snap_t *same = store_view_snapshot(s);
        CHECK(old == same);
        store_view_release(same);
        v.version = 2;
        SET(v.state, "active");
        SET(v.rm, "vs-a");
        CHECK(store_vm_update(s, &v, 1) == 0);
        store_view_snap_t *now = store_view_snapshot(s);
        CHECK(now != old && store_view_snap_gen(now) > store_view_snap_gen(old));
        const store_view_vm_t *was = store_view_snap_vm(old, "vs1"), *is = store_view_snap_vm(now, "vs1");
        CHECK(was && was->version == 1 && streq(was->state, "stored") && store_view_snap_count_on(old, "vs-a") == 0);
        CHECK(is && is->version == 2 && streq(is->state, "active") && store_view_snap_count_on(now, "vs-a") == 1);
        CHECK(store_vm_delete(s, "vs1") == 0);
        CHECK(store_view_snap_vm(now, "vs1") != NULL); /* still there for its readers */
        size_t nr = store_view_snap_nrms(now);
        for (size_t i = 1; i < nr; i++)
                CHECK(strcmp(store_view_snap_rm_at(now, i - 1)->name, store_view_snap_rm_at(now, i)->name) < 0);
        CHECK(store_view_snap_rm(now, "vs-b") && streq(store_view_snap_rm(now, "vs-b")->address, "b:1"));
        store_view_release(old);
        store_view_release(now);
        /* one no reader holds any more is copied over in place by the next: it shows the new
         * generation, not the old one */
        store_view_snap_t *first = store_view_snapshot(s);
        uint64_t g1 = store_view_snap_gen(first);
        CHECK(store_view_snap_vm(first, "vs1") == NULL);
        store_view_release(first);
        vm_record_t w = sample_vm("vs2");
        CHECK(store_vm_insert(s, &w) == 0);
        store_view_snap_t *again = store_view_snapshot(s);
        CHECK(store_view_snap_gen(again) > g1 && store_view_snap_vm(again, "vs2") != NULL);
        CHECK(store_view_snap_rm(again, "vs-a") != NULL && store_view_snap_count_on(again, "vs-a") == 0);
        store_view_release(again);
        CHECK(store_vm_delete(s, "vs2") == 0);
        vm_record_clear(&w);
        vm_record_clear(&v);
        CHECK(view_clean(s));
}

/* A failed BEGIN (another process holds the write lock past the busy timeout) and a commit
 * without its begin must not make the transaction depth drift: afterwards transactions still
 * commit. (Callers once ignored store_tx_begin's result.) */
static void test_tx_depth(const char *path, store_t *s) {
        CHECK(store_tx_commit(s) == -EINVAL);
        store_tx_rollback(s);
        sqlite3 *other = NULL;
        CHECK(sqlite3_open(path, &other) == SQLITE_OK);
        CHECK(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
        CHECK(store_tx_begin(s) == -EBUSY); /* after the store's 5 s busy timeout */
        CHECK(store_tx_commit(s) == -EINVAL);
        CHECK(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL) == SQLITE_OK);
        sqlite3_close(other);
        CHECK(store_tx_begin(s) == 0);
        int64_t c = 0;
        CHECK(store_counter_next(s, "tx-test", &c) == 0);
        CHECK(store_tx_commit(s) == 0);
        CHECK(store_counter_next(s, "tx-test", &c) == 0 && c == 2);
}

/* An RM's provider is set apart from heartbeats' upserts, which keep it. */
static void test_rm_provider(store_t *s) {
        rm_record_t rm = { .name = "rm-p", .role = "chamber", .address = "10.0.0.1:7001", .state = "up" };
        CHECK(store_rm_upsert(s, &rm) == 0);
        CHECK(store_rm_provider_set(s, "rm-p", "prov1") == 0);
        CHECK(store_rm_provider_set(s, "rm-none", "prov1") == -ENOENT);
        rm.last_seen_ms = 5;
        CHECK(store_rm_upsert(s, &rm) == 0);
        rm_record_t got = { 0 };
        CHECK(store_rm_get(s, "rm-p", &got) == 0 && streq(got.provider, "prov1") && got.last_seen_ms == 5);
        CHECK(store_rm_provider_set(s, "rm-p", NULL) == 0);
        CHECK(store_rm_get(s, "rm-p", &got) == 0 && streq(got.provider, ""));
}

/* Figures: rows replaced by (kind, image, rm), bad input refused, kept across a reopen; and a
 * database of schema 7 gains the empty table. */
static void test_figures(const char *dir) {
        _cleanup_free_ char *path = xasprintf("%s/figures.db", dir);
        store_t *s = NULL;
        CHECK(store_open(path, &s) == 0 && s);
        json_t *list = NULL;
        CHECK(store_figures_list(s, &list) == 0 && json_array_size(list) == 0);
        json_decref(list);
        json_t *a = json_pack("[f,f]", 1.5, 2.0), *b = json_pack("[f]", 0.25);
        CHECK(store_figures_put(s, "activation", "tiny-http", "rm1", a) == 0);
        CHECK(store_figures_put(s, "activation", "tiny-http", "rm1", b) == 0); /* replaces */
        CHECK(store_figures_put(s, "boot", "tiny-http", "ch1", a) == 0);
        CHECK(store_figures_put(s, "", "tiny-http", "rm1", a) == -EINVAL);
        CHECK(store_figures_put(s, "boot", "tiny-http", "rm1", NULL) == -EINVAL);
        char longname[80];
        memset(longname, 'x', sizeof longname - 1);
        longname[sizeof longname - 1] = 0;
        CHECK(store_figures_put(s, "boot", longname, "rm1", a) == -EINVAL);
        s = store_close(s);
        CHECK(store_open(path, &s) == 0 && s);
        CHECK(store_figures_list(s, &list) == 0 && json_array_size(list) == 2);
        json_t *first = json_array_get(list, 0);
        CHECK_STREQ(json_string_value(json_object_get(first, "kind")), "activation");
        CHECK_STREQ(json_string_value(json_object_get(first, "rm")), "rm1");
        CHECK(json_equal(json_object_get(first, "samples"), b));
        CHECK(json_equal(json_object_get(json_array_get(list, 1), "samples"), a));
        json_decref(list);
        json_decref(a);
        json_decref(b);
        s = store_close(s);

        sqlite3 *db = NULL;
        CHECK(sqlite3_open(path, &db) == SQLITE_OK);
        CHECK(sqlite3_exec(db, UNDO_MIGRATION_8 "PRAGMA user_version=7;", NULL, NULL, NULL) == SQLITE_OK);
        sqlite3_close(db);
        CHECK(store_open(path, &s) == 0 && s && store_schema_version(s) == 8);
        CHECK(s && store_figures_list(s, &list) == 0 && json_array_size(list) == 0);
        json_decref(list);
        store_close(s);
}

/* A walk of store_vm_page, limit per page, one page at a time: the next page after *cursor
 * appended to seen (names), *cursor moved to its last name. false at the end (a short page). */
static bool walk_step(store_t *s, char *cursor, size_t limit, char (*seen)[64], size_t *n_seen, size_t max) {
        vm_record_t *vms = NULL;
        size_t n = 0;
        CHECK(store_vm_page(s, cursor, limit, &vms, &n) == 0);
        CHECK(n <= limit);
        for (size_t i = 0; i < n && *n_seen < max; i++)
                snprintf(seen[(*n_seen)++], 64, "%s", vms[i].name);
        if (n > 0)
                snprintf(cursor, 64, "%s", vms[n - 1].name);
        store_vm_list_free(vms, n);
        return n == limit;
}

static size_t seen_count(char (*seen)[64], size_t n, const char *name) {
        size_t c = 0;
        for (size_t i = 0; i < n; i++)
                c += streq(seen[i], name);
        return c;
}

/* Paging: 50 VMs p-000, p-002, ... p-098 walked 7 at a time. After two pages, a VM is created
 * before the cursor and two after it, one seen VM and one unseen VM are deleted: the walk
 * goes on in strictly increasing order, every VM that existed throughout appears exactly once,
 * the new ones after the cursor once, the one before it and the deleted unseen one never.
 * RMs page alike; VM counts per RM come for a range of RM names. */
static void test_paging(const char *dir) {
        _cleanup_free_ char *path = xasprintf("%s/paging.db", dir);
        store_t *s = NULL;
        CHECK(store_open(path, &s) == 0);
        for (int i = 0; i < 100; i += 2) {
                char name[16];
                snprintf(name, sizeof name, "p-%03d", i);
                vm_record_t v = sample_vm(name);
                CHECK(store_vm_insert(s, &v) == 0);
                vm_record_clear(&v);
        }
        vm_record_t *vms = NULL;
        size_t n = 0;
        CHECK(store_vm_page(s, NULL, 0, &vms, &n) == -ERANGE);
        CHECK(store_vm_page(s, NULL, STORE_PAGE_MAX + 1, &vms, &n) == -ERANGE);
        CHECK(store_vm_page(s, "p-098", 5, &vms, &n) == 0 && n == 0);
        store_vm_list_free(vms, n);
        CHECK(store_vm_page(s, "p-0", 3, &vms, &n) == 0 && n == 3 && streq(vms[0].name, "p-000"));
        store_vm_list_free(vms, n);

        char cursor[64] = "", seen[128][64];
        size_t n_seen = 0;
        CHECK(walk_step(s, cursor, 7, seen, &n_seen, 128));
        CHECK(walk_step(s, cursor, 7, seen, &n_seen, 128));
        CHECK_STREQ(cursor, "p-026");
        const char *created[] = { "p-001", "p-027", "p-099" }; /* before, just after, at the end */
        for (size_t i = 0; i < ELEMENTSOF(created); i++) {
                vm_record_t v = sample_vm(created[i]);
                CHECK(store_vm_insert(s, &v) == 0);
                vm_record_clear(&v);
        }
        CHECK(store_vm_delete(s, "p-004") == 0); /* seen */
        CHECK(store_vm_delete(s, "p-060") == 0); /* not yet */
        int pages = 2;
        while (walk_step(s, cursor, 7, seen, &n_seen, 128) && pages < 100)
                pages++;
        CHECK(pages == 7); /* 50 - 1 + 2 = 51 names: 7 full pages, the 8th short */
        for (size_t i = 1; i < n_seen; i++)
                CHECK(strcmp(seen[i - 1], seen[i]) < 0);
        bool once = true;
        for (int i = 0; i < 100; i += 2) {
                char name[16];
                snprintf(name, sizeof name, "p-%03d", i);
                if (i != 60)
                        once = once && seen_count(seen, n_seen, name) == 1;
        }
        CHECK(once);
        CHECK(seen_count(seen, n_seen, "p-060") == 0);
        CHECK(seen_count(seen, n_seen, "p-001") == 0);
        CHECK(seen_count(seen, n_seen, "p-027") == 1);
        CHECK(seen_count(seen, n_seen, "p-099") == 1);
        CHECK(n_seen == 51);

        /* RMs, and the VMs on them counted per RM */
        const char *rms[] = { "rm-a", "rm-b", "rm-c", "rm-d" };
        for (size_t i = 0; i < ELEMENTSOF(rms); i++) {
                rm_record_t rm = { .role = "chamber", .address = "10.0.0.1:7001", .state = "up" };
                snprintf(rm.name, sizeof rm.name, "%s", rms[i]);
                CHECK(store_rm_upsert(s, &rm) == 0);
        }
        const char *placed[][2] = { { "p-000", "rm-a" }, { "p-002", "rm-b" }, { "p-006", "rm-b" }, { "p-008", "rm-d" } };
        for (size_t i = 0; i < ELEMENTSOF(placed); i++) {
                vm_record_t v = { 0 };
                CHECK(store_vm_get(s, placed[i][0], &v) == 0);
                snprintf(v.rm, sizeof v.rm, "%s", placed[i][1]);
                CHECK(store_vm_update(s, &v, v.version) == 0);
                vm_record_clear(&v);
        }
        rm_record_t *rl = NULL;
        CHECK(store_rm_page(s, "rm-a", 2, &rl, &n) == 0 && n == 2 && streq(rl[0].name, "rm-b") &&
              streq(rl[1].name, "rm-c"));
        free(rl);
        CHECK(store_rm_page(s, "rm-c", 2, &rl, &n) == 0 && n == 1 && streq(rl[0].name, "rm-d"));
        free(rl);
        CHECK(store_rm_page(s, "", STORE_PAGE_MAX + 1, &rl, &n) == -ERANGE);
        store_rm_count_t *counts = NULL;
        CHECK(store_vm_count_on_range(s, "rm-a", "rm-d", &counts, &n) == 0);
        CHECK(n == 2 && streq(counts[0].rm, "rm-b") && counts[0].vms == 2 && streq(counts[1].rm, "rm-d") &&
              counts[1].vms == 1);
        free(counts);
        CHECK(store_vm_count_on_range(s, "", "rm-a", &counts, &n) == 0 && n == 1 && counts[0].vms == 1);
        free(counts);
        store_close(s);
}

int main(void) {
        char dir[] = "/tmp/vmx-test-store-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        /* first: its children set VMATRIX_FAULT, which a process reads once */
        test_view_commit_fault(dir);
        _cleanup_free_ char *path = xasprintf("%s/state.db", dir);
        store_t *s = NULL;
        CHECK(store_open(path, &s) == 0);
        CHECK(store_schema_version(s) == 8);
        test_view_writes(s);
        test_view_rollback(s);
        test_view_random(s);
        test_view_snapshot(s);

        test_services(s);
        test_migration_health(dir);
        test_migration_auth(dir);
        test_figures(dir);
        test_auth_rows(s);
        test_tx_depth(path, s);
        test_rm_provider(s);
        test_paging(dir);
        vm_record_t v = sample_vm("web1");
        snprintf(v.service, sizeof v.service, "web");
        snprintf(v.owner, sizeof v.owner, "alice");
        CHECK(store_vm_insert(s, &v) == 0);
        CHECK(store_vm_insert(s, &v) == -EEXIST);
        vm_record_t got = { 0 };
        CHECK(store_vm_get(s, "web1", &got) == 0);
        CHECK_STREQ(got.state, "stored");
        CHECK(got.version == 1 && got.memory_mib == 128);
        CHECK_STREQ(got.service, "web");
        CHECK_STREQ(got.owner, "alice");
        /* the JSON form round-trips (a bad json_pack format once made it NULL) */
        got.pid = 4242;
        json_t *j = vm_record_to_json(&got);
        CHECK(j != NULL);
        CHECK(json_integer_value(json_object_get(j, "pid")) == 4242);
        vm_record_t back = { 0 };
        CHECK(vm_record_from_json(j, &back) == 0 && back.pid == 4242 && streq(back.mac, got.mac) &&
              streq(back.owner, "alice"));
        vm_record_clear(&back);
        json_decref(j);
        got.pid = 0;
        j = vm_record_to_json(&got);
        CHECK(j && json_is_null(json_object_get(j, "pid")) && json_is_null(json_object_get(j, "rm")));
        json_decref(j);
        vm_record_clear(&got);
        CHECK(store_vm_get(s, "nope", &got) == -ENOENT);

        /* optimistic concurrency: an update based on an old version is refused */
        v.version = 2;
        snprintf(v.state, sizeof v.state, "booting");
        CHECK(store_vm_update(s, &v, 1) == 0);
        v.version = 3;
        CHECK(store_vm_update(s, &v, 1) == -ESTALE);
        CHECK(store_vm_get(s, "web1", &got) == 0 && got.version == 2);
        vm_record_clear(&got);

        /* a VM created again under a deleted one's name starts above its last version */
        int64_t first = 0;
        CHECK(store_vm_first_version(s, "web9", &first) == 0 && first == 1);
        vm_record_t d = sample_vm("web9");
        CHECK(store_vm_insert(s, &d) == 0);
        d.version = 7;
        CHECK(store_vm_update(s, &d, 1) == 0);
        CHECK(store_vm_delete(s, "web9") == 0);
        CHECK(store_vm_first_version(s, "web9", &first) == 0 && first == 8);
        CHECK(store_vm_delete(s, "web9") == -ENOENT);
        CHECK(store_vm_first_version(s, "web9", &first) == 0 && first == 8);
        vm_record_clear(&d);

        /* a transaction rolled back leaves nothing behind */
        vm_record_t w = sample_vm("web2");
        CHECK(store_tx_begin(s) == 0);
        CHECK(store_vm_insert(s, &w) == 0);
        store_tx_rollback(s);
        CHECK(store_vm_get(s, "web2", &got) == -ENOENT);
        vm_record_clear(&w);

        op_record_t o = { 0 };
        snprintf(o.vm, sizeof o.vm, "web1");
        snprintf(o.kind, sizeof o.kind, "boot");
        snprintf(o.state, sizeof o.state, "running");
        o.args = json_pack("{s:s}", "rm", "chamber1");
        CHECK(store_op_insert(s, &o) == 0);
        CHECK(str_startswith(o.id, "op-"));
        op_record_t *ops = NULL;
        size_t n = 0;
        CHECK(store_op_list_running(s, &ops, &n) == 0 && n == 1);
        store_op_list_free(ops, n);
        snprintf(o.state, sizeof o.state, "done");
        CHECK(store_op_update(s, &o) == 0);
        CHECK(store_op_list_running(s, &ops, &n) == 0 && n == 0);
        store_op_list_free(ops, n);
        op_record_clear(&o);

        CHECK(store_event_add(s, "activated", "web1", NULL, "prod1", "requested") == 0);
        json_t *ev = NULL;
        CHECK(store_event_list(s, 0, 100, &ev) == 0 && json_array_size(ev) == 1);
        CHECK_STREQ(json_string_value(json_object_get(json_array_get(ev, 0), "rm")), "prod1");
        CHECK(json_is_null(json_object_get(json_array_get(ev, 0), "service")));
        json_decref(ev);

        int64_t c1 = 0, c2 = 0;
        CHECK(store_counter_next(s, "mac", &c1) == 0 && store_counter_next(s, "mac", &c2) == 0 && c2 == c1 + 1);
        s = store_close(s);

        /* reopen: data persisted, no migration needed */
        CHECK(store_open(path, &s) == 0);
        CHECK(store_vm_get(s, "web1", &got) == 0 && got.version == 2);
        vm_record_clear(&got);
        /* the view is loaded from the tables */
        store_view_vm_t vgot = { 0 };
        CHECK(store_view_vm_get(s, "web1", &vgot) == 0 && vgot.version == 2);
        CHECK(view_clean(s));
        s = store_close(s);

        /* a database from a newer vmatrix is refused, not damaged */
        sqlite3 *db = NULL;
        CHECK(sqlite3_open(path, &db) == SQLITE_OK);
        CHECK(sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL) == SQLITE_OK);
        sqlite3_close(db);
        CHECK(store_open(path, &s) == -EPROTO);
        vm_record_clear(&v);
        rm_rf(dir);
        return tap_finish();
}
