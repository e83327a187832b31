/* Implementation of spec.h: name and subnet derivation, argv construction and cluster.json.
 * Everything here is pure so tests/unit/test-cluster.c can check it without root. */
#include "cluster/spec.h"

#include <arpa/inet.h>
#include <string.h>

#include "base/util.h"

#define SPEC_JSON_VERSION 1
#define SPEC_SUBNET_ATTEMPTS 256

const char *spec_role_to_string(enum spec_role role) {
        switch (role) {
        case SPEC_ROLE_ORACLE:
                return "oracle";
        case SPEC_ROLE_PRODUCTION:
                return "production";
        case SPEC_ROLE_CHAMBER:
                return "chamber";
        }
        return "?";
}

int spec_role_from_string(const char *s, enum spec_role *ret) {
        static const enum spec_role roles[] = { SPEC_ROLE_ORACLE, SPEC_ROLE_PRODUCTION, SPEC_ROLE_CHAMBER };
        for (size_t i = 0; s && i < ELEMENTSOF(roles); i++)
                if (streq(s, spec_role_to_string(roles[i]))) {
                        *ret = roles[i];
                        return 0;
                }
        return -EINVAL;
}

static uint64_t dir_hash(const char *dir) {
        uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
        for (const unsigned char *p = (const unsigned char *)dir; *p; p++) {
                h ^= *p;
                h *= 0x100000001b3ULL;
        }
        return h;
}

/* splitmix64: spreads consecutive attempts over the whole 10/8. */
static uint64_t mix64(uint64_t x) {
        x += 0x9e3779b97f4a7c15ULL;
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
        return x ^ (x >> 31);
}

void spec_dir_tag(const char *dir, char ret[7]) {
        snprintf(ret, 7, "%06x", (unsigned)(dir_hash(dir) >> 40) & 0xffffffu);
}

char *spec_bridge_name(const char *dir) {
        char tag[7];
        spec_dir_tag(dir, tag);
        return xasprintf("vmx%s", tag);
}

char *spec_netns_prefix(const char *dir) {
        char tag[7];
        spec_dir_tag(dir, tag);
        return xasprintf("vmx%s-", tag);
}

uint32_t spec_subnet_candidate(const char *dir, unsigned attempt) {
        uint64_t x = mix64(dir_hash(dir) + attempt);
        uint32_t b = 1 + (uint32_t)(x % 254), c = (uint32_t)(x >> 32) & 0xff;
        return (10u << 24) | (b << 16) | (c << 8);
}

static uint32_t prefix_mask(unsigned len) { return len == 0 ? 0 : len >= 32 ? 0xffffffffu : ~((1u << (32 - len)) - 1); }

bool spec_subnet_overlaps(uint32_t subnet, const spec_prefix_t *used, size_t n_used) {
        for (size_t i = 0; i < n_used; i++) {
                if (used[i].len == 0)
                        continue;
                /* two prefixes overlap iff they agree on the bits of the shorter one */
                uint32_t mask = prefix_mask(MIN(used[i].len, 24u));
                if ((subnet & mask) == (used[i].addr & mask))
                        return true;
        }
        return false;
}

int spec_subnet_pick(const char *dir, const spec_prefix_t *used, size_t n_used, uint32_t *ret) {
        for (unsigned i = 0; i < SPEC_SUBNET_ATTEMPTS; i++) {
                uint32_t s = spec_subnet_candidate(dir, i);
                if (!spec_subnet_overlaps(s, used, n_used)) {
                        *ret = s;
                        return 0;
                }
        }
        return -EADDRNOTAVAIL;
}

char *spec_address_format(uint32_t addr) {
        return xasprintf("%u.%u.%u.%u", addr >> 24, (addr >> 16) & 0xff, (addr >> 8) & 0xff, addr & 0xff);
}

static void member_clear(spec_member_t *m) {
        free(m->name);
        free(m->address);
        free(m->netns);
        free(m->veth);
        *m = (spec_member_t){ 0 };
}

spec_t *spec_free(spec_t *s) {
        if (!s)
                return NULL;
        free(s->dir);
        free(s->exe);
        free(s->accel);
        free(s->bridge);
        member_clear(&s->oracle);
        for (size_t i = 0; i < s->n_rms; i++)
                member_clear(&s->rms[i]);
        free(s->rms);
        free(s);
        return NULL;
}

