#include "cli.h"

#include "kiln/store.h"

#include <ctype.h>
#include <string.h>
#include <time.h>

static const char cache_usage[] =
    "Usage: kiln cache ls [--json]\n"
    "       kiln cache prune [--keep-bytes SIZE] [--older-than AGE]\n"
    "       kiln cache verify\n"
    "\n"
    "kiln's cache ($KILN_CACHE, else $XDG_CACHE_HOME/kiln or ~/.cache/kiln) holds\n"
    "blobs, unpacked base images, the apt and pip caches (one per base image and\n"
    "package sources), and each build step's result under its key (an unchanged\n"
    "step is not run again). It is private to its owner (0700).\n"
    "\n"
    "  ls        the cached steps (key, kind, layer size, last use) and totals\n"
    "  prune     drop what was used least recently: --keep-bytes SIZE (e.g. 10G,\n"
    "            500M) keeps at most SIZE, --older-than AGE (e.g. 7d, 12h, 30m)\n"
    "            drops what was not used for AGE; waits for running builds\n"
    "  verify    hash every blob again; bad ones are reported and removed, with\n"
    "            the cached steps that used them (exit 6 when any was bad);\n"
    "            installer caches of the old shared layout are removed\n"
    "Options: --cache-dir DIR, --json (ls)\n";

static int bad_size(const char *s, struct kiln_err **err)
{
        return kiln_err_set(err, KILN_ERR_USAGE, 0,
                            "--keep-bytes %s: want a size such as 10G, 500M or 1048576", s);
}

/* "10G", "500M", "1.5GiB", "4096": bytes (powers of 1024). */
static int parse_size(const char *s, int64_t *out, struct kiln_err **err)
{
        char *end = NULL;
        double v = strtod(s, &end);
        if (end == s || v < 0)
                return bad_size(s, err);
        double mul = 1;
        switch (toupper((unsigned char)*end)) {
        case 'K':
                mul = 1024.0;
                break;
        case 'M':
                mul = 1024.0 * 1024;
                break;
        case 'G':
                mul = 1024.0 * 1024 * 1024;
                break;
        case 'T':
                mul = 1024.0 * 1024 * 1024 * 1024;
                break;
        case '\0':
                break;
        default:
                return bad_size(s, err);
        }
        if (*end) {
                end++;
                if (!strcasecmp(end, "ib") || !strcasecmp(end, "b"))
                        end += strlen(end);
        }
        if (*end)
                return bad_size(s, err);
        *out = (int64_t)(v * mul);
        return 0;
}

static int bad_age(const char *s, struct kiln_err **err)
{
        return kiln_err_set(err, KILN_ERR_USAGE, 0,
                            "--older-than %s: want an age such as 7d, 12h, 30m or 45s", s);
}

/* "7d", "12h", "30m", "45s", "3600": seconds. */
static int parse_age(const char *s, int64_t *out, struct kiln_err **err)
{
        char *end = NULL;
        long long v = strtoll(s, &end, 10);
        int64_t mul = 1;
        if (end == s || v < 0)
                return bad_age(s, err);
        if (*end == 'd')
                mul = 86400;
        else if (*end == 'h')
                mul = 3600;
        else if (*end == 'm')
                mul = 60;
        else if (*end != 's' && *end != '\0')
                return bad_age(s, err);
        if (*end && end[1])
                return bad_age(s, err);
        *out = (int64_t)v * mul;
        return 0;
}

static int step_cmp(const void *a, const void *b)
{
        const struct kiln_step_entry *x = a, *y = b;
        if (x->last_used != y->last_used)
                return x->last_used > y->last_used ? -1 : 1;
        return strcmp(x->key, y->key);
}

static int cache_ls(struct kiln_store *s, bool json, struct kiln_err **err)
{
        _cleanup_step_entries_ struct kiln_step_entries steps = {0};
        struct kiln_cache_usage u;
        if (kiln_store_step_list(s, &steps.v, &steps.n, err) < 0 ||
            kiln_store_usage(s, &u, err) < 0)
                return -1;
        size_t n = steps.n;
        if (n > 1)
                qsort(steps.v, n, sizeof(*steps.v), step_cmp);
        _cleanup_json_ json_t *arr = json ? json_array() : NULL;
        if (!json)
                printf("%-12s  %-10s  %10s  %-19s  %s\n", "KEY", "KIND", "LAYER", "LAST USED",
                       "CREATED BY");
        for (size_t i = 0; i < n; i++) {
                const struct kiln_step_entry *e = &steps.v[i];
                char when[32] = "";
                time_t t = (time_t)e->last_used;
                struct tm tm;
                strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
                if (json) {
                        json_t *o = json_pack("{s:s, s:s, s:s, s:I}", "key", e->key, "kind",
                                              e->kind, "createdBy", e->created_by, "lastUsed",
                                              (json_int_t)e->last_used);
                        if (e->has_layer) {
                                json_object_set_new(o, "layer", json_string(e->digest));
                                json_object_set_new(o, "size", json_integer(e->size));
                        }
                        json_array_append_new(arr, o);
                        continue;
                }
                char size[32] = "-";
                if (e->has_layer)
                        kiln_human_size((uint64_t)e->size, size, sizeof(size));
                printf("%.12s  %-10s  %10s  %-19s  %.60s\n", e->key, e->kind, size, when,
                       e->created_by);
        }
        char b[32], sn[32], in[32];
        kiln_human_size(u.blob_bytes, b, sizeof(b));
        kiln_human_size(u.snapshot_bytes, sn, sizeof(sn));
        kiln_human_size(u.installer_bytes, in, sizeof(in));
        if (json) {
                /* "o" takes arr's reference */
                _cleanup_json_ json_t *o =
                    json_pack("{s:o, s:{s:I, s:I}, s:{s:I, s:I}, s:I, s:{s:I, s:I}, s:{s:I, s:I}}",
                              "steps", steal_pointer(&arr), "blobs", "count", (json_int_t)u.n_blobs,
                              "bytes", (json_int_t)u.blob_bytes, "snapshots", "count",
                              (json_int_t)u.n_snapshots, "bytes", (json_int_t)u.snapshot_bytes,
                              "installerCacheBytes", (json_int_t)u.installer_bytes,
                              "installerCaches", "count", (json_int_t)u.n_installer, "bytes",
                              (json_int_t)u.installer_bytes, "unkeyedInstallerCaches", "count",
                              (json_int_t)u.n_unkeyed, "bytes", (json_int_t)u.unkeyed_bytes);
                cli_print_json(o);
        } else {
                printf("%zu steps; %llu blobs, %s; %llu base snapshots, %s; %llu apt and pip "
                       "caches (one per base and sources), %s (%s)\n",
                       n, (unsigned long long)u.n_blobs, b, (unsigned long long)u.n_snapshots, sn,
                       (unsigned long long)u.n_installer, in, kiln_store_root(s));
                if (u.n_unkeyed)
                        printf("%llu installer cache entries of the old shared layout, never used "
                               "again: kiln cache prune or verify removes them\n",
                               (unsigned long long)u.n_unkeyed);
        }
        return 0;
}

