/* Unit tests for the SQLite store: migrations, optimistic version checks, ops, events, users and
 * tokens, reopen; paging of VMs and RMs while rows come and go around the cursor. */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "store/store.h"
#include "store/store-auth.h"
#include "store/store-figures.h"
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
        _cleanup_free_ char *path = xasprintf("%s/state.db", dir);
        store_t *s = NULL;
        CHECK(store_open(path, &s) == 0);
        CHECK(store_schema_version(s) == 8);

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
