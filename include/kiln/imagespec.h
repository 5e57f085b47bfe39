/* kiln spec: flytekit ImageSpec files.
 *
 * A spec is YAML read the way flytekit reads it (PyYAML safe_load, YAML 1.1
 * typing: `3.10` is the float 3.1, `yes` is True, `010` is 8), checked
 * strictly, and kept twice: as the raw typed tree (the image tag hashes the
 * values exactly as given, types included) and as typed fields for the build
 * planner.
 *
 * Relative paths (copy, requirements, source_root) resolve against the spec
 * file's directory, not the working directory as in flytekit, so a spec
 * hashes and builds the same wherever kiln runs. Specs read from stdin or
 * made from command-line flags use the working directory.
 *
 * Errors are KILN_ERR_SPEC and read "FILE:LINE:COL: field: reason". */
#ifndef KILN_IMAGESPEC_H
#define KILN_IMAGESPEC_H

#include "kiln/util.h"

#include <jansson.h>

#define KILN_SPEC_MAX_BYTES        (1024 * 1024) /* a spec file */
#define KILN_SPEC_MAX_DEPTH        64            /* nested lists/mappings */
#define KILN_SPEC_DEFAULT_NAME     "flytekit"
#define KILN_SPEC_DEFAULT_PLATFORM "linux/amd64"

/* ---------- typed YAML values ---------- */

enum kiln_spec_vtype {
        KILN_SPEC_NULL,
        KILN_SPEC_BOOL,
        KILN_SPEC_INT,
        KILN_SPEC_FLOAT,
        KILN_SPEC_STR,
        KILN_SPEC_LIST,
        KILN_SPEC_MAP,
};

/* One value as PyYAML's safe_load types it. Values are owned by the spec
 * that holds them; a YAML alias shares the anchored value (the tree is a
 * DAG, never a cycle). */
struct kiln_spec_value {
        enum kiln_spec_vtype type;
        int line, col; /* 1-based position in the file; 0 for values set by API */
        /* Python's str() of a scalar: STR the text itself (never contains
         * NUL), INT canonical decimal ("31" for 0x1F, "8" for 010, "0" for
         * -0), FLOAT Python's repr ("3.1", "1e-05", "inf"), BOOL
         * "True"/"False", NULL "None". NULL for LIST and MAP. */
        char *text;
        bool boolean;                   /* BOOL */
        double number;                  /* FLOAT */
        size_t n;                       /* LIST items, MAP pairs */
        struct kiln_spec_value **items; /* LIST items, MAP values */
        struct kiln_spec_value **keys;  /* MAP keys (scalars, no duplicates) */
};

/* Looks up a string key in a MAP value; NULL when absent or not a map. */
const struct kiln_spec_value *kiln_spec_value_get(const struct kiln_spec_value *map,
                                                  const char *key);

/* Appends Python's repr() of v to b: what str(dict) prints for a value
 * nested in a dict ('text' quoted, [a, b], {'k': v}, True, None, 3.1). */
void kiln_spec_value_repr(struct kiln_buf *b, const struct kiln_spec_value *v);
/* Python's repr() of a str given as UTF-8 (quotes, escapes, isprintable). */
void kiln_spec_str_repr(struct kiln_buf *b, const char *s, size_t len);
/* Python's repr() of a float: shortest round-trip digits, exponent when
 * the decimal exponent is < -4 or >= 16, ".0" on integral values. */
void kiln_spec_float_repr(double d, char out[32]);

/* ---------- the spec ---------- */

struct kiln_spec_env {
        char *key;
        char *value; /* str() of the YAML value: `DEBUG: 1` gives "1" */
};

struct kiln_spec_mount {
        char *src;
        char *dst;
};

/* Typed fields. Strings are owned; string lists are NULL-terminated and NULL
 * when unset (an empty list is a non-NULL list whose first element is NULL:
 * `entrypoint: []` clears the base image's entrypoint, unset keeps it).
 * Fields that flytekit types as str but that YAML may give as a number
 * (python_version, cuda, cudnn) hold Python's str() of the value. */
/* The largest requirements or lock file kiln reads (for the tag's hash,
 * the pip step and the network ports it needs). */
#define KILN_SPEC_REQUIREMENTS_MAX (64u * 1024 * 1024)

struct kiln_spec {
        char *path;                  /* spec file as given; NULL for stdin and flags */
        char *dir;                   /* absolute directory that relative paths resolve against */
        struct kiln_spec_value *raw; /* the top-level mapping as parsed (or built) */

