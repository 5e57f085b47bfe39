/* The builder API: edits of a spec's raw tree, each followed by a rebuild
 * of the typed view (kiln_spec_refresh), so a spec made or amended by
 * command-line flags hashes as if its YAML had said so. */
#include <string.h>

#include "kiln/imagespec.h"
#include "imagespec-internal.h"

static struct kiln_spec_value *map_shallow_copy(struct kiln_spec *s,
                                                const struct kiln_spec_value *m)
{
        struct kiln_spec_value *c = kiln_spec_value_new(s, m->type, m->line, m->col);

        for (size_t i = 0; i < m->n; i++) {
                if (m->type == KILN_SPEC_MAP)
                        kiln_spec_map_put(c, m->keys[i], m->items[i]);
                else
                        kiln_spec_list_push(c, m->items[i]);
        }
        return c;
}

static void map_remove(struct kiln_spec_value *m, const char *key)
{
        for (size_t i = 0; i < m->n; i++) {
                if (m->keys[i]->type == KILN_SPEC_STR && !strcmp(m->keys[i]->text, key)) {
                        memmove(m->keys + i, m->keys + i + 1, (m->n - i - 1) * sizeof(*m->keys));
                        memmove(m->items + i, m->items + i + 1, (m->n - i - 1) * sizeof(*m->items));
                        m->n--;
                        return;
                }
        }
}

#define TYPE_BIT(t) (1u << (t))

/* Whether the builder API may edit field with a value of one of types. */
static int check_known(const char *field, unsigned types, struct kiln_err **err)
{
        const struct spec_field *f = kiln_spec_field_find(field);

        if (!f)
                return kiln_err_set(err, KILN_ERR_SPEC, 0, "%s: unknown field", field);
        if (!(types & TYPE_BIT(f->type)))
                return kiln_err_set(err, KILN_ERR_SPEC, 0, "%s: cannot be set this way", field);
        return 0;
}

/* Makes s->raw a copy of itself with field set to v, and rebuilds the
 * typed view from it (on error, s is as it was). */
static int put_field(struct kiln_spec *s, const char *field, struct kiln_spec_value *v,
                     struct kiln_err **err)
{
        struct kiln_spec_value *raw = map_shallow_copy(s, s->raw);

        kiln_spec_map_put(raw, kiln_spec_value_str(s, field), v);
        return kiln_spec_refresh(s, raw, err);
}

/* A new list holding the list field's items so far (none when unset or
 * null), to append to. */
static int list_copy(struct kiln_spec *s, const char *field, struct kiln_spec_value **list,
                     struct kiln_err **err)
{
        const struct kiln_spec_value *old = kiln_spec_value_get(s->raw, field);

        if (old && old->type != KILN_SPEC_LIST && old->type != KILN_SPEC_NULL)
                return kiln_err_set(err, KILN_ERR_SPEC, 0, "%s: is %s, cannot append", field,
                                    kiln_spec_value_type_name(old));
        *list = old && old->type == KILN_SPEC_LIST ? map_shallow_copy(s, old)
                                                   : kiln_spec_value_new(s, KILN_SPEC_LIST, 0, 0);
        return 0;
}

int kiln_spec_set_str(struct kiln_spec *s, const char *field, const char *value,
                      struct kiln_err **err)
{
        if (check_known(field, TYPE_BIT(SPEC_STR) | TYPE_BIT(SPEC_VERSION) | TYPE_BIT(SPEC_BASE),
                        err) < 0)
                return -1;
        if (value)
                return put_field(s, field, kiln_spec_value_str(s, value), err);
        struct kiln_spec_value *raw = map_shallow_copy(s, s->raw);
        map_remove(raw, field);
        return kiln_spec_refresh(s, raw, err);
}

int kiln_spec_append(struct kiln_spec *s, const char *field, const char *value,
                     struct kiln_err **err)
{
        struct kiln_spec_value *list = NULL;

        if (check_known(field, TYPE_BIT(SPEC_STRLIST), err) < 0 ||
            list_copy(s, field, &list, err) < 0)
                return -1;
        if (value)
                kiln_spec_list_push(list, kiln_spec_value_str(s, value));
        return put_field(s, field, list, err);
}

int kiln_spec_set_empty_list(struct kiln_spec *s, const char *field, struct kiln_err **err)
{
        if (check_known(field, TYPE_BIT(SPEC_STRLIST) | TYPE_BIT(SPEC_MOUNTS), err) < 0)
                return -1;
        return put_field(s, field, kiln_spec_value_new(s, KILN_SPEC_LIST, 0, 0), err);
}

int kiln_spec_set_env(struct kiln_spec *s, const char *key, const char *value,
                      struct kiln_err **err)
{
        const struct kiln_spec_value *old = kiln_spec_value_get(s->raw, "env");
        struct kiln_spec_value *env;

        if (old && old->type != KILN_SPEC_MAP && old->type != KILN_SPEC_NULL)
                return kiln_err_set(err, KILN_ERR_SPEC, 0, "env: is %s, cannot add to it",
                                    kiln_spec_value_type_name(old));
        env = old && old->type == KILN_SPEC_MAP ? map_shallow_copy(s, old)
                                                : kiln_spec_value_new(s, KILN_SPEC_MAP, 0, 0);
        kiln_spec_map_put(env, kiln_spec_value_str(s, key), kiln_spec_value_str(s, value));
        return put_field(s, "env", env, err);
}

int kiln_spec_add_secret_mount(struct kiln_spec *s, const char *src, const char *dst,
                               struct kiln_err **err)
{
        struct kiln_spec_value *list = NULL, *pair;

        if (list_copy(s, "pip_secret_mounts", &list, err) < 0)
                return -1;
        pair = kiln_spec_value_new(s, KILN_SPEC_LIST, 0, 0);
        kiln_spec_list_push(pair, kiln_spec_value_str(s, src));
        kiln_spec_list_push(pair, kiln_spec_value_str(s, dst));
        kiln_spec_list_push(list, pair);
        return put_field(s, "pip_secret_mounts", list, err);
}