int spec_new(const char *dir, const char *exe, const char *accel, unsigned production,
             unsigned chambers, bool netns, uint32_t subnet, spec_t **ret) {
        if (!dir || dir[0] != '/' || !exe || exe[0] != '/')
                return -EINVAL;
        if (production + chambers < 1 || production > SPEC_MAX_RMS || chambers > SPEC_MAX_RMS ||
            production + chambers > SPEC_MAX_RMS)
                return -ERANGE;
        if (netns && (subnet >> 24) != 10)
                return -EINVAL;

        _cleanup_(spec_freep) spec_t *s = xcalloc(1, sizeof *s);
        s->dir = xstrdup(dir);
        s->exe = xstrdup(exe);
        s->accel = accel ? xstrdup(accel) : NULL;
        s->netns = netns;
        s->subnet = netns ? subnet : 0;
        s->n_rms = production + chambers;
        s->rms = xcalloc(s->n_rms, sizeof *s->rms);

        _cleanup_free_ char *prefix = spec_netns_prefix(dir);
        s->bridge = netns ? spec_bridge_name(dir) : NULL;
        s->oracle = (spec_member_t){
                .name = xstrdup("oracle"),
                .role = SPEC_ROLE_ORACLE,
                .address = netns ? spec_address_format(subnet | 1) : xstrdup(SPEC_LOOPBACK_ADDRESS),
                .port = netns ? SPEC_ORACLE_PORT : 0,
                .node_port = netns ? SPEC_ORACLE_NODE_PORT : 0,
        };
        for (size_t k = 0; k < s->n_rms; k++) {
                spec_member_t *m = &s->rms[k];
                bool prod = k < production;
                m->role = prod ? SPEC_ROLE_PRODUCTION : SPEC_ROLE_CHAMBER;
                m->name = prod ? xasprintf("prod%zu", k + 1) : xasprintf("chamber%zu", k - production + 1);
                if (netns) {
                        m->address = spec_address_format(subnet | (uint32_t)(k + 2));
                        m->port = SPEC_NODE_PORT;
                        m->netns = xasprintf("%s%s", prefix, m->name);
                        m->veth = xasprintf("%s%zu", prefix, k + 1);
                } else {
                        m->address = xstrdup(SPEC_LOOPBACK_ADDRESS);
                }
        }
        *ret = TAKE_PTR(s);
        return 0;
}

static json_t *member_to_json(const spec_member_t *m) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:i}", "name", m->name, "role", spec_role_to_string(m->role),
                              "address", m->address, "port", (json_int_t)m->port);
        if (j && m->node_port)
                json_object_set_new(j, "node_port", json_integer(m->node_port));
        if (j && m->netns)
                json_object_set_new(j, "netns", json_string(m->netns));
        if (j && m->veth)
                json_object_set_new(j, "veth", json_string(m->veth));
        return j;
}

json_t *spec_to_json(const spec_t *s) {
        _cleanup_(json_decrefp) json_t *j = json_pack("{s:i, s:s, s:s, s:o, s:b, s:o}", "version",
                                                      (json_int_t)SPEC_JSON_VERSION, "dir", s->dir, "exe",
                                                      s->exe, "accel", s->accel ? json_string(s->accel) : json_null(),
                                                      "netns", s->netns, "oracle", member_to_json(&s->oracle));
        if (!j)
                return NULL;
        if (s->plain)
                json_object_set_new(j, "plain", json_true());
        if (s->open_signup)
                json_object_set_new(j, "open_signup", json_true());
        if (s->netns) {
                _cleanup_free_ char *net = spec_address_format(s->subnet);
                _cleanup_free_ char *cidr = xasprintf("%s/24", net);
                json_object_set_new(j, "bridge", json_string(s->bridge));
                json_object_set_new(j, "subnet", json_string(cidr));
        }
        json_t *rms = json_array();
        for (size_t i = 0; i < s->n_rms; i++)
                json_array_append_new(rms, member_to_json(&s->rms[i]));
        json_object_set_new(j, "rms", rms);
        return TAKE_PTR(j);
}