        char *name;           /* lowercased; default "flytekit" */
        char *python_version; /* NULL: the base image's python */
        char *builder;
        char *source_root; /* as given */
        /* CopyFileDetection by member name: "loaded_modules", "all" or
         * "no_copy"; "loaded_modules" when source_root is set without one,
         * as flytekit defaults it. Hashed as the enum's repr. */
        char *source_copy_mode;
        struct kiln_spec_env *env;
        size_t n_env;   /* in YAML order */
        char *registry; /* lowercased; NULL: no registry part, never pushed */
        char **packages;
        char **conda_packages;
        char **conda_channels;
        char *requirements;          /* as given */
        char *requirements_path;     /* resolved against dir */
        bool requirements_lock;      /* uv.lock or poetry.lock (pyproject.toml beside it) */
        bool requirements_pyproject; /* a bare pyproject.toml: its dependencies */
        char **apt_packages;
        char *cuda;
        char *cudnn;
        char *base_image;            /* a reference; NULL when unset or base_spec */
        struct kiln_spec *base_spec; /* base_image given as a nested spec mapping */
        char *platform;              /* as given; default kiln_spec_default_platform's */
        char **platforms;            /* platform split at ',' (each os/arch[/variant]) */
        char *pip_index;
        char **pip_extra_index_url;
        struct kiln_spec_mount *pip_secret_mounts;
        size_t n_pip_secret_mounts;
        char *pip_extra_args;
        char *registry_config;
        char **entrypoint;
        char **commands;
        char *tag_format;
        char **copy;       /* as given (relative paths) */
        char **copy_paths; /* resolved against dir; NULL when copy is unset */
        char *python_exec;
        char **runtime_packages;
        const struct kiln_spec_value *builder_options; /* MAP inside raw, or NULL */
        const struct kiln_spec_value *builder_config;  /* MAP inside raw, or NULL */
        /* Not an ImageSpec field (never in the name, tag or id): kiln build
         * --flytekit-requirement, the requirement the pip step adds as
         * flytekit's default builder adds flytekit==<its version>. Borrowed;
         * NULL: none. */
        const char *flytekit_requirement;

        /* The module files pyflyte loaded (kiln_spec_set_loaded_modules),
         * as given: what source_copy_mode loaded_modules copies and hashes
         * from source_root. NULL: not known, and loaded_modules is refused. */
        char **loaded_modules;

        /* Things flytekit accepts but that probably are not what the author
         * meant (python_version: 3.10 reads as 3.1). The CLI prints them. */
        char **warnings;

        /* private */
        char *errname; /* file name in error messages ("<stdin>", "<command line>") */
        struct kiln_spec_value **pool;
        size_t n_pool, cap_pool;
};

/* flytekit's default platform for a spec without one: "linux/arm64" when
 * the registry is a localhost:PORT one and the machine (uname's, as
 * Python's platform.machine()) is arm64 or aarch64, else
 * KILN_SPEC_DEFAULT_PLATFORM. registry may be NULL; the spec loader
 * passes this host's machine. */
const char *kiln_spec_default_platform(const char *registry, const char *machine);

/* Loads a spec file; path "-" reads stdin (relative paths then resolve
 * against the working directory). */
int kiln_spec_load_file(const char *path, struct kiln_spec **out, struct kiln_err **err);
/* Parses YAML text. name_for_errors prefixes error positions ("<stdin>");
 * base_dir NULL means the working directory. */
int kiln_spec_load_string(const char *yaml, size_t len, const char *name_for_errors,
                          const char *base_dir, struct kiln_spec **out, struct kiln_err **err);
void kiln_spec_free(struct kiln_spec *s);
void kiln_spec_freep(struct kiln_spec **s);
#define _cleanup_spec_ _cleanup_(kiln_spec_freep)

/* The spec's fields as JSON (keys in the spec's order; a nested base_image
 * spec as an object) for provenance: every string with the credentials of
 * its URLs removed ("https://user:pw@host/" -> "https://host/"), and
 * pip_secret_mounts as their destinations only. Caller json_decrefs. */
json_t *kiln_spec_to_json(const struct kiln_spec *s);
/* s with the user:password@ of every URL in it removed. Caller frees. */
char *kiln_spec_strip_credentials(const char *s);

/* ---------- building a spec from command-line flags ----------
 *
 * Each call edits the raw tree and re-validates, so a spec loaded from a file
 * can be amended by flags and hashes as if the file had said so. Field
 * names are the YAML keys. Errors are KILN_ERR_SPEC and leave the spec as it
 * was before the call. */

