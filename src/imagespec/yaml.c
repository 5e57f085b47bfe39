/* The YAML composer: libyaml events into kiln_spec_value trees, with
 * PyYAML's typing (scalar.c), aliases, merge keys, and the bounds an input
 * file needs (depth, expanded size). Duplicate keys are an error, where
 * PyYAML silently keeps the last one: a spec that says a field twice is a
 * mistake, and the hash would depend on which copy wins. */
#include <math.h>
#include <string.h>
#include <yaml.h>

#include "kiln/imagespec.h"
#include "imagespec-internal.h"

struct anchor {
        char *name;
        struct kiln_spec_value *v;
        size_t weight;
        bool done;
};

struct composer {
        yaml_parser_t parser;
        bool parser_live; /* yaml_parser_initialize succeeded */
        struct kiln_spec *s;
        const char *name;
        struct anchor *anchors;
        size_t n_anchors;
        int depth;
};

static void composer_release(struct composer *c)
{
        for (size_t i = 0; i < c->n_anchors; i++)
                free(c->anchors[i].name);
        free(c->anchors);
        if (c->parser_live)
                yaml_parser_delete(&c->parser);
        *c = (struct composer){0};
}
#define _cleanup_composer_ _cleanup_(composer_release)

/* yaml_event_delete leaves the event zeroed, and deleting a zeroed event
 * (or one yaml_parser_parse failed to fill) is a no-op. */
static void yaml_event_deletep(yaml_event_t *ev)
{
        yaml_event_delete(ev);
}
#define _cleanup_yaml_event_ _cleanup_(yaml_event_deletep)

struct kiln_spec_value *kiln_spec_value_new(struct kiln_spec *s, enum kiln_spec_vtype type,
                                            int line, int col)
{
        struct kiln_spec_value *v = kiln_xcalloc(1, sizeof(*v));

        v->type = type;
        v->line = line;
        v->col = col;
        if (s->n_pool == s->cap_pool) {
                s->cap_pool = s->cap_pool ? s->cap_pool * 2 : 64;
                s->pool = kiln_xrealloc(s->pool, s->cap_pool * sizeof(*s->pool));
        }
        s->pool[s->n_pool++] = v;
        return v;
}

void kiln_spec_pool_release(struct kiln_spec *s)
{
        for (size_t i = 0; i < s->n_pool; i++) {
                free(s->pool[i]->text);
                free(s->pool[i]->items);
                free(s->pool[i]->keys);
                free(s->pool[i]);
        }
        free(steal_pointer(&s->pool));
        s->n_pool = s->cap_pool = 0;
}

struct kiln_spec_value *kiln_spec_value_str(struct kiln_spec *s, const char *text)
{
        struct kiln_spec_value *v = kiln_spec_value_new(s, KILN_SPEC_STR, 0, 0);
        v->text = kiln_xstrdup(text);
        return v;
}

void kiln_spec_list_push(struct kiln_spec_value *list, struct kiln_spec_value *item)
{
        list->items = kiln_xrealloc(list->items, (list->n + 1) * sizeof(*list->items));
        list->items[list->n++] = item;
}

void kiln_spec_map_put(struct kiln_spec_value *map, struct kiln_spec_value *key,
                       struct kiln_spec_value *val)
{
        for (size_t i = 0; i < map->n; i++) {
                if (kiln_spec_key_equal(map->keys[i], key)) {
                        map->items[i] = val; /* a dict keeps the first key's place */
                        return;
                }
        }
        map->keys = kiln_xrealloc(map->keys, (map->n + 1) * sizeof(*map->keys));
        map->items = kiln_xrealloc(map->items, (map->n + 1) * sizeof(*map->items));
        map->keys[map->n] = key;
        map->items[map->n] = val;
        map->n++;
}

const struct kiln_spec_value *kiln_spec_value_get(const struct kiln_spec_value *map,
                                                  const char *key)
{
        if (!map || map->type != KILN_SPEC_MAP)
                return NULL;
        for (size_t i = 0; i < map->n; i++)
                if (map->keys[i]->type == KILN_SPEC_STR && !strcmp(map->keys[i]->text, key))
                        return map->items[i];
        return NULL;
}

const char *kiln_spec_value_type_name(const struct kiln_spec_value *v)
{
        switch (v->type) {
        case KILN_SPEC_NULL:
                return "null";
        case KILN_SPEC_BOOL:
                return "a boolean";
        case KILN_SPEC_INT:
                return "an integer";
        case KILN_SPEC_FLOAT:
                return "a float";
        case KILN_SPEC_STR:
                return "a string";
        case KILN_SPEC_LIST:
                return "a list";
        case KILN_SPEC_MAP:
                return "a mapping";
        }
        return "?";
}

