/* Helpers shared by the oci module's source files; not part of the public
 * interface. */
#ifndef KILN_OCI_INTERNAL_H
#define KILN_OCI_INTERNAL_H

#include "kiln/oci.h"

/* Like kiln_xstrdup but keeps NULL as NULL (kiln_xstrdup turns it into ""). */
char *kiln_oci_strdup0(const char *s);
char **kiln_oci_strv_copy(char *const *v);

/* Compares a media type with a known one, ignoring parameters
 * ("; charset=utf-8") and the case of the type itself (RFC 6838). */
bool kiln_oci_mt_equal(const char *mt, const char *known);

/* Reads architecture/os/variant/os.version from obj (a descriptor's
 * "platform" or an image config's top level). Messages name the field but
 * not obj; the caller prefixes where it is. Values are kept as written. */
int kiln_oci_platform_from_json(json_t *obj, struct kiln_platform *out, struct kiln_err **err);

/* kiln_platform_matches, or with strict the variants must agree exactly
 * (after defaults), which is how kiln_index_select prefers arm64/v8 over
 * other arm64 variants when the wanted platform names none. */
bool kiln_oci_platform_matches_ex(const struct kiln_platform *want,
                                  const struct kiln_platform *cand, bool strict);

/* Optional string member: absent or null gives NULL. */
int kiln_oci_get_opt_string(json_t *obj, const char *key, char **out, struct kiln_err **err);
/* Optional array of strings: absent or null gives NULL, [] an empty vector. */
int kiln_oci_get_opt_strv(json_t *obj, const char *key, char ***out, struct kiln_err **err);
/* Optional object whose values are all strings (annotations, labels):
 * absent or null gives NULL; the result is a deep copy. */
int kiln_oci_get_opt_string_map(json_t *obj, const char *key, json_t **out, struct kiln_err **err);

#endif