/* An empty spec ({}); base_dir NULL means the working directory. */
struct kiln_spec *kiln_spec_new(const char *base_dir);
/* Sets a string field (name, base_image, python_version, registry,
 * platform, ...); value NULL removes the key. */
int kiln_spec_set_str(struct kiln_spec *s, const char *field, const char *value,
                      struct kiln_err **err);
/* Appends to a list-of-strings field (packages, apt_packages, copy,
 * commands, entrypoint, ...), creating the list when unset. */
int kiln_spec_append(struct kiln_spec *s, const char *field, const char *value,
                     struct kiln_err **err);
/* Sets a list field to [] (entrypoint: [] clears the base entrypoint). */
int kiln_spec_set_empty_list(struct kiln_spec *s, const char *field, struct kiln_err **err);
/* Sets env[key] = value: an existing key keeps its place, a new one goes
 * last. */
int kiln_spec_set_env(struct kiln_spec *s, const char *key, const char *value,
                      struct kiln_err **err);
/* Appends a (src, dst) pair to pip_secret_mounts. */
int kiln_spec_add_secret_mount(struct kiln_spec *s, const char *src, const char *dst,
                               struct kiln_err **err);

/* ---------- the fields and their command-line flags ----------
 *
 * Each field is defined once, in the field table (src/imagespec/fields.c),
 * with the flags that set it from the command line. A flag is one call of the
 * builder API above. */

/* The YAML key of the i-th field, in flytekit's dataclass order; NULL past
 * the end. */
const char *kiln_spec_field_name(size_t i);

enum kiln_spec_flag_op {
        KILN_SPEC_FLAG_SET,    /* --FLAG VALUE: kiln_spec_set_str */
        KILN_SPEC_FLAG_APPEND, /* --FLAG VALUE, repeatable: kiln_spec_append */
        KILN_SPEC_FLAG_EMPTY,  /* --FLAG (no value): kiln_spec_set_empty_list */
        KILN_SPEC_FLAG_ENV,    /* --FLAG KEY=VALUE: kiln_spec_set_env */
        KILN_SPEC_FLAG_MOUNT,  /* --FLAG SRC:DST: kiln_spec_add_secret_mount */
};

#define KILN_SPEC_FIELD_FLAGS 2 /* flags of one field, at most */

struct kiln_spec_flag {
        const char *name; /* "base-image" for --base-image; NULL: no flag */
        enum kiln_spec_flag_op op;
        const char *help; /* what help shows after the flag ("REF"); NULL: nothing */
        /* Where the flag stands among the spec flags, from 1: in the options
         * given to getopt (which lists them in that order when an abbreviation
         * is ambiguous) and in help. 0 puts it after the placed flags, in the
         * table's order. */
        unsigned char opt_place, help_place;
};

/* The flags of the i-th field (i below the number of fields): an array of
 * KILN_SPEC_FIELD_FLAGS, unused entries with a NULL name. */
const struct kiln_spec_flag *kiln_spec_field_flags(size_t i);

/* ---------- source_root ---------- */

/* Gives s, and the base specs nested in it, the list of module files
 * pyflyte loaded (flytekit's list_imported_modules_as_files, which the
 * flytekit plugin writes): FILE holds one absolute path per line. With it,
 * source_copy_mode loaded_modules copies and hashes, from each spec's
 * source_root, the listed files that flytekit counts as inside it.
 * KILN_ERR_USAGE naming FILE and the line for a path that is not absolute
 * or a file too large. */
int kiln_spec_set_loaded_modules(struct kiln_spec *s, const char *file, struct kiln_err **err);

/* Is source_root copied (and hashed)? As in flytekit: only when
 * source_copy_mode is set and is not no_copy. */
bool kiln_spec_copies_source(const struct kiln_spec *s);
/* The files source_root contributes, as flytekit's ls_files lists them:
 * for all, kiln_source_list (ignore files honoured) minus what is not a
 * regular file when followed (symlinks to directories or nowhere,
 * sockets); for loaded_modules, the listed module files inside it (refused
 * when the spec has no list: only pyflyte knows the modules it loaded).
 * *root is the absolute source_root; *files NULL when nothing is copied. */
int kiln_spec_source_files(const struct kiln_spec *s, char **root, char ***files,
                           struct kiln_err **err);

/* Refuses (KILN_ERR_SPEC, listing each "path -> target") symlinks that
 * lead out of the tree a build copies: source_root files that are
 * symlinks (their targets' bytes would be copied), symlinks at or below a
 * copy entry, and copy entries reached through a symlinked directory,
 * judged against the spec's directory. A dangling link is judged by its
 * target resolved lexically. The image name does not depend on it. */