/* Interface names: what the kernel allows (<= 15) restricted to what we generate. */
static bool ifname_is_valid(const char *s) { return s && strlen(s) <= 15 && name_is_valid(s); }

static bool address_parse(const char *s, uint32_t *ret) {
        struct in_addr a;
        if (!s || inet_pton(AF_INET, s, &a) != 1)
                return false;
        if (ret)
                *ret = ntohl(a.s_addr);
        return true;
}

static int member_from_json(const json_t *j, bool netns, spec_member_t *ret) {
        const char *name = NULL, *role = NULL, *address = NULL, *ns = NULL, *veth = NULL;
        json_int_t port = 0, node_port = 0;
        if (json_unpack((json_t *)j, "{s:s, s:s, s:s, s:I, s?I, s?s, s?s}", "name", &name, "role", &role, "address",
                        &address, "port", &port, "node_port", &node_port, "netns", &ns, "veth", &veth) < 0)
                return -EBADMSG;
        if (node_port < 0 || node_port > 65535)
                return -EBADMSG;
        enum spec_role r;
        if (!name_is_valid(name) || spec_role_from_string(role, &r) < 0 || !address_parse(address, NULL) ||
            port < 1 || port > 65535)
                return -EBADMSG;
        if (netns && r != SPEC_ROLE_ORACLE && (!name_is_valid(ns) || !ifname_is_valid(veth)))
                return -EBADMSG;
        *ret = (spec_member_t){
                .name = xstrdup(name),
                .role = r,
                .address = xstrdup(address),
                .port = (unsigned)port,
                /* a cluster.json from before the node channel: its default, the port after */
                .node_port = r == SPEC_ROLE_ORACLE ? (unsigned)(node_port ? node_port : port + 1) : 0,
                .netns = netns && ns ? xstrdup(ns) : NULL,
                .veth = netns && veth ? xstrdup(veth) : NULL,
        };
        return 0;
}

int spec_from_json(const json_t *j, spec_t **ret) {
        const char *dir = NULL, *exe = NULL, *bridge = NULL, *subnet = NULL;
        json_int_t version = 0;
        int netns = 0;
        json_t *accel = NULL, *oracle = NULL, *rms = NULL;
        if (!j || json_unpack((json_t *)j, "{s:I, s:s, s:s, s?o, s:b, s?s, s?s, s:o, s:o}", "version", &version,
                              "dir", &dir, "exe", &exe, "accel", &accel, "netns", &netns, "bridge", &bridge,
                              "subnet", &subnet, "oracle", &oracle, "rms", &rms) < 0)
                return -EBADMSG;
        if (version != SPEC_JSON_VERSION || dir[0] != '/' || exe[0] != '/' || !json_is_array(rms) ||
            json_array_size(rms) < 1 || json_array_size(rms) > SPEC_MAX_RMS ||
            (accel && !json_is_null(accel) && !json_is_string(accel)))
                return -EBADMSG;

        _cleanup_(spec_freep) spec_t *s = xcalloc(1, sizeof *s);
        s->dir = xstrdup(dir);
        s->exe = xstrdup(exe);
        s->accel = json_is_string(accel) ? xstrdup(json_string_value(accel)) : NULL;
        s->netns = netns;
        s->plain = json_is_true(json_object_get(j, "plain"));
        s->open_signup = json_is_true(json_object_get(j, "open_signup"));
        if (netns) {
                _cleanup_free_ char *net = xstrdup(subnet ? subnet : "");
                char *slash = strchr(net, '/');
                if (!ifname_is_valid(bridge) || !slash || !streq(slash, "/24"))
                        return -EBADMSG;
                *slash = 0;
                if (!address_parse(net, &s->subnet) || (s->subnet & 0xff) != 0)
                        return -EBADMSG;
                s->bridge = xstrdup(bridge);
        }
        s->rms = xcalloc(json_array_size(rms), sizeof *s->rms);
        if (member_from_json(oracle, netns, &s->oracle) < 0 || s->oracle.role != SPEC_ROLE_ORACLE ||
            !streq(s->oracle.name, "oracle"))
                return -EBADMSG;
        for (size_t i = 0; i < json_array_size(rms); i++) {
                if (member_from_json(json_array_get(rms, i), netns, &s->rms[i]) < 0)
                        return -EBADMSG;
                s->n_rms++;
                if (s->rms[i].role == SPEC_ROLE_ORACLE || spec_member_find(s, s->rms[i].name) != &s->rms[i])
                        return -EBADMSG; /* an RM may not be called "oracle" or appear twice */
        }
        *ret = TAKE_PTR(s);
        return 0;
}

