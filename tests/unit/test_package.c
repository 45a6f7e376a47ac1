/* Plugin packages: every manifest field's good and bad values (each refusal
 * names the field), entry paths escaping the package, semver precedence,
 * SHA-256 test vectors, and the store: copy, modes, digest, immutability,
 * idempotence, limits, temp-dir cleanup, listing. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "package.h"

/* snprintf into an array that must not truncate. */
#define PATHF(buf, ...) assert_true((size_t)snprintf(buf, sizeof buf, __VA_ARGS__) < sizeof buf)

typedef struct {
    char root[64];        /* temp dir of this test */
    char pkg[PATH_MAX];   /* root/pkg: the package being written */
    char store[PATH_MAX]; /* root/store */
} fx_t;

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void write_file(const char *dir, const char *rel, const void *data, size_t len, mode_t mode)
{
    char path[PATH_MAX];
    PATHF(path, "%s/%s", dir, rel);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void write_text(const char *dir, const char *rel, const char *text)
{
    write_file(dir, rel, text, strlen(text), 0644);
}

static void mkdir_in(const char *dir, const char *rel)
{
    char path[PATH_MAX];
    PATHF(path, "%s/%s", dir, rel);
    assert_int_equal(mkdir(path, 0755), 0);
}

static void symlink_in(const char *dir, const char *rel, const char *target)
{
    char path[PATH_MAX];
    PATHF(path, "%s/%s", dir, rel);
    assert_int_equal(symlink(target, path), 0);
}

/* A minimal valid manifest object; callers add or replace keys. */
static json_t *base_manifest(void)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", "hello", "version", "1.0.0", "language",
                     "c", "runtime_version", "1", "entry", "libhello.so");
}