int kiln_spec_check_symlinks(const struct kiln_spec *s, struct kiln_err **err);

/* ---------- image name, tag and id (bit-for-bit flytekit) ---------- */

struct kiln_image_name {
        char *full;       /* "registry/name:tag", or "name:tag" without registry */
        char *repository; /* "registry/name" or "name" */
        char *tag;        /* hash with '-' -> '_', through tag_format */
        char *id;         /* _F_IMG_ID: hash of the spec as declared */
        char *tag_dict;   /* the Python str(dict) text hashed for the tag */
        char *id_dict;    /* ... and for the id */
};

/* Reads the copy entries and the requirements file (relative to s->dir)
 * to hash them, as flytekit does. */
int kiln_spec_image_name(const struct kiln_spec *s, struct kiln_image_name *out,
                         struct kiln_err **err);
void kiln_image_name_release(struct kiln_image_name *n);
#define _cleanup_image_name_ _cleanup_(kiln_image_name_release)

/* ---------- source trees ---------- */

/* Ignore patterns, in one of two syntaxes:
 * - GIT, gitignore(5): `#` comments, unescaped trailing spaces dropped,
 *   `\` escapes, `!` re-includes, a trailing `/` matches directories only,
 *   a `/` at the start or middle anchors to the file's directory (else the
 *   pattern matches a name at any depth below it), `*` `?` `[...]` never
 *   match '/', `**` as git's wildmatch has it. The last match wins.
 * - DOCKER, moby's patternmatcher: lines trimmed and cleaned as Go's
 *   filepath.Clean does (a leading '/' dropped), filepath.Match syntax plus
 *   `**` for any number of directories, `!` exceptions, the last match
 *   wins, and a pattern that matches a directory matches all below it. */
enum kiln_ignore_syntax {
        KILN_IGNORE_GIT,
        KILN_IGNORE_DOCKER,
};

/* An ordered list of patterns of one syntax. */
struct kiln_ignore;
struct kiln_ignore *kiln_ignore_new(enum kiln_ignore_syntax syntax);
void kiln_ignore_free(struct kiln_ignore *ig);
void kiln_ignore_freep(struct kiln_ignore **ig);
#define _cleanup_ignore_ _cleanup_(kiln_ignore_freep)

/* Appends the patterns of one ignore file: text[0..len) (NUL-terminated
 * or not). base is the directory holding the file, relative to the tree's
 * root ("" for the root, "a/b"); git patterns apply only below it, and
 * later (deeper) files override earlier ones. Docker patterns take base
 * "". origin names the file in errors: a malformed docker pattern (or a
 * lone "!") is an error "ORIGIN:LINE: ..."; git patterns never fail. */
int kiln_ignore_add(struct kiln_ignore *ig, const char *base, const char *text, size_t len,
                    const char *origin, struct kiln_err **err);

/* Whether relpath (relative to the root, '/'-separated, clean) is
 * excluded. Parents count: under GIT nothing below an excluded directory
 * comes back; under DOCKER a pattern matching a parent matches the path.
 * is_dir is for git's directory-only patterns. */
bool kiln_ignore_match(const struct kiln_ignore *ig, const char *relpath, bool is_dir);

/* The files of a source tree that a build copies (ImageSpec source_root):
 * every regular file and symlink under root, minus what root's
 * .dockerignore (DOCKER), every .gitignore at or below root (GIT, each for
 * its subtree), and flytekit's STANDARD_IGNORE_PATTERNS (read as GIT
 * patterns: *.pyc files, .cache and __pycache__ at any depth) exclude; a
 * file is copied only when none of the three excludes it. `.git` is never
 * copied, at any depth. The ignore files themselves are listed unless a
 * pattern excludes them (.dockerignore cannot exclude itself, as in
 * docker-py). A directory excluded by a GIT pattern is not entered; one
 * excluded by .dockerignore is entered only when an exception could
 * re-include something below it. Symlinks are entries, never followed (a
 * symlinked directory is one entry); empty directories are not listed.
 * Errors: a fifo, socket or device that is not excluded (the layer writer
 * could not store it), an ignore file that is a symlink, not a regular
 * file or larger than 1 MiB, a malformed .dockerignore pattern, and more
 * than 256 nested directories, each naming the path.
 * *paths: relative to root, sorted bytewise, NULL-terminated
 * (kiln_strv_free). */
int kiln_source_list(const char *root, char ***paths, struct kiln_err **err);

#endif