int spec_save(const spec_t *s, const char *path) {
        _cleanup_(json_decrefp) json_t *j = spec_to_json(s);
        if (!j)
                return -ENOMEM;
        _cleanup_free_ char *text = json_dumps(j, JSON_INDENT(2));
        if (!text)
                return -ENOMEM;
        _cleanup_free_ char *data = xasprintf("%s\n", text);
        return file_write_atomic(path, data, strlen(data));
}

int spec_load(const char *path, spec_t **ret) {
        _cleanup_free_ char *text = NULL;
        int r = file_read(path, &text, NULL);
        if (r < 0)
                return r;
        _cleanup_(json_decrefp) json_t *j = json_loads(text, 0, NULL);
        if (!j)
                return -EBADMSG;
        return spec_from_json(j, ret);
}

const spec_member_t *spec_member_find(const spec_t *s, const char *name) {
        if (!name)
                return NULL;
        if (s->oracle.name && streq(name, s->oracle.name))
                return &s->oracle;
        for (size_t i = 0; i < s->n_rms; i++)
                if (streq(name, s->rms[i].name))
                        return &s->rms[i];
        return NULL;
}

char *spec_oracle_url(const spec_t *s) {
        return xasprintf("%s://%s:%u", s->plain ? "http" : "https", s->oracle.address, s->oracle.port);
}

char *spec_oracle_node_url(const spec_t *s) {
        if (s->plain)
                return spec_oracle_url(s);
        return xasprintf("https://%s:%u", s->oracle.address, s->oracle.node_port);
}

char *spec_data_dir_of(const char *dir, const char *name) {
        return streq(name, "oracle") ? xasprintf("%s/oracle", dir) : xasprintf("%s/nodes/%s", dir, name);
}

char *spec_member_data_dir(const spec_t *s, const spec_member_t *m) { return spec_data_dir_of(s->dir, m->name); }

char *spec_member_log_path(const spec_t *s, const spec_member_t *m) {
        return xasprintf("%s/logs/%s.log", s->dir, m->name);
}

char *spec_member_pid_path(const spec_t *s, const spec_member_t *m) {
        return xasprintf("%s/pids/%s.pid", s->dir, m->name);
}

char **spec_member_argv(const spec_t *s, const spec_member_t *m) {
        char **argv = xcalloc(20, sizeof *argv); /* and room for the caller's --join TOKEN */
        size_t n = 0;
        argv[n++] = xstrdup(s->exe);
        if (m->role == SPEC_ROLE_ORACLE) {
                argv[n++] = xstrdup("oracle");
                if (!s->plain) {
                        argv[n++] = xstrdup("--node-listen");
                        argv[n++] = xasprintf("%s:%u", m->address, m->node_port);
                        argv[n++] = xstrdup("--tls-auto");
                }
                if (s->open_signup)
                        argv[n++] = xstrdup("--open-signup");
        } else {
                argv[n++] = xstrdup("node");
                argv[n++] = xstrdup("--oracle");
                argv[n++] = spec_oracle_node_url(s);
                argv[n++] = xstrdup("--name");
                argv[n++] = xstrdup(m->name);
                argv[n++] = xstrdup("--role");
                argv[n++] = xstrdup(spec_role_to_string(m->role));
        }
        argv[n++] = xstrdup("--data");
        argv[n++] = spec_member_data_dir(s, m);
        argv[n++] = xstrdup("--listen");
        argv[n++] = xasprintf("%s:%u", m->address, m->port);
        if (m->role != SPEC_ROLE_ORACLE && s->accel) {
                argv[n++] = xstrdup("--accel");
                argv[n++] = xstrdup(s->accel);
        }
        argv[n] = NULL;
        return argv;
}