int cmd_cache(int argc, char **argv, struct kiln_err **err)
{
        enum { OPT_KEEP = OPT_COMMON_END, OPT_OLDER };
        static const struct option longopts[] = {
            {"keep-bytes", required_argument, NULL, OPT_KEEP},
            {"older-than", required_argument, NULL, OPT_OLDER},
            {"cache-dir", required_argument, NULL, OPT_CACHE_DIR},
            {"json", no_argument, NULL, OPT_JSON},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        struct kiln_prune_opts po = {.keep_bytes = -1, .older_than_s = -1};
        const char *cache_dir = NULL;
        bool json = false;
        int opt;
        optind = 1;
        while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
                switch (opt) {
                case OPT_KEEP:
                        if (parse_size(optarg, &po.keep_bytes, err) < 0)
                                return -1;
                        break;
                case OPT_OLDER:
                        if (parse_age(optarg, &po.older_than_s, err) < 0)
                                return -1;
                        break;
                case OPT_CACHE_DIR:
                        cache_dir = optarg;
                        break;
                case OPT_JSON:
                        json = true;
                        break;
                case 'h':
                        fputs(cache_usage, stdout);
                        return 0;
                default:
                        return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                            "cache: bad option (see kiln help cache)");
                }
        }
        if (optind != argc - 1)
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "cache: want one of ls, prune, verify (see kiln help cache)");
        const char *what = argv[optind];
        bool is_prune = !strcmp(what, "prune");
        if (!is_prune && (po.keep_bytes >= 0 || po.older_than_s >= 0))
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "cache %s: --keep-bytes and --older-than are prune's", what);
        if (is_prune && po.keep_bytes < 0 && po.older_than_s < 0)
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "cache prune: say what to keep: --keep-bytes SIZE and/or "
                                    "--older-than AGE");
        if (strcmp(what, "ls") && !is_prune && strcmp(what, "verify"))
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "cache: \"%s\" is not ls, prune or verify", what);
        _cleanup_store_ struct kiln_store *s = NULL;
        if (kiln_store_open(cache_dir, &s, err) < 0)
                return -1;
        if (!strcmp(what, "ls"))
                return cache_ls(s, json, err);
        if (is_prune) {
                struct kiln_prune_report r;
                if (kiln_store_prune(s, &po, &r, err) < 0)
                        return kiln_err_prefix(err, "cache prune");
                char rb[32], kb[32];
                kiln_human_size(r.removed_bytes, rb, sizeof(rb));
                kiln_human_size(r.kept_bytes, kb, sizeof(kb));
                printf("removed %s: %llu blobs, %llu directories, %llu cached steps; kept %s\n", rb,
                       (unsigned long long)r.removed_blobs, (unsigned long long)r.removed_dirs,
                       (unsigned long long)r.removed_steps, kb);
                return 0;
        }
        _cleanup_verify_report_ struct kiln_verify_report r = {0};
        if (kiln_store_verify(s, &r, err) < 0)
                return kiln_err_prefix(err, "cache verify");
        char bytes[32];
        kiln_human_size(r.bytes, bytes, sizeof(bytes));
        size_t n_bad = kiln_strv_len(r.bad);
        for (size_t i = 0; i < n_bad; i++)
                printf("bad: %s (its content does not hash to its name): removed\n", r.bad[i]);
        for (size_t i = 0; r.unkeyed && r.unkeyed[i]; i++)
                printf("unkeyed: %s (an installer cache every build shared): removed\n",
                       r.unkeyed[i]);
        printf("verified %llu blobs (%s): %zu bad; %llu cached steps dropped\n",
               (unsigned long long)r.blobs, bytes, n_bad, (unsigned long long)r.dropped_steps);
        if (n_bad)
                return kiln_err_set(err, KILN_ERR_DIGEST, 0,
                                    "cache verify: %zu blobs did not match their digest (removed; "
                                    "the steps that made them run again on the next build)",
                                    n_bad);
        return 0;
}
