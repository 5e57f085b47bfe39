/* Shared between the spec module's files; not part of the interface. */
#ifndef KILN_IMAGESPEC_INTERNAL_H
#define KILN_IMAGESPEC_INTERNAL_H

#include "kiln/imagespec.h"

#include <stdint.h>

/* Python prints at most this many digits of an int (sys.int_info's
 * default_max_str_digits since 3.11); PyYAML then fails, so kiln does too. */
#define KILN_SPEC_INT_MAX_DIGITS 4300
/* Expanded size (values + text bytes, aliases counted per use) a spec may
 * reach: bounds what hashing and rendering can be made to do. */
#define KILN_SPEC_MAX_WEIGHT (16u * 1024 * 1024)

/* A new value owned by the spec's pool. */
struct kiln_spec_value *kiln_spec_value_new(struct kiln_spec *s, enum kiln_spec_vtype type,
                                            int line, int col);
struct kiln_spec_value *kiln_spec_value_str(struct kiln_spec *s, const char *text);
/* Frees every value of s's pool. */
void kiln_spec_pool_release(struct kiln_spec *s);
void kiln_spec_map_put(struct kiln_spec_value *map, struct kiln_spec_value *key,
                       struct kiln_spec_value *val);
void kiln_spec_list_push(struct kiln_spec_value *list, struct kiln_spec_value *item);
/* Python == between two hashable scalars (1 == 1.0 == True). */
bool kiln_spec_key_equal(const struct kiln_spec_value *a, const struct kiln_spec_value *b);
/* What v is, for messages: "a string", "a list", "null" ... */
const char *kiln_spec_value_type_name(const struct kiln_spec_value *v);

/* Parses one YAML document into *root (owned by s's pool). Errors are
 * "NAME:LINE:COL: reason". */
int kiln_spec_yaml_parse(struct kiln_spec *s, const char *yaml, size_t len, const char *name,
                         struct kiln_spec_value **root, struct kiln_err **err);

/* Resolves and constructs a scalar as PyYAML's SafeLoader does. tag is the
 * explicit tag or NULL; plain says the scalar was unquoted (or tagged "!").
 * Errors (KILN_ERR_SPEC) give the reason alone; the caller prefixes the
 * scalar's position. */
int kiln_spec_scalar(struct kiln_spec_value *v, const char *text, size_t len, const char *tag,
                     bool plain, struct kiln_err **err);

/* ---------- the field table (fields.c) ---------- */

/* How a field's YAML value is read into struct kiln_spec. */
enum spec_type {
        SPEC_STR,     /* str, into a char * */
        SPEC_VERSION, /* str, int or float (flytekit types it str; YAML may not), into a char * */
        SPEC_STRLIST, /* list of str, into a NULL-terminated char ** */
        SPEC_MAP,     /* any mapping, kept as a const struct kiln_spec_value * into raw */
        /* shapes of their own, each read by its own code: */
        SPEC_ENV,    /* env: mapping of NAME: scalar */
        SPEC_MOUNTS, /* pip_secret_mounts: list of [source, target] */
        SPEC_BASE,   /* base_image: a reference, a spec file or a nested spec mapping */
};

/* One entry of the field table, fields[] in fields.c. */
struct spec_field {
        const char *name; /* the YAML key */
        enum spec_type type;
        size_t offset; /* of the member the value is read into (not for the special types) */
        /* Runs once the value is read (never on null); NULL when the type's
         * own checks are all there is. */
        int (*check)(struct kiln_spec *s, const struct spec_field *f,
                     const struct kiln_spec_value *v, struct kiln_err **err);
        bool no_null;                                       /* null is refused, not read as unset */
        struct kiln_spec_flag flags[KILN_SPEC_FIELD_FLAGS]; /* on the command line */
};

/* The field whose YAML key is name, or NULL. */
const struct spec_field *kiln_spec_field_find(const char *name);
/* Builds s's typed view from s->raw: every field read and checked, then
 * the checks between fields and the defaults. depth counts the nested
 * base specs above s. On error the view is partly built;
 * kiln_spec_typed_release frees it. */
int kiln_spec_typed_build(struct kiln_spec *s, int depth, struct kiln_err **err);
/* Frees s's typed view (the fields and what was derived from them) and
 * leaves it zeroed; raw, the pool, path, dir and errname stay. */
void kiln_spec_typed_release(struct kiln_spec *s);
#define _cleanup_spec_typed_ _cleanup_(kiln_spec_typed_release)
/* "FILE:LINE:COL: field: reason", or "FILE: field: reason" for a value
 * the builder API made (it has no position). */
__attribute__((format(printf, 5, 6))) int
kiln_spec_field_error(const struct kiln_spec *s, const struct kiln_spec_value *at,
                      const char *field, struct kiln_err **err, const char *fmt, ...);
/* rel resolved against the spec's directory (an absolute rel as it is). */
char *kiln_spec_path(const struct kiln_spec *s, const char *rel);
/* "/a/./b/../c" -> "/a/c" (abs absolute): the path the kernel would walk
 * if no component were a symlink, as os.path.normpath writes it. */
char *kiln_spec_lexical_path(const char *abs);
/* qsort comparator for an array of strings. */
int kiln_spec_str_cmp(const void *a, const void *b);
/* kiln_spec_source_files for loaded_modules with a module list
 * (loaded_modules.c). */
int kiln_spec_loaded_files(const struct kiln_spec *s, char **root, char ***files,
                           struct kiln_err **err);
