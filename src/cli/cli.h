/* Shared by the subcommands: option parsing helpers for the options every
 * registry-facing command takes. */
#ifndef KILN_CLI_H
#define KILN_CLI_H

#include "kiln/output.h"
#include "kiln/registry.h"

#include <getopt.h>

struct cli_common {
        struct kiln_registry_opts reg;
        char **insecure; /* owned, NULL-terminated */
        size_t n_insecure;
        struct kiln_platform platform; /* os NULL: host */
        bool json;
        const char *cache_dir; /* --cache-dir, else $KILN_CACHE... */
};

/* Long options shared by pull and inspect; values >= 1000 identify them. */
enum {
        OPT_INSECURE = 1000,
        OPT_CERT_DIR,
        OPT_CREDS,
        OPT_PLATFORM,
        OPT_PARALLEL,
        OPT_CACHE_DIR,
        OPT_JSON,
        OPT_DEBUG,
        OPT_TIMEOUT,
        OPT_COMMON_END,
};
#define CLI_COMMON_LONGOPTS                                                                        \
        {"insecure-registry", required_argument, NULL, OPT_INSECURE},                              \
            {"cert-dir", required_argument, NULL, OPT_CERT_DIR},                                   \
            {"creds", required_argument, NULL, OPT_CREDS},                                         \
            {"platform", required_argument, NULL, OPT_PLATFORM},                                   \
            {"parallel", required_argument, NULL, OPT_PARALLEL},                                   \
            {"timeout", required_argument, NULL, OPT_TIMEOUT},                                     \
            {"cache-dir", required_argument, NULL, OPT_CACHE_DIR},                                 \
            {"json", no_argument, NULL, OPT_JSON}, {"debug", no_argument, NULL, OPT_DEBUG},        \
        {                                                                                          \
                "quiet", no_argument, NULL, 'q'                                                    \
        }

#define CLI_COMMON_HELP                                                                            \
        "  --platform OS/ARCH[/VARIANT]  platform to select from an index (default: this host)\n"  \
        "  --creds USER:PASSWORD     credentials (default: auth files and credential helpers)\n"   \
        "  --cert-dir DIR            CA certificates (*.crt) and client pair (*.cert, *.key)\n"    \
        "  --insecure-registry HOST  allow plain HTTP and unverified TLS for HOST (repeatable)\n"  \
        "  --parallel N              concurrent blob transfers (default 4)\n"                      \
        "  --timeout DURATION        give up on a pull or push after this long: 90s, 30m, 2h\n"    \
        "                            (default 1h; 0: never); a transfer slower than 4 KiB/s\n"     \
        "                            over 30s is retried\n"                                        \
        "  --cache-dir DIR           blob cache (default $KILN_CACHE, $XDG_CACHE_HOME/kiln)\n"     \
        "  --json                    machine-readable output on stdout\n"                          \
        "  -q, --quiet               no progress output\n"                                         \
        "  --debug                   log HTTP decisions (never credentials)\n"

/* Handles a shared option; returns 1 if opt was one, 0 if not, -1 on error. */
int cli_common_option(struct cli_common *c, int opt, const char *arg, struct kiln_err **err);
void cli_common_release(struct cli_common *c);
/* getopt_long (short options q and h) handling the common options itself:
 * the next other option (its value in optarg), -1 at the end, -2 when a
 * common option was bad (err set). */
int cli_getopt(int argc, char **argv, const struct option *longopts, struct cli_common *c,
               struct kiln_err **err);
#define _cleanup_cli_common_ _cleanup_(cli_common_release)
/* The entry of index idx for --platform (default this host). */
int cli_select_platform(const struct cli_common *c, const struct kiln_manifest *idx,
                        const struct kiln_descriptor **pick, struct kiln_err **err);
/* Opens a registry session for ref's domain with the common options. */
int cli_registry_open(const struct cli_common *c, const struct kiln_ref *ref,
                      struct kiln_registry **out, struct kiln_err **err);

/* ---------- spec fields as flags (spec_flags.c) ---------- */

#include "kiln/imagespec.h"

/* getopt returns OPT_SPEC_FIRST + field index * KILN_SPEC_FIELD_FLAGS +
 * the flag's index within its field for a spec flag (spec_flags.c). */
enum { OPT_SPEC_FIRST = 1100 };
/* --loaded-modules, taken wherever spec flags are (below the spec flags'
 * range, above every command's own options). */
enum { OPT_LOADED_MODULES = 1090 };

/* Prints the spec flags for a command's help. */
void cli_spec_help(FILE *out);

struct cli_spec_flags {
        struct {
                int opt;
                const char *arg;
        } * v;
        size_t n;
        const char *loaded_modules; /* --loaded-modules FILE */
};
/* The spec flags followed by own (NULL-terminated); caller frees. */
struct option *cli_spec_longopts(const struct option *own);
/* Records opt if it is a spec flag. */
bool cli_spec_flag(struct cli_spec_flags *f, int opt, const char *arg);
/* Loads file (NULL: an empty spec, when flags were given) and applies the
 * flags in command-line order. */
int cli_spec_load(const char *file, const struct cli_spec_flags *f, struct kiln_spec **out,
                  struct kiln_err **err);
void cli_spec_flags_release(struct cli_spec_flags *f);

int cmd_pull(int argc, char **argv, struct kiln_err **err);
int cmd_inspect(int argc, char **argv, struct kiln_err **err);
int cmd_build(int argc, char **argv, struct kiln_err **err);
int cmd_name(int argc, char **argv, struct kiln_err **err);
int cmd_cache(int argc, char **argv, struct kiln_err **err);
int cmd_sbom(int argc, char **argv, struct kiln_err **err);
int cmd_provenance(int argc, char **argv, struct kiln_err **err);

/* Prints a JSON value to stdout, indented, with a final newline. */
void cli_print_json(json_t *v);

/* ---------- kiln build --progress and -q (progress.c) ---------- */

struct kiln_build_result;
enum cli_progress_mode {
        CLI_PROGRESS_AUTO,
        CLI_PROGRESS_TTY,
        CLI_PROGRESS_PLAIN,
        CLI_PROGRESS_JSON
};
int cli_progress_parse(const char *arg, enum cli_progress_mode *mode, struct kiln_err **err);
/* Sets the event sink for mode (auto: tty on a terminal, else kiln's lines
 * as they always were); quiet (-q) wins over every mode. several: builds
 * run side by side (tty falls back to plain). */
void cli_progress_start(enum cli_progress_mode mode, bool quiet, bool several);
/* json: a result event; tty: the summary. */
void cli_progress_result(const struct kiln_build_result *r);
void cli_progress_stop(void);
/* main's error line, or an error event with --progress json. */
void cli_print_error(const struct kiln_err *err);

#endif