static bool is_numeric(const struct kiln_spec_value *v)
{
        return v->type == KILN_SPEC_BOOL || v->type == KILN_SPEC_INT || v->type == KILN_SPEC_FLOAT;
}

/* The int text of a bool or int value; false for a non-integral float. */
static bool int_text(const struct kiln_spec_value *v, char *buf, size_t n, const char **out)
{
        if (v->type == KILN_SPEC_BOOL) {
                *out = v->boolean ? "1" : "0";
                return true;
        }
        if (v->type == KILN_SPEC_INT) {
                *out = v->text;
                return true;
        }
        if (!isfinite(v->number) || v->number != floor(v->number))
                return false;
        snprintf(buf, n, "%.0f", v->number); /* exact for integral doubles */
        *out = strcmp(buf, "-0") ? buf : "0";
        return true;
}

bool kiln_spec_key_equal(const struct kiln_spec_value *a, const struct kiln_spec_value *b)
{
        if (is_numeric(a) && is_numeric(b)) {
                char ba[400], bb[400];
                const char *ta, *tb;
                if (a->type == KILN_SPEC_FLOAT && b->type == KILN_SPEC_FLOAT)
                        return a->number == b->number;
                if (!int_text(a, ba, sizeof(ba), &ta) || !int_text(b, bb, sizeof(bb), &tb))
                        return false;
                return !strcmp(ta, tb);
        }
        if (a->type != b->type)
                return false;
        if (a->type == KILN_SPEC_NULL)
                return true;
        if (a->type == KILN_SPEC_STR)
                return !strcmp(a->text, b->text);
        return false;
}

