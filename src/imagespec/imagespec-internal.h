/* Shared between the spec module's files; not part of the interface. */
#ifndef KILN_IMAGESPEC_INTERNAL_H
#define KILN_IMAGESPEC_INTERNAL_H

#include "kiln/imagespec.h"

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

/* tag_format.format(spec_hash=hash) for a checked tag_format. */
char *kiln_spec_apply_tag_format(const char *fmt, const char *hash);

#endif