static void write_manifest(const char *dir, json_t *m)
{
    char *text = json_dumps(m, JSON_INDENT(2));
    assert_non_null(text);
    write_text(dir, PD_MANIFEST_FILE, text);
    free(text);
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    strcpy(fx->root, "/tmp/test_package-XXXXXX");
    if (!mkdtemp(fx->root))
        return -1;
    snprintf(fx->pkg, sizeof fx->pkg, "%s/pkg", fx->root);
    snprintf(fx->store, sizeof fx->store, "%s/store", fx->root);
    if (mkdir(fx->pkg, 0755) != 0)
        return -1;
    write_file(fx->pkg, "libhello.so",
               "\x7f"
               "ELF fake",
               9, 0755);
    json_t *m = base_manifest();
    write_manifest(fx->pkg, m);
    json_decref(m);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    nftw(fx->root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

/* Load fx->pkg with `key` set to `value` (stolen; NULL deletes the key).
 * expect == NULL: must load; else must fail with why starting with expect. */
static void check(fx_t *fx, const char *key, json_t *value, const char *expect)
{
    json_t *m = base_manifest();
    if (value)
        json_object_set_new(m, key, value);
    else
        json_object_del(m, key);
    write_manifest(fx->pkg, m);
    char *shown = json_dumps(json_object_get(m, key), JSON_ENCODE_ANY);
    json_decref(m);

    pd_manifest_t man;
    char why[512] = "";
    int rc = pd_manifest_load(fx->pkg, &man, why, sizeof why);
    if (!expect) {
        if (rc != 0)
            fail_msg("%s=%s refused: %s", key, shown ? shown : "(none)", why);
        pd_manifest_free(&man);
    } else {
        if (rc == 0)
            fail_msg("%s=%s accepted, expected \"%s\"", key, shown ? shown : "(none)", expect);
        assert_int_equal(rc, -EINVAL);
        if (strncmp(why, expect, strlen(expect)) != 0)
            fail_msg("%s=%s: why \"%s\" does not start with \"%s\"", key, shown ? shown : "(none)",
                     why, expect);
        assert_null(man.id); /* zeroed on failure */
    }
    free(shown);
}

static void good_str(fx_t *fx, const char *key, const char *v)
{
    check(fx, key, json_string(v), NULL);
}

static void bad_str(fx_t *fx, const char *key, const char *v)
{
    char expect[128];
    PATHF(expect, "manifest.json: %s: ", key);
    check(fx, key, json_string(v), expect);
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* ---- SHA-256 --------------------------------------------------------- */

static void test_sha256_vectors(void **state)
{
    (void)state;
    char hex[PD_SHA256_HEX_LEN + 1];
    pd_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    pd_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    pd_sha256_hex(m448, strlen(m448), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    const char *m896 =
        "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
        "klmnopqrlmnopqrsmnopqrstnopqrstu";
    pd_sha256_hex(m896, strlen(m896), hex);
    assert_string_equal(hex, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
    char *million = repeat('a', 1000000);
    pd_sha256_hex(million, 1000000, hex);
    free(million);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* ---- semver ---------------------------------------------------------- */

static void test_semver_valid(void **state)
{
    (void)state;
    const char *good[] = {"0.0.0",
                          "1.0.0",
                          "10.20.30",
                          "1.2.3-alpha.1",
                          "1.0.0-0.3.7",
                          "1.0.0-x.7.z.92",
                          "1.0.0-x-y-z.--",
                          "1.0.0+20130313144700",
                          "1.0.0-beta+exp.sha.5114f85",
                          "1.0.0+21AF26D3----117B344092BD",
                          "1.0.0-alpha+001",
                          "99999999999999999999999.0.0"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        if (!pd_semver_valid(good[i]))
            fail_msg("%s refused", good[i]);
    const char *bad[] = {
        "",           "1",         "1.0",      "1.0.0.0",  "01.0.0",       "1.01.0",
        "1.0.01",     "1.0.0-",    "1.0.0+",   "1.0.0-01", "1.0.0-a..b",   "1.0.0-a.",
        "1.0.0+a..b", "v1.0.0",    " 1.0.0",   "1.0.0 ",   "1.0.0-al_pha", "1.0.0-\xce\xb1",
        "-1.0.0",     "1.0.0+b+c", "1.0.0-+b", "a.b.c",    "1..0"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (pd_semver_valid(bad[i]))
            fail_msg("\"%s\" accepted", bad[i]);
    assert_false(pd_semver_valid(NULL));
    char *lng = repeat('1', PD_PKG_VERSION_MAX - 1);
    memcpy(lng, "1.1.", 4); /* "1.1.111…" of exactly the maximum length */
    char buf[PD_PKG_VERSION_MAX + 2];
    PATHF(buf, "%s1", lng);
    assert_int_equal(strlen(buf), PD_PKG_VERSION_MAX);
    assert_true(pd_semver_valid(buf));
    PATHF(buf, "%s11", lng);
    assert_false(pd_semver_valid(buf));
    free(lng);
}

static int cmpv(const char *a, const char *b)
{
    int c = 99;
    assert_int_equal(pd_semver_compare(a, b, &c), 0);
    return c;
}

static void test_semver_compare(void **state)
{
    (void)state;
    const char *chain[] = {"0.9.99",
                           "1.0.0-0",
                           "1.0.0-1",
                           "1.0.0-2",
                           "1.0.0-10",
                           "1.0.0-alpha",
                           "1.0.0-alpha.1",
                           "1.0.0-alpha.beta",
                           "1.0.0-beta",
                           "1.0.0-beta.2",
                           "1.0.0-beta.11",
                           "1.0.0-rc.1",
                           "1.0.0",
                           "1.0.1",
                           "1.2.0",
                           "1.10.0",
                           "2.0.0",
                           "10.0.0",
                           "123456789012345678901.0.0"};
    size_t n = sizeof chain / sizeof *chain;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            int c = cmpv(chain[i], chain[j]);
            int want = (i > j) - (i < j);
            if ((c > 0) - (c < 0) != want)
                fail_msg("compare(%s, %s) = %d, want sign %d", chain[i], chain[j], c, want);
        }
    /* Build metadata does not count. */
    assert_int_equal(cmpv("1.0.0+a", "1.0.0+b"), 0);
    assert_int_equal(cmpv("1.0.0+a", "1.0.0"), 0);
    assert_int_equal(cmpv("1.0.0-rc.1+x", "1.0.0-rc.1"), 0);
    assert_true(cmpv("1.0.0-rc.1+zzz", "1.0.0") < 0);
    /* Alphanumeric identifiers compare in ASCII order ("B" < "a"). */
    assert_true(cmpv("1.0.0-B", "1.0.0-a") < 0);
    assert_true(cmpv("1.0.0-a-b", "1.0.0-a") > 0);

    int c = 42;
    assert_int_equal(pd_semver_compare("1.0", "1.0.0", &c), -EINVAL);
    assert_int_equal(pd_semver_compare("1.0.0", "x", &c), -EINVAL);
    assert_int_equal(pd_semver_compare(NULL, "1.0.0", &c), -EINVAL);
    assert_int_equal(c, 42);
    assert_int_equal(pd_semver_compare("1.0.0", "1.0.0", NULL), -EINVAL);
}

/* ---- manifest: whole file -------------------------------------------- */

static void test_manifest_minimal_defaults(void **state)
{
    fx_t *fx = *state;
    pd_manifest_t m;
    char why[256];
    assert_int_equal(pd_manifest_load(fx->pkg, &m, why, sizeof why), 0);
    assert_string_equal(m.id, "hello");
    assert_string_equal(m.version, "1.0.0");
    assert_string_equal(m.language, "c");
    assert_string_equal(m.runtime_version, "1");
    assert_string_equal(m.entry, "libhello.so");
    assert_int_equal(m.host_mode, PD_MODE_HIGH_PERFORMANCE);
    assert_int_equal(m.n_http, 0);
    assert_null(m.http);
    assert_false(m.files);
    assert_false(m.db);
    assert_int_equal(m.n_abilities, 0);
    assert_null(m.description);
    assert_null(m.config_schema);
    assert_null(m.default_config);
    pd_manifest_free(&m);
    assert_null(m.id);
    pd_manifest_free(&m); /* twice is harmless */
    pd_manifest_free(NULL);
}

static void test_manifest_full(void **state)
{
    fx_t *fx = *state;
    mkdir_in(fx->pkg, "lib");
    write_file(fx->pkg, "lib/libhello.so", "x", 1, 0755);
    write_text(fx->pkg, PD_MANIFEST_FILE,
               "{\n"
               "  \"id\": \"hello.world_x-1\",\n"
               "  \"version\": \"2.1.0-rc.1+build.7\",\n"
               "  \"language\": \"c\",\n"
               "  \"runtime_version\": \"1.0_a-B\",\n"
               "  \"entry\": \"lib/libhello.so\",\n"
               "  \"host_mode\": \"powerSave\",\n"
               "  \"permissions\": {\"http\": [\"api.example.com:443\", \"*.example.org:*\"],\n"
               "                  \"files\": true, \"db\": false},\n"
               "  \"abilities\": [\n"
               "    {\"kind\": \"task\", \"name\": \"nightly\", \"spec\": \"0 3 * * 1-5\"},\n"
               "    {\"kind\": \"service\", \"name\": \"web_ui\", \"spec\": \"8080/healthz\"}\n"
               "  ],\n"
               "  \"description\": \"Says hello.\",\n"
               "  \"config_schema\": {\"type\": \"object\"},\n"
               "  \"default_config\": {\"greeting\": \"hi\", \"n\": [1, 2]}\n"
               "}\n");
    pd_manifest_t m;
    char why[256] = "";
    assert_int_equal(pd_manifest_load(fx->pkg, &m, why, sizeof why), 0);
    assert_string_equal(m.id, "hello.world_x-1");
    assert_string_equal(m.version, "2.1.0-rc.1+build.7");
    assert_string_equal(m.runtime_version, "1.0_a-B");
    assert_string_equal(m.entry, "lib/libhello.so");
    assert_int_equal(m.host_mode, PD_MODE_POWER_SAVE);
    assert_int_equal(m.n_http, 2);
    assert_string_equal(m.http[0], "api.example.com:443");
    assert_string_equal(m.http[1], "*.example.org:*");
    assert_true(m.files);
    assert_false(m.db);
    assert_int_equal(m.n_abilities, 2);
    assert_int_equal(m.abilities[0].kind, PD_ABILITY_TASK);
    assert_string_equal(m.abilities[0].name, "nightly");
    assert_string_equal(m.abilities[0].spec, "0 3 * * 1-5");
    assert_int_equal(m.abilities[0].port, 0);
    assert_null(m.abilities[0].health_path);
    assert_int_equal(m.abilities[1].kind, PD_ABILITY_SERVICE);
    assert_string_equal(m.abilities[1].name, "web_ui");
    assert_int_equal(m.abilities[1].port, 8080);
    assert_string_equal(m.abilities[1].health_path, "/healthz");
    assert_string_equal(m.description, "Says hello.");
    assert_string_equal(m.config_schema, "{\"type\":\"object\"}");
    assert_string_equal(m.default_config, "{\"greeting\":\"hi\",\"n\":[1,2]}");

    /* The HTTP permission check follows the patterns. */
    assert_true(pd_manifest_http_allowed(&m, "api.example.com", 443));
    assert_true(pd_manifest_http_allowed(&m, "API.Example.COM", 443));
    assert_false(pd_manifest_http_allowed(&m, "api.example.com", 80));
    assert_false(pd_manifest_http_allowed(&m, "example.com", 443));
    assert_false(pd_manifest_http_allowed(&m, "xapi.example.com", 443));
    assert_true(pd_manifest_http_allowed(&m, "a.example.org", 1));
    assert_true(pd_manifest_http_allowed(&m, "a.b.example.org", 65535));
    assert_false(pd_manifest_http_allowed(&m, "example.org", 80));
    assert_false(pd_manifest_http_allowed(&m, "badexample.org", 80));
    assert_false(pd_manifest_http_allowed(&m, "a.example.org", 0));
    assert_false(pd_manifest_http_allowed(&m, "a.example.org.evil.com", 80));
    assert_false(pd_manifest_http_allowed(&m, "", 80));
    assert_false(pd_manifest_http_allowed(NULL, "a.example.org", 80));
    pd_manifest_free(&m);
}

static void load_expect(fx_t *fx, int rc_want, const char *expect)
{
    pd_manifest_t m;
    char why[512] = "";
    int rc = pd_manifest_load(fx->pkg, &m, why, sizeof why);
    if (rc != rc_want || strncmp(why, expect, strlen(expect)) != 0)
        fail_msg("rc %d why \"%s\", want %d \"%s\"", rc, why, rc_want, expect);
    assert_null(m.id);
}

static void test_manifest_file_level(void **state)
{
    fx_t *fx = *state;
    write_text(fx->pkg, PD_MANIFEST_FILE, "[1, 2]");
    load_expect(fx, -EINVAL, "manifest.json: must be a JSON object");
    write_text(fx->pkg, PD_MANIFEST_FILE, "\"hello\"");
    load_expect(fx, -EINVAL, "manifest.json: must be a JSON object");
    write_text(fx->pkg, PD_MANIFEST_FILE, "{\n  \"id\": \"hello\",\n  \"version\" 1\n}");
    load_expect(fx, -EINVAL, "manifest.json: line 3 column");
    write_text(fx->pkg, PD_MANIFEST_FILE, "");
    load_expect(fx, -EINVAL, "manifest.json: line");
    /* Duplicate keys would let two readers see different manifests. */
    write_text(fx->pkg, PD_MANIFEST_FILE,
               "{\"id\":\"hello\",\"id\":\"other\",\"version\":\"1.0.0\",\"language\":\"c\","
               "\"runtime_version\":\"1\",\"entry\":\"libhello.so\"}");
    load_expect(fx, -EINVAL, "manifest.json: line 1");

    /* Unknown top-level key, named. */
    json_t *m = base_manifest();
    json_object_set_new(m, "entrypoint", json_string("x"));
    write_manifest(fx->pkg, m);
    json_decref(m);
    load_expect(fx, -EINVAL, "manifest.json: entrypoint: unknown key");

    /* Over 64 KiB, even if valid JSON. */
    m = base_manifest();
    char *pad = repeat('x', PD_MANIFEST_MAX_BYTES);
    json_object_set_new(m, "description", json_string(pad));
    free(pad);
    write_manifest(fx->pkg, m);
    json_decref(m);
    load_expect(fx, -EFBIG, "manifest.json: larger than 65536 bytes");

    /* Missing manifest, symlinked manifest, manifest that is a directory. */
    char path[PATH_MAX];
    PATHF(path, "%s/" PD_MANIFEST_FILE, fx->pkg);
    assert_int_equal(unlink(path), 0);
    load_expect(fx, -ENOENT, "manifest.json: not found");
    write_text(fx->root, "elsewhere.json", "{}");
    symlink_in(fx->pkg, PD_MANIFEST_FILE, "../elsewhere.json");
    load_expect(fx, -EINVAL, "manifest.json: must not be a symbolic link");
    assert_int_equal(unlink(path), 0);
    mkdir_in(fx->pkg, PD_MANIFEST_FILE);
    load_expect(fx, -EINVAL, "manifest.json: not a regular file");

    /* Bad arguments. */
    pd_manifest_t man;
    char why[64];
    assert_int_equal(pd_manifest_load(NULL, &man, why, sizeof why), -EINVAL);
    assert_int_equal(pd_manifest_load(fx->pkg, NULL, why, sizeof why), -EINVAL);
}

static void test_manifest_required(void **state)
{
    fx_t *fx = *state;
    const char *req[] = {"id", "version", "language", "runtime_version", "entry"};
    for (size_t i = 0; i < sizeof req / sizeof *req; i++) {
        char expect[96];
        PATHF(expect, "manifest.json: %s: required", req[i]);
        check(fx, req[i], NULL, expect);
    }
    /* Optional keys may be left out. */
    const char *opt[] = {"host_mode",   "permissions",   "abilities",
                         "description", "config_schema", "default_config"};
    for (size_t i = 0; i < sizeof opt / sizeof *opt; i++)
        check(fx, opt[i], NULL, NULL);
}

/* ---- manifest: field by field ---------------------------------------- */

static void test_field_id(void **state)
{
    fx_t *fx = *state;
    char *id64 = repeat('a', 64), *id65 = repeat('a', 65);
    const char *good[] = {"a", "0", "hello", "a.b_c-d", "9lives", "a..", id64};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        good_str(fx, "id", good[i]);
    const char *bad[] = {"",    "Hello", "-a",   ".a",       "_a", "a/b",
                         "a b", "..",    "a\\b", "\xc3\xa9", id65};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        bad_str(fx, "id", bad[i]);
    check(fx, "id", json_integer(5), "manifest.json: id: must be a string");
    check(fx, "id", json_null(), "manifest.json: id: must be a string");
    free(id64);
    free(id65);
}

static void test_field_version(void **state)
{
    fx_t *fx = *state;
    const char *good[] = {"0.0.1", "1.2.3-alpha.1", "1.0.0+build.5", "1.0.0-rc.1+b"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        good_str(fx, "version", good[i]);
    const char *bad[] = {"", "1", "1.0", "v1.0.0", "01.0.0", "1.0.0-01", "1.0.0-", "latest"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        check(fx, "version", json_string(bad[i]),
              "manifest.json: version: not a semantic version (MAJOR.MINOR.PATCH)");
    char *lng = repeat('1', PD_PKG_VERSION_MAX + 1);
    memcpy(lng, "1.0.", 4);
    check(fx, "version", json_string(lng), "manifest.json: version: longer than 128");
    free(lng);
    check(fx, "version", json_real(1.0), "manifest.json: version: must be a string");
}

static void test_field_language(void **state)
{
    fx_t *fx = *state;
    char *l32 = repeat('a', 32), *l33 = repeat('a', 33);
    const char *good[] = {"c", "python", "node_js", "c11", l32};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        good_str(fx, "language", good[i]);
    const char *bad[] = {"", "C", "c++", "py-3", "c ", "c.1", l33};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        bad_str(fx, "language", bad[i]);
    check(fx, "language", json_true(), "manifest.json: language: must be a string");
    free(l32);
    free(l33);
}

static void test_field_runtime_version(void **state)
{
    fx_t *fx = *state;
    char *v32 = repeat('9', 32), *v33 = repeat('9', 33);
    const char *good[] = {"1", "3.11", "1.0_rc-B", "V8", v32};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        good_str(fx, "runtime_version", good[i]);
    const char *bad[] = {"", "3 11", "3/11", "1+2", "1:2", v33};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        bad_str(fx, "runtime_version", bad[i]);
    check(fx, "runtime_version", json_integer(3),
          "manifest.json: runtime_version: must be a string");
    free(v32);
    free(v33);
}

static void test_field_entry(void **state)
{
    fx_t *fx = *state;
    mkdir_in(fx->pkg, "lib");
    write_file(fx->pkg, "lib/real.so", "x", 1, 0644);
    symlink_in(fx->pkg, "lib/inside.so", "real.so"); /* stays inside: fine */
    write_text(fx->root, "outside.so", "x");
    symlink_in(fx->pkg, "escape.so", "../outside.so"); /* leaves the package */
    symlink_in(fx->pkg, "abs.so", "/etc/hostname");
    symlink_in(fx->pkg, "dirlink", "..");

    good_str(fx, "entry", "libhello.so");
    good_str(fx, "entry", "lib/real.so");
    good_str(fx, "entry", "lib/inside.so");

    check(fx, "entry", json_string("/etc/passwd"),
          "manifest.json: entry: must be a relative path inside the package, not absolute");
    check(fx, "entry", json_string("../outside.so"),
          "manifest.json: entry: must not contain \"..\"");
    check(fx, "entry", json_string("lib/../libhello.so"),
          "manifest.json: entry: must not contain \"..\"");
    check(fx, "entry", json_string(".."), "manifest.json: entry: must not contain \"..\"");
    check(fx, "entry", json_string("lib//real.so"), "manifest.json: entry: empty path segment");
    check(fx, "entry", json_string("lib/"), "manifest.json: entry: empty path segment");
    check(fx, "entry", json_string("./libhello.so"),
          "manifest.json: entry: must not contain \".\" segments");
    check(fx, "entry", json_string("lib\\real.so"),
          "manifest.json: entry: must not contain a backslash");
    check(fx, "entry", json_string("lib\nx"),
          "manifest.json: entry: must not contain control characters");
    check(fx, "entry", json_string(""), "manifest.json: entry: must not be empty");
    check(fx, "entry", json_string("missing.so"),
          "manifest.json: entry: no such file in the package");
    check(fx, "entry", json_string("libhello.so/x"),
          "manifest.json: entry: no such file in the package");
    check(fx, "entry", json_string("lib"), "manifest.json: entry: not a regular file");
    check(fx, "entry", json_string("escape.so"),
          "manifest.json: entry: resolves outside the package (symbolic link)");
    check(fx, "entry", json_string("abs.so"),
          "manifest.json: entry: resolves outside the package (symbolic link)");
    check(fx, "entry", json_string("dirlink/outside.so"),
          "manifest.json: entry: resolves outside the package (symbolic link)");
    char *e256 = repeat('e', 256);
    check(fx, "entry", json_string(e256), "manifest.json: entry: longer than 255");
    free(e256);
    check(fx, "entry", json_integer(1), "manifest.json: entry: must be a string");
}

static void test_field_host_mode(void **state)
{
    fx_t *fx = *state;
    const char *names[] = {"highPerformance", "powerSave", "dev"};
    const pd_mode_t modes[] = {PD_MODE_HIGH_PERFORMANCE, PD_MODE_POWER_SAVE, PD_MODE_DEV};
    for (size_t i = 0; i < 3; i++) {
        json_t *m = base_manifest();
        json_object_set_new(m, "host_mode", json_string(names[i]));
        write_manifest(fx->pkg, m);
        json_decref(m);
        pd_manifest_t man;
        assert_int_equal(pd_manifest_load(fx->pkg, &man, NULL, 0), 0);
        assert_int_equal(man.host_mode, modes[i]);
        pd_manifest_free(&man);
    }
    const char *bad[] = {"", "HighPerformance", "powersave", "turbo", "dev "};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        check(fx, "host_mode", json_string(bad[i]),
              "manifest.json: host_mode: must be one of \"highPerformance\", \"powerSave\", "
              "\"dev\"");
    check(fx, "host_mode", json_integer(0), "manifest.json: host_mode: must be one of");
}

static void test_field_permissions(void **state)
{
    fx_t *fx = *state;
    check(fx, "permissions", json_object(), NULL);
    check(fx, "permissions", json_pack("{s:b, s:b}", "files", 1, "db", 1), NULL);
    check(fx, "permissions", json_pack("{s:[]}", "http"), NULL);
    const char *good[] = {"api.example.com:443", "*.example.com:*",   "127.0.0.1:8080",
                          "localhost:1",         "x-y.example:65535", "*.io:80"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        check(fx, "permissions", json_pack("{s:[s]}", "http", good[i]), NULL);
    const char *bad[] = {"example.com",
                         "example.com:",
                         "example.com:0",
                         "example.com:65536",
                         "example.com:080",
                         "*:80",
                         "*.:80",
                         "a.*.com:80",
                         "*example.com:80",
                         "exa mple.com:80",
                         "-a.com:80",
                         "a-.com:80",
                         "a..com:80",
                         ":80",
                         "http://example.com:80",
                         "example.com:80/x",
                         "[::1]:80",
                         "a.com:-1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        check(fx, "permissions", json_pack("{s:[s, s]}", "http", "ok.com:1", bad[i]),
              "manifest.json: permissions.http[1]: not a \"host:port\" pattern");
    check(fx, "permissions", json_pack("{s:[i]}", "http", 80),
          "manifest.json: permissions.http[0]: not a \"host:port\" pattern");
    check(fx, "permissions", json_pack("{s:s}", "http", "example.com:80"),
          "manifest.json: permissions.http: must be an array");
    json_t *many = json_array();
    for (int i = 0; i < 65; i++)
        json_array_append_new(many, json_string("a.com:1"));
    check(fx, "permissions", json_pack("{s:o}", "http", many),
          "manifest.json: permissions.http: more than 64 patterns");
    check(fx, "permissions", json_pack("{s:s}", "files", "yes"),
          "manifest.json: permissions.files: must be true or false");
    check(fx, "permissions", json_pack("{s:i}", "db", 1),
          "manifest.json: permissions.db: must be true or false");
    check(fx, "permissions", json_pack("{s:b}", "net", 1),
          "manifest.json: permissions.net: unknown key");
    check(fx, "permissions", json_pack("[]"), "manifest.json: permissions: must be an object");
}

static json_t *ability(const char *kind, const char *name, const char *spec)
{
    return json_pack("[{s:s, s:s, s:s}]", "kind", kind, "name", name, "spec", spec);
}

static void test_field_abilities(void **state)
{
    fx_t *fx = *state;
    check(fx, "abilities", json_array(), NULL);
    const char *crons[] = {"* * * * *", "*/5 0-6 1,15 * 1-5", "0 3 * * 0", "  1  2\t3 4 5 "};
    for (size_t i = 0; i < sizeof crons / sizeof *crons; i++)
        check(fx, "abilities", ability("task", "t", crons[i]), NULL);
    const char *bad_crons[] = {"",          "* * * *",    "* * * * * *", "@daily", "0 3 * * MON",
                               "0 3 ? * *", "0 3 * * 1;", "*/5 * * * x"};
    for (size_t i = 0; i < sizeof bad_crons / sizeof *bad_crons; i++)
        check(fx, "abilities", ability("task", "t", bad_crons[i]),
              "manifest.json: abilities[0].spec: not a 5-field cron expression");
    const char *svcs[] = {"8080/healthz", "1/", "65535/a/b?c=1"};
    for (size_t i = 0; i < sizeof svcs / sizeof *svcs; i++)
        check(fx, "abilities", ability("service", "web", svcs[i]), NULL);
    const char *bad_svcs[] = {"",      "8080",  "/healthz",   "0/h",      "65536/h", "08080/h",
                              "abc/h", "80 /h", "80/he alth", "80/h\x01", "-1/h"};
    for (size_t i = 0; i < sizeof bad_svcs / sizeof *bad_svcs; i++)
        check(fx, "abilities", ability("service", "web", bad_svcs[i]),
              "manifest.json: abilities[0].spec: not \"<port>/<health path>\"");
    char *longspec = repeat('/', 257);
    longspec[0] = '1';
    check(fx, "abilities", ability("service", "web", longspec),
          "manifest.json: abilities[0].spec: longer than 256");
    free(longspec);

    char *n64 = repeat('n', 64), *n65 = repeat('n', 65);
    check(fx, "abilities", ability("task", n64, "* * * * *"), NULL);
    const char *bad_names[] = {"", "Web", "a b", "a.b", n65};
    for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++)
        check(fx, "abilities", ability("task", bad_names[i], "* * * * *"),
              "manifest.json: abilities[0].name: not a valid name");
    free(n64);
    free(n65);

    check(fx, "abilities", ability("cron", "t", "* * * * *"),
          "manifest.json: abilities[0].kind: must be \"task\" or \"service\"");
    check(fx, "abilities", json_pack("[{s:i, s:s, s:s}]", "kind", 1, "name", "t", "spec", "x"),
          "manifest.json: abilities[0].kind: must be \"task\" or \"service\"");
    check(fx, "abilities", json_pack("[{s:s, s:s, s:i}]", "kind", "task", "name", "t", "spec", 5),
          "manifest.json: abilities[0].spec: must be a string");
    check(fx, "abilities", json_pack("[{s:s, s:s}]", "kind", "task", "name", "t"),
          "manifest.json: abilities[0].spec: required");
    check(fx, "abilities", json_pack("[{s:s, s:s}]", "kind", "task", "spec", "* * * * *"),
          "manifest.json: abilities[0].name: required");
    check(fx, "abilities", json_pack("[{s:s, s:s}]", "name", "t", "spec", "* * * * *"),
          "manifest.json: abilities[0].kind: required");
    check(fx, "abilities",
          json_pack("[{s:s, s:s, s:s, s:i}]", "kind", "task", "name", "t", "spec", "* * * * *",
                    "every", 5),
          "manifest.json: abilities[0].every: unknown key");
    check(fx, "abilities",
          json_pack("[{s:s, s:s, s:s}, s]", "kind", "task", "name", "t", "spec", "* * * * *", "x"),
          "manifest.json: abilities[1]: must be an object");
    check(fx, "abilities",
          json_pack("[{s:s, s:s, s:s}, {s:s, s:s, s:s}]", "kind", "task", "name", "t", "spec",
                    "* * * * *", "kind", "service", "name", "t", "spec", "80/h"),
          "manifest.json: abilities[1].name: duplicate of abilities[0].name");
    check(fx, "abilities", json_object(), "manifest.json: abilities: must be an array");
    json_t *many = json_array();
    for (int i = 0; i < 65; i++) {
        char name[16];
        PATHF(name, "t%d", i);
        json_array_append_new(
            many, json_pack("{s:s, s:s, s:s}", "kind", "task", "name", name, "spec", "* * * * *"));
    }
    check(fx, "abilities", many, "manifest.json: abilities: more than 64");
}

static void test_field_description_and_config(void **state)
{
    fx_t *fx = *state;
    char *d1024 = repeat('d', 1024), *d1025 = repeat('d', 1025);
    good_str(fx, "description", "");
    good_str(fx, "description", d1024);
    good_str(fx, "description", "h\xc3\xa9llo, wörld");
    bad_str(fx, "description", d1025);
    check(fx, "description", json_pack("[]"), "manifest.json: description: must be a string");
    free(d1024);
    free(d1025);

    check(fx, "config_schema", json_pack("{s:s}", "type", "object"), NULL);
    check(fx, "config_schema", json_pack("[]"), "manifest.json: config_schema: must be an object");
    check(fx, "config_schema", json_string("{}"),
          "manifest.json: config_schema: must be an object");
    check(fx, "default_config", json_pack("{s:{s:i}}", "a", "b", 1), NULL);
    check(fx, "default_config", json_integer(1),
          "manifest.json: default_config: must be an object");
    check(fx, "default_config", json_null(), "manifest.json: default_config: must be an object");
}

/* ---- store ----------------------------------------------------------- */

static size_t count_tmp(const char *store)
{
    char cmd[PATH_MAX + 64];
    PATHF(cmd, "ls -A '%s' 2>/dev/null | grep -c '^\\.tmp-'", store);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    unsigned n = 99;
    assert_int_equal(fscanf(p, "%u", &n), 1);
    pclose(p);
    return n;
}

static void read_all(const char *path, char **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    rewind(f);
    *data = malloc((size_t)n + 1);
    assert_int_equal(fread(*data, 1, (size_t)n, f), (size_t)n);
    (*data)[n] = '\0';
    *len = (size_t)n;
    fclose(f);
}

static mode_t mode_of(const char *dir, const char *rel)
{
    char path[PATH_MAX];
    PATHF(path, "%s/%s", dir, rel);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    return st.st_mode;
}

static int reg(fx_t *fx, char *why, size_t size)
{
    return pd_package_register(fx->store, fx->pkg, NULL, why, size);
}

static void expect_reg(fx_t *fx, int want, const char *expect)
{
    char why[512] = "";
    int rc = reg(fx, why, sizeof why);
    if (rc != want || strstr(why, expect) == NULL)
        fail_msg("register: rc %d why \"%s\", want %d \"%s\"", rc, why, want, expect);
    assert_int_equal(count_tmp(fx->store), 0); /* never a temp dir left behind */
}

/* The digest format of docs/packages.md, rebuilt here independently. */
static void ser_add(char **buf, size_t *len, const void *p, size_t n)
{
    *buf = realloc(*buf, *len + n);
    assert_non_null(*buf);
    memcpy(*buf + *len, p, n);
    *len += n;
}

static void ser_file(char **buf, size_t *len, const char *rel, const char *mode, const char *data,
                     size_t n)
{
    ser_add(buf, len, "f", 1);
    ser_add(buf, len, rel, strlen(rel) + 1);
    ser_add(buf, len, mode, 4);
    uint8_t be[8];
    for (int i = 0; i < 8; i++)
        be[i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
    ser_add(buf, len, be, 8);
    ser_add(buf, len, data, n);
}

static void test_register_copies(void **state)
{
    fx_t *fx = *state;
    mkdir_in(fx->pkg, "lib");
    mkdir_in(fx->pkg, "lib/empty");
    size_t big_n = 200001; /* crosses the copy buffer several times */
    char *big = malloc(big_n);
    for (size_t i = 0; i < big_n; i++)
        big[i] = (char)(i * 7 + 3);
    write_file(fx->pkg, "lib/data.bin", big, big_n, 0600);
    write_file(fx->pkg, "lib/tool", "#!/bin/sh\n", 10, 0700); /* any x bit -> 0755 */
    write_file(fx->pkg, ".hidden", "h", 1, 0640);

    pd_manifest_t m;
    char why[256] = "";
    assert_int_equal(pd_package_register(fx->store, fx->pkg, &m, why, sizeof why), 0);
    assert_string_equal(why, "registered");
    assert_string_equal(m.id, "hello");
    assert_string_equal(m.version, "1.0.0");
    pd_manifest_free(&m);
    assert_int_equal(count_tmp(fx->store), 0);

    char *dir = pd_package_path(fx->store, "hello", "1.0.0");
    assert_non_null(dir);
    char want[PATH_MAX];
    PATHF(want, "%s/hello/1.0.0", fx->store);
    assert_string_equal(dir, want);

    /* Content and normalized modes. */
    assert_int_equal(mode_of(dir, "libhello.so") & 07777, 0755);
    assert_int_equal(mode_of(dir, "lib/tool") & 07777, 0755);
    assert_int_equal(mode_of(dir, "lib/data.bin") & 07777, 0644);
    assert_int_equal(mode_of(dir, ".hidden") & 07777, 0644);
    assert_int_equal(mode_of(dir, PD_MANIFEST_FILE) & 07777, 0644);
    assert_true(S_ISDIR(mode_of(dir, "lib/empty")));
    assert_int_equal(mode_of(dir, "lib/empty") & 07777, 0755);
    assert_int_equal(mode_of(dir, "lib") & 07777, 0755);
    assert_int_equal(mode_of(dir, ".") & 07777, 0755);
    char path[PATH_MAX];
    char *got;
    size_t got_n;
    PATHF(path, "%s/lib/data.bin", dir);
    read_all(path, &got, &got_n);
    assert_int_equal(got_n, big_n);
    assert_memory_equal(got, big, big_n);
    free(got);

    /* The stored digest is SHA-256 over the documented serialization. */
    char *mtext;
    size_t mtext_n;
    PATHF(path, "%s/" PD_MANIFEST_FILE, fx->pkg);
    read_all(path, &mtext, &mtext_n);
    char *ser = NULL;
    size_t ser_n = 0;
    /* bytewise order: ".hidden" < "lib" < "libhello.so" < "manifest.json";
     * inside lib: "data.bin" < "empty" < "tool" */
    ser_file(&ser, &ser_n, ".hidden", "644", "h", 1);
    ser_add(&ser, &ser_n, "dlib", 5);
    ser_file(&ser, &ser_n, "lib/data.bin", "644", big, big_n);
    ser_add(&ser, &ser_n, "dlib/empty", 11);
    ser_file(&ser, &ser_n, "lib/tool", "755", "#!/bin/sh\n", 10);
    ser_file(&ser, &ser_n, "libhello.so", "755",
             "\x7f"
             "ELF fake",
             9);
    ser_file(&ser, &ser_n, PD_MANIFEST_FILE, "644", mtext, mtext_n);
    char hex[PD_SHA256_HEX_LEN + 1];
    pd_sha256_hex(ser, ser_n, hex);
    free(ser);
    free(mtext);
    free(big);
    PATHF(path, "%s/" PD_PKG_DIGEST_FILE, dir);
    read_all(path, &got, &got_n);
    assert_int_equal(got_n, 65);
    assert_memory_equal(got, hex, 64);
    assert_int_equal(got[64], '\n');
    free(got);
    free(dir);

    /* Unknown packages and bad names. */
    errno = 0;
    assert_null(pd_package_path(fx->store, "hello", "1.0.1"));
    assert_int_equal(errno, ENOENT);
    assert_null(pd_package_path(fx->store, "nope", "1.0.0"));
    assert_int_equal(errno, ENOENT);
    assert_null(pd_package_path(fx->store, "../hello", "1.0.0"));
    assert_int_equal(errno, EINVAL);
    assert_null(pd_package_path(fx->store, "hello", "../1.0.0"));
    assert_int_equal(errno, EINVAL);
    assert_null(pd_package_path(fx->store, NULL, "1.0.0"));
    assert_int_equal(errno, EINVAL);
}

static void test_register_immutable(void **state)
{
    fx_t *fx = *state;
    expect_reg(fx, 0, "registered");
    char *dir = pd_package_path(fx->store, "hello", "1.0.0");
    assert_non_null(dir);
    char digest_path[PATH_MAX], *d1, *d2;
    size_t n1, n2;
    PATHF(digest_path, "%s/" PD_PKG_DIGEST_FILE, dir);
    read_all(digest_path, &d1, &n1);

    /* Same content again: idempotent. */
    expect_reg(fx, 0, "already registered");

    /* Changed content, same version: refused, stored copy untouched. */
    write_file(fx->pkg, "libhello.so", "changed", 7, 0755);
    expect_reg(fx, -EEXIST,
               "hello 1.0.0: id version already registered with different content; bump the "
               "version");
    char p[PATH_MAX], *data;
    size_t n;
    PATHF(p, "%s/libhello.so", dir);
    read_all(p, &data, &n);
    assert_int_equal(n, 9);
    assert_memory_equal(data,
                        "\x7f"
                        "ELF fake",
                        9);
    free(data);

    /* A mode change alone is a different content too. */
    write_file(fx->pkg, "libhello.so",
               "\x7f"
               "ELF fake",
               9, 0644);
    expect_reg(fx, -EEXIST, "already registered with different content");
    /* An extra empty directory also. */
    write_file(fx->pkg, "libhello.so",
               "\x7f"
               "ELF fake",
               9, 0755);
    mkdir_in(fx->pkg, "extra");
    expect_reg(fx, -EEXIST, "already registered with different content");
    assert_int_equal(rmdir(strcat(strcpy(p, fx->pkg), "/extra")), 0);
    expect_reg(fx, 0, "already registered");

    read_all(digest_path, &d2, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(d1, d2, n1);
    free(d1);
    free(d2);

    /* Bumping the version registers a second, independent copy. */
    json_t *m = base_manifest();
    json_object_set_new(m, "version", json_string("1.0.1"));
    write_manifest(fx->pkg, m);
    json_decref(m);
    expect_reg(fx, 0, "registered");
    char *dir2 = pd_package_path(fx->store, "hello", "1.0.1");
    assert_non_null(dir2);
    free(dir2);

    /* A stored version without its digest is not trusted. */
    assert_int_equal(unlink(digest_path), 0);
    m = base_manifest();
    write_manifest(fx->pkg, m);
    json_decref(m);
    expect_reg(fx, -EEXIST, "stored copy has no valid .digest");
    assert_null(pd_package_path(fx->store, "hello", "1.0.0"));
    free(dir);
}

static void test_register_refusals_clean_up(void **state)
{
    fx_t *fx = *state;
    char p[PATH_MAX];

    /* Bad manifest: refused before anything is copied, field named. */
    json_t *m = base_manifest();
    json_object_set_new(m, "host_mode", json_string("turbo"));
    write_manifest(fx->pkg, m);
    json_decref(m);
    expect_reg(fx, -EINVAL, "manifest.json: host_mode: must be one of");
    m = base_manifest();
    write_manifest(fx->pkg, m);
    json_decref(m);

    /* Any symlink, even one staying inside. */
    symlink_in(fx->pkg, "alias.so", "libhello.so");
    expect_reg(fx, -EINVAL, "package: alias.so: symbolic links are not allowed");
    PATHF(p, "%s/alias.so", fx->pkg);
    assert_int_equal(unlink(p), 0);
    mkdir_in(fx->pkg, "sub");
    symlink_in(fx->pkg, "sub/up", "..");
    expect_reg(fx, -EINVAL, "package: sub/up: symbolic links are not allowed");
    PATHF(p, "%s/sub/up", fx->pkg);
    assert_int_equal(unlink(p), 0);

    /* A fifo (and would hang a naive copy). */
    PATHF(p, "%s/sub/pipe", fx->pkg);
    assert_int_equal(mkfifo(p, 0644), 0);
    expect_reg(fx, -EINVAL, "package: sub/pipe: not a regular file or directory");
    assert_int_equal(unlink(p), 0);

    /* The reserved digest name at the top (fine deeper down). */
    write_text(fx->pkg, "sub/.digest", "x");
    write_text(fx->pkg, ".digest", "x");
    expect_reg(fx, -EINVAL, "package: .digest: reserved name");
    PATHF(p, "%s/.digest", fx->pkg);
    assert_int_equal(unlink(p), 0);

    /* A store inside the package would copy itself. */
    char inner[PATH_MAX];
    PATHF(inner, "%s/store", fx->pkg);
    char why[256] = "";
    assert_int_equal(pd_package_register(inner, fx->pkg, NULL, why, sizeof why), -EINVAL);
    assert_string_equal(why, "the store directory is inside the package directory");
    assert_int_equal(pd_package_register(fx->pkg, fx->pkg, NULL, why, sizeof why), -EINVAL);
    struct stat st;
    assert_int_equal(stat(inner, &st), -1); /* not created inside the package */

    /* Not a directory / missing package. */
    PATHF(p, "%s/nothing", fx->root);
    assert_int_equal(pd_package_register(fx->store, p, NULL, why, sizeof why), -ENOENT);
    assert_int_equal(pd_package_register(NULL, fx->pkg, NULL, why, sizeof why), -EINVAL);

    /* Nothing was stored by any of the refusals; then it registers. */
    assert_null(pd_package_path(fx->store, "hello", "1.0.0"));
    expect_reg(fx, 0, "registered");
}

static void test_register_limits(void **state)
{
    fx_t *fx = *state;
    char p[PATH_MAX];

    /* Too many entries: 1000 with the manifest and entry is fine, 1001 not. */
    mkdir_in(fx->pkg, "many");
    for (int i = 0; i < 997; i++) {
        char rel[32];
        PATHF(rel, "many/f%04d", i);
        write_file(fx->pkg, rel, "", 0, 0644);
    }
    expect_reg(fx, 0, "registered");
    json_t *m = base_manifest();
    json_object_set_new(m, "version", json_string("1.0.1"));
    write_manifest(fx->pkg, m);
    json_decref(m);
    write_file(fx->pkg, "many/f9999", "", 0, 0644);
    expect_reg(fx, -E2BIG, "package: more than 1000 files and directories");
    PATHF(p, "%s/many", fx->pkg);
    char cmd[PATH_MAX + 16];
    PATHF(cmd, "rm -rf '%s'", p);
    assert_int_equal(system(cmd), 0);

    /* Too large: a sparse file just over the limit (refused before reading). */
    PATHF(p, "%s/huge.bin", fx->pkg);
    int fd = open(p, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)PD_PKG_MAX_BYTES), 0);
    close(fd);
    expect_reg(fx, -EFBIG, "package: larger than 256 MiB");
    assert_int_equal(unlink(p), 0);

    /* Too deep. */
    char rel[PATH_MAX] = "d";
    mkdir_in(fx->pkg, rel);
    for (int i = 1; i <= PD_PKG_MAX_DEPTH; i++) {
        strcat(rel, "/d");
        mkdir_in(fx->pkg, rel);
    }
    expect_reg(fx, -E2BIG, "directories nested deeper than 32");
    PATHF(p, "%s/%s", fx->pkg, rel);
    assert_int_equal(rmdir(p), 0); /* 32 levels exactly are fine */
    expect_reg(fx, 0, "registered");
}

typedef struct {
    char seen[16][96];
    int n;
    int stop_at;
} list_t;

static int list_cb(const char *id, const char *version, const char *digest, void *user)
{
    list_t *l = user;
    assert_int_equal(strlen(digest), PD_SHA256_HEX_LEN);
    if (l->n < 16)
        snprintf(l->seen[l->n], sizeof l->seen[0], "%s %s", id, version);
    l->n++;
    return l->n == l->stop_at ? 7 : 0;
}

static void register_as(fx_t *fx, const char *id, const char *version)
{
    json_t *m = base_manifest();
    json_object_set_new(m, "id", json_string(id));
    json_object_set_new(m, "version", json_string(version));
    write_manifest(fx->pkg, m);
    json_decref(m);
    char why[256];
    if (pd_package_register(fx->store, fx->pkg, NULL, why, sizeof why) != 0)
        fail_msg("%s %s: %s", id, version, why);
}

static void test_list_and_clean(void **state)
{
    fx_t *fx = *state;
    list_t l = {.stop_at = -1};
    assert_int_equal(pd_package_list(fx->store, list_cb, &l), 0); /* no store yet */
    assert_int_equal(l.n, 0);
    assert_int_equal(pd_package_store_clean(fx->store), 0);

    register_as(fx, "zeta", "1.0.0");
    register_as(fx, "alpha", "1.10.0");
    register_as(fx, "alpha", "1.2.0");
    register_as(fx, "alpha", "1.0.0");
    register_as(fx, "alpha", "1.0.0-beta");
    register_as(fx, "alpha", "1.0.0-alpha.1");

    /* Leftovers that are not registrations: a temp dir, an incomplete
     * version, junk names. */
    char p[PATH_MAX];
    PATHF(p, "%s/.tmp-abc123", fx->store);
    assert_int_equal(mkdir(p, 0700), 0);
    PATHF(p, "%s/.tmp-abc123/x", fx->store);
    write_text(fx->store, ".tmp-abc123/x", "partial");
    PATHF(p, "%s/alpha/2.0.0", fx->store);
    assert_int_equal(mkdir(p, 0755), 0);
    PATHF(p, "%s/alpha/notaversion", fx->store);
    assert_int_equal(mkdir(p, 0755), 0);
    write_text(fx->store, "README", "x");

    assert_int_equal(pd_package_list(fx->store, list_cb, &l), 0);
    const char *want[] = {"alpha 1.0.0-alpha.1", "alpha 1.0.0-beta", "alpha 1.0.0",
                          "alpha 1.2.0",         "alpha 1.10.0",     "zeta 1.0.0"};
    assert_int_equal(l.n, 6);
    for (int i = 0; i < 6; i++)
        assert_string_equal(l.seen[i], want[i]);

    /* A non-zero callback value stops the walk and is returned. */
    list_t stop = {.stop_at = 2};
    assert_int_equal(pd_package_list(fx->store, list_cb, &stop), 7);
    assert_int_equal(stop.n, 2);
    assert_int_equal(pd_package_list(NULL, list_cb, &stop), -EINVAL);
    assert_int_equal(pd_package_list(fx->store, NULL, NULL), -EINVAL);

    /* Start-up cleaning removes the temp dir only. */
    assert_int_equal(count_tmp(fx->store), 1);
    assert_int_equal(pd_package_store_clean(fx->store), 1);
    assert_int_equal(count_tmp(fx->store), 0);
    assert_int_equal(pd_package_store_clean(fx->store), 0);
    l.n = 0;
    assert_int_equal(pd_package_list(fx->store, list_cb, &l), 0);
    assert_int_equal(l.n, 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_semver_valid),
        cmocka_unit_test(test_semver_compare),
        cmocka_unit_test_setup_teardown(test_manifest_minimal_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manifest_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manifest_file_level, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manifest_required, setup, teardown),
        cmocka_unit_test_setup_teardown(test_field_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_field_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_field_language, setup, teardown),
        cmocka_unit_test_setup_teardown(test_field_runtime_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_field_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_field_host_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_field_permissions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_field_abilities, setup, teardown),
        cmocka_unit_test_setup_teardown(test_field_description_and_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_copies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_immutable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_refusals_clean_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_and_clean, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