/* After s's base specs are (re)built: they take s's module list. */
void kiln_spec_pass_loaded_modules(struct kiln_spec *s);
/* tag_format.format(spec_hash=hash) for a checked tag_format. */
char *kiln_spec_apply_tag_format(const char *fmt, const char *hash);

/* ---------- loading (spec.c) ---------- */

/* Rebuilds s's typed view from new_raw, which becomes s->raw; on error s
 * is as it was. */
int kiln_spec_refresh(struct kiln_spec *s, struct kiln_spec_value *new_raw, struct kiln_err **err);
/* base_image naming a spec file (v): loads it into s->base_spec,
 * refusing a file that is already loading (a cycle). */
int kiln_spec_load_base_file(struct kiln_spec *s, const struct kiln_spec_value *v,
                             struct kiln_err **err);

/* ---------- ignore patterns (ignore.c, gitignore.c, dockerignore.c) ----------
 *
 * Both syntaxes compile to one small pattern language (literals, `?`, `*`,
 * classes, "any directories" and "anything") that ignore.c runs as an
 * NFA, so a hostile pattern costs time linear in the path. */

enum tok_kind {
        T_LIT,     /* one byte (git) or rune (docker) */
        T_ANY1,    /* `?`: one symbol but '/' */
        T_STAR,    /* `*`: any symbols but '/' */
        T_CLASS,   /* `[...]`: one symbol of a set */
        T_OPTDIRS, /* nothing, or anything that ends in '/' (a `**` then '/') */
        T_ANYSTR,  /* `.*`: anything, '/' included */
};

/* A class item: the range lo..hi, or (ctype != 0) a POSIX class. */
struct citem {
        uint32_t lo, hi;
        uint8_t ctype;
};

struct tok {
        uint8_t kind;
        bool neg;           /* T_CLASS: [!...] / [^...] */
        uint32_t c;         /* T_LIT */
        uint32_t cls, ncls; /* T_CLASS: items[cls .. cls + ncls) */
};

struct prog {
        struct tok *t;
        size_t n, cap;
        struct citem *items;
        size_t nitems, capitems;
        bool runes;     /* docker: symbols are UTF-8 runes; git: bytes */
        bool class_sep; /* docker: a class may match '/'; git: never */
        bool never;     /* git: a malformed class, or a trailing '\' */
        char *lit;      /* all tokens are literals: the bytes, for memcmp */
        size_t litlen;
};

enum ctype {
        C_ALNUM = 1,
        C_ALPHA,
        C_BLANK,
        C_CNTRL,
        C_DIGIT,
        C_GRAPH,
        C_LOWER,
        C_PRINT,
        C_PUNCT,
        C_SPACE,
        C_UPPER,
        C_XDIGIT
};

void kiln_ignore_prog_push(struct prog *p, enum tok_kind k, uint32_t c);
/* Adds an item to the class that p's last token is. */
void kiln_ignore_prog_item(struct prog *p, uint32_t lo, uint32_t hi, uint8_t ctype);
/* Ends a compiled program: one of literals only is kept as bytes, so the
 * common patterns ("node_modules", ".env") match by memcmp. */
void kiln_ignore_prog_finish(struct prog *p);
void kiln_ignore_prog_release(struct prog *p);
#define _cleanup_prog_ _cleanup_(kiln_ignore_prog_release)
/* Whether p matches all of s[0..n); partial: whether it could match s
 * followed by more (an over-approximation: any live state counts). */
bool kiln_ignore_prog_run(const struct prog *p, const char *s, size_t n, bool partial);
/* One UTF-8 rune at s (n > 0 bytes left) as Go decodes it: an invalid
 * byte is a symbol of its own, 0x80000000 | the byte. */
uint32_t kiln_ignore_next_rune(const unsigned char *s, size_t n, size_t *len);

enum {
        P_NEG = 1,      /* "!pattern": git re-include, docker exception */
        P_DIRONLY = 2,  /* "pattern/" */
        P_BASENAME = 4, /* no '/': matches the last component at any depth */
};

struct pat {
        struct prog prog;
        unsigned flags;
        char *base; /* git: the ignore file's directory, "" or "a/b" */
        size_t baselen;
};

struct kiln_ignore {
        enum kiln_ignore_syntax syntax;
        struct pat *v;
        size_t n, cap;
        size_t exclusions; /* docker: "!" patterns */
};

/* A new, zeroed pattern at the end of ig's list. */
struct pat *kiln_ignore_push_pat(struct kiln_ignore *ig);
/* How many patterns ig holds; kiln_ignore_truncate drops those after the
 * first n. */
size_t kiln_ignore_len(const struct kiln_ignore *ig);
void kiln_ignore_truncate(struct kiln_ignore *ig, size_t n);

/* One line of a .gitignore in the directory base ("" for the root). */
void kiln_ignore_git_add_line(struct kiln_ignore *ig, const char *base, char *line);
/* 1 when the last git pattern that matches path itself (not its parents)
 * excludes it, 0 when it re-includes it, -1 when none matches. */
int kiln_ignore_git_decide(const struct kiln_ignore *ig, const char *path, bool is_dir);

/* One line of a .dockerignore (origin and lineno name it in errors). */
int kiln_ignore_docker_add_line(struct kiln_ignore *ig, char *line, const char *origin,
                                unsigned lineno, struct kiln_err **err);
/* Whether docker patterns exclude path or one of its parents. */
bool kiln_ignore_docker_excluded(const struct kiln_ignore *ig, const char *path);
/* Whether an exception ("!...") might re-include something below dir, so
 * that an excluded directory must still be walked. */
bool kiln_ignore_docker_may_reinclude(const struct kiln_ignore *ig, const char *dir);

#endif