static int compose_error(struct composer *c, const yaml_mark_t *m, struct kiln_err **err,
                         const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int compose_error(struct composer *c, const yaml_mark_t *m, struct kiln_err **err,
                         const char *fmt, ...)
{
        va_list ap;
        _cleanup_free_ char *msg = NULL;

        va_start(ap, fmt);
        msg = kiln_xvasprintf(fmt, ap);
        va_end(ap);
        return kiln_err_set(err, KILN_ERR_SPEC, 0, "%s:%zu:%zu: %s", c->name, m->line + 1,
                            m->column + 1, msg);
}

static int next_event(struct composer *c, yaml_event_t *ev, struct kiln_err **err)
{
        if (yaml_parser_parse(&c->parser, ev))
                return 0;
        if (c->parser.problem_mark.line || c->parser.problem_mark.column)
                return kiln_err_set(
                    err, KILN_ERR_SPEC, 0, "%s:%zu:%zu: invalid YAML: %s%s%s", c->name,
                    c->parser.problem_mark.line + 1, c->parser.problem_mark.column + 1,
                    c->parser.context ? c->parser.context : "", c->parser.context ? ", " : "",
                    c->parser.problem ? c->parser.problem : "parse error");
        return kiln_err_set(err, KILN_ERR_SPEC, 0, "%s: invalid YAML: %s", c->name,
                            c->parser.problem ? c->parser.problem : "parse error");
}

static size_t add_weight(size_t a, size_t b)
{
        return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

static int compose(struct composer *c, yaml_event_t *ev, struct kiln_spec_value **out,
                   size_t *weight, struct kiln_err **err);

static int register_anchor(struct composer *c, const yaml_char_t *anchor, struct kiln_spec_value *v)
{
        if (!anchor)
                return -1;
        /* A later anchor of the same name shadows the earlier one, as in
         * PyYAML (which warns); search from the end. */
        c->anchors = kiln_xrealloc(c->anchors, (c->n_anchors + 1) * sizeof(*c->anchors));
        c->anchors[c->n_anchors] = (struct anchor){kiln_xstrdup((const char *)anchor), v, 0, false};
        return (int)c->n_anchors++;
}

static void finish_anchor(struct composer *c, int idx, size_t weight)
{
        if (idx < 0)
                return;
        c->anchors[idx].done = true;
        c->anchors[idx].weight = weight;
}

static int compose_sequence(struct composer *c, yaml_event_t *start, struct kiln_spec_value *v,
                            size_t *weight, struct kiln_err **err)
{
        (void)start;
        for (;;) {
                _cleanup_yaml_event_ yaml_event_t ev = {0};
                struct kiln_spec_value *item = NULL;
                size_t w = 0;

                if (next_event(c, &ev, err) < 0)
                        return -1;
                if (ev.type == YAML_SEQUENCE_END_EVENT)
                        return 0;
                if (compose(c, &ev, &item, &w, err) < 0)
                        return -1;
                kiln_spec_list_push(v, item);
                *weight = add_weight(*weight, w);
        }
}

struct pair {
        struct kiln_spec_value *k, *v;
};

static void pairs_push(struct pair **p, size_t *n, struct kiln_spec_value *k,
                       struct kiln_spec_value *v)
{
        *p = kiln_xrealloc(*p, (*n + 1) * sizeof(**p));
        (*p)[(*n)++] = (struct pair){k, v};
}

static int compose_mapping(struct composer *c, yaml_event_t *start, struct kiln_spec_value *v,
                           size_t *weight, struct kiln_err **err)
{
        _cleanup_free_ struct pair *merged = NULL;
        _cleanup_free_ struct pair *own = NULL;
        size_t n_merged = 0, n_own = 0;
        /* PyYAML's flatten_mapping: every `<<` value (a mapping, or a list of
         * mappings where earlier ones win) goes before the mapping's own
         * keys, which override them. */
        _cleanup_free_ struct kiln_spec_value **merge_srcs = NULL;
        size_t n_merge_srcs = 0;

        (void)start;
        for (;;) {
                _cleanup_yaml_event_ yaml_event_t kev = {0};
                _cleanup_yaml_event_ yaml_event_t vev = {0};
                struct kiln_spec_value *key = NULL, *val = NULL;
                size_t kw = 0, vw = 0;
                yaml_mark_t kmark;
                bool is_merge;

                if (next_event(c, &kev, err) < 0)
                        return -1;
                if (kev.type == YAML_MAPPING_END_EVENT)
                        break;
                kmark = kev.start_mark;
                is_merge = kev.type == YAML_SCALAR_EVENT && !kev.data.scalar.tag &&
                           kev.data.scalar.plain_implicit && kev.data.scalar.length == 2 &&
                           !memcmp(kev.data.scalar.value, "<<", 2);
                if (!is_merge) {
                        if (compose(c, &kev, &key, &kw, err) < 0)
                                return -1;
                        if (key->type == KILN_SPEC_LIST || key->type == KILN_SPEC_MAP)
                                return compose_error(c, &kmark, err,
                                                     "a list or mapping cannot be a key");
                }
                if (next_event(c, &vev, err) < 0)
                        return -1;
                if (compose(c, &vev, &val, &vw, err) < 0)
                        return -1;
                *weight = add_weight(*weight, add_weight(kw, vw));

                if (is_merge) {
                        if (val->type == KILN_SPEC_MAP) {
                                merge_srcs = kiln_xrealloc(merge_srcs, (n_merge_srcs + 1) *
                                                                           sizeof(*merge_srcs));
                                merge_srcs[n_merge_srcs++] = val;
                        } else if (val->type == KILN_SPEC_LIST) {
                                for (size_t i = 0; i < val->n; i++)
                                        if (val->items[i]->type != KILN_SPEC_MAP)
                                                return compose_error(
                                                    c, &kmark, err,
                                                    "'<<' (merge) expects a mapping or a list "
                                                    "of mappings");
                                merge_srcs = kiln_xrealloc(merge_srcs, (n_merge_srcs + val->n) *
                                                                           sizeof(*merge_srcs));
                                for (size_t i = val->n; i-- > 0;)
                                        merge_srcs[n_merge_srcs++] = val->items[i];
                        } else {
                                return compose_error(c, &kmark, err,
                                                     "'<<' (merge) expects a mapping or a list "
                                                     "of mappings");
                        }
                        continue;
                }
                for (size_t i = 0; i < n_own; i++) {
                        if (kiln_spec_key_equal(own[i].k, key)) {
                                _cleanup_buf_ struct kiln_buf kb = {0};
                                kiln_spec_value_repr(&kb, key);
                                return compose_error(c, &kmark, err,
                                                     "duplicate key %s (first at line %d)", kb.data,
                                                     own[i].k->line);
                        }
                }
                pairs_push(&own, &n_own, key, val);
        }
        for (size_t i = 0; i < n_merge_srcs; i++)
                for (size_t j = 0; j < merge_srcs[i]->n; j++)
                        pairs_push(&merged, &n_merged, merge_srcs[i]->keys[j],
                                   merge_srcs[i]->items[j]);
        for (size_t i = 0; i < n_merged; i++)
                kiln_spec_map_put(v, merged[i].k, merged[i].v);
        for (size_t i = 0; i < n_own; i++)
                kiln_spec_map_put(v, own[i].k, own[i].v);
        return 0;
}

static int compose(struct composer *c, yaml_event_t *ev, struct kiln_spec_value **out,
                   size_t *weight, struct kiln_err **err)
{
        int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
        struct kiln_spec_value *v = NULL;
        const yaml_char_t *anchor = NULL;
        const char *tag = NULL;
        int aidx = -1, r;

        switch (ev->type) {
        case YAML_ALIAS_EVENT:
                for (size_t i = c->n_anchors; i-- > 0;) {
                        if (strcmp(c->anchors[i].name, (const char *)ev->data.alias.anchor))
                                continue;
                        if (!c->anchors[i].done)
                                return compose_error(c, &ev->start_mark, err,
                                                     "alias *%s refers to a value that "
                                                     "contains it (recursive data)",
                                                     c->anchors[i].name);
                        *out = c->anchors[i].v;
                        *weight = c->anchors[i].weight;
                        if (*weight > KILN_SPEC_MAX_WEIGHT)
                                return compose_error(c, &ev->start_mark, err,
                                                     "aliases expand the document beyond %u "
                                                     "bytes",
                                                     KILN_SPEC_MAX_WEIGHT);
                        return 0;
                }
                return compose_error(c, &ev->start_mark, err, "unknown anchor *%s",
                                     (const char *)ev->data.alias.anchor);
        case YAML_SCALAR_EVENT: {
                anchor = ev->data.scalar.anchor;
                tag = (const char *)ev->data.scalar.tag;
                v = kiln_spec_value_new(c->s, KILN_SPEC_NULL, line, col);
                if (kiln_spec_scalar(v, (const char *)ev->data.scalar.value, ev->data.scalar.length,
                                     tag, ev->data.scalar.plain_implicit, err) < 0)
                        return kiln_err_prefix(err, "%s:%d:%d", c->name, line, col);
                *weight = add_weight(1, strlen(v->text));
                aidx = register_anchor(c, anchor, v);
                break;
        }
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
                bool seq = ev->type == YAML_SEQUENCE_START_EVENT;
                anchor = seq ? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor;
                tag =
                    (const char *)(seq ? ev->data.sequence_start.tag : ev->data.mapping_start.tag);
                if (tag && strcmp(tag, "!") && strcmp(tag, seq ? YAML_SEQ_TAG : YAML_MAP_TAG))
                        return compose_error(c, &ev->start_mark, err, "unsupported YAML tag '%s'",
                                             tag);
                if (++c->depth > KILN_SPEC_MAX_DEPTH)
                        return compose_error(c, &ev->start_mark, err,
                                             "nesting deeper than %d levels", KILN_SPEC_MAX_DEPTH);
                v = kiln_spec_value_new(c->s, seq ? KILN_SPEC_LIST : KILN_SPEC_MAP, line, col);
                aidx = register_anchor(c, anchor, v);
                *weight = 1;
                r = seq ? compose_sequence(c, ev, v, weight, err)
                        : compose_mapping(c, ev, v, weight, err);
                c->depth--;
                if (r < 0)
                        return -1;
                break;
        }
        default:
                return compose_error(c, &ev->start_mark, err, "unexpected YAML event");
        }
        if (*weight > KILN_SPEC_MAX_WEIGHT)
                return compose_error(c, &ev->start_mark, err,
                                     "document expands beyond %u bytes (aliases?)",
                                     KILN_SPEC_MAX_WEIGHT);
        finish_anchor(c, aidx, *weight);
        *out = v;
        return 0;
}

int kiln_spec_yaml_parse(struct kiln_spec *s, const char *yaml, size_t len, const char *name,
                         struct kiln_spec_value **root, struct kiln_err **err)
{
        _cleanup_composer_ struct composer c = {.s = s, .name = name};
        bool have_doc = false;

        if (len > KILN_SPEC_MAX_BYTES)
                return kiln_err_set(err, KILN_ERR_SPEC, 0, "%s: larger than %d bytes", name,
                                    KILN_SPEC_MAX_BYTES);
        if (!yaml_parser_initialize(&c.parser))
                return kiln_err_set(err, KILN_ERR_INTERNAL, 0, "cannot initialise the YAML parser");
        c.parser_live = true;
        yaml_parser_set_input_string(&c.parser, (const unsigned char *)yaml, len);

        for (;;) {
                _cleanup_yaml_event_ yaml_event_t ev = {0};
                size_t w = 0;

                if (next_event(&c, &ev, err) < 0)
                        return -1;
                if (ev.type == YAML_STREAM_END_EVENT)
                        break;
                if (ev.type == YAML_STREAM_START_EVENT || ev.type == YAML_DOCUMENT_END_EVENT)
                        continue;
                if (ev.type == YAML_DOCUMENT_START_EVENT) {
                        if (have_doc)
                                return compose_error(&c, &ev.start_mark, err,
                                                     "more than one YAML document; a spec is one "
                                                     "mapping");
                        have_doc = true;
                        continue;
                }
                if (compose(&c, &ev, root, &w, err) < 0)
                        return -1;
                if ((*root)->type != KILN_SPEC_MAP)
                        return compose_error(
                            &c, &ev.start_mark, err, "the spec must be a mapping of fields, not %s",
                            (*root)->type == KILN_SPEC_LIST ? "a list" : "a scalar");
        }
        if (!have_doc || !*root)
                return kiln_err_set(err, KILN_ERR_SPEC, 0,
                                    "%s: the spec is empty (write {} for all defaults)", name);
        return 0;
}
