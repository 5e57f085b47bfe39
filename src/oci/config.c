/* Image configs (OCI and Docker): the fields `kiln inspect` shows. */
#include "oci-internal.h"

#include <string.h>

void kiln_config_summary_release(struct kiln_config_summary *c)
{
        if (!c)
                return;
        kiln_platform_release(&c->platform);
        free(c->created);
        free(c->author);
        kiln_strv_free(c->env);
        kiln_strv_free(c->entrypoint);
        kiln_strv_free(c->cmd);
        free(c->user);
        free(c->working_dir);
        kiln_strv_free(c->diff_ids);
        if (c->labels)
                json_decref(c->labels);
        *c = (struct kiln_config_summary){0};
}

static int parse_exec_config(json_t *cfg, struct kiln_config_summary *c, struct kiln_err **err)
{
        if (kiln_oci_get_opt_strv(cfg, "Env", &c->env, err) < 0 ||
            kiln_oci_get_opt_strv(cfg, "Entrypoint", &c->entrypoint, err) < 0 ||
            kiln_oci_get_opt_strv(cfg, "Cmd", &c->cmd, err) < 0 ||
            kiln_oci_get_opt_string(cfg, "User", &c->user, err) < 0 ||
            kiln_oci_get_opt_string(cfg, "WorkingDir", &c->working_dir, err) < 0 ||
            kiln_oci_get_opt_string_map(cfg, "Labels", &c->labels, err) < 0)
                return kiln_err_prefix(err, "config");
        return 0;
}

static int parse_rootfs(json_t *doc, struct kiln_config_summary *c, struct kiln_err **err)
{
        json_t *rootfs = json_object_get(doc, "rootfs");
        if (!rootfs)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "missing \"rootfs\"");
        if (!json_is_object(rootfs))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "\"rootfs\" must be an object");
        json_t *type = json_object_get(rootfs, "type");
        if (!json_is_string(type) || strcmp(json_string_value(type), "layers") != 0)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "rootfs: \"type\" must be \"layers\"");
        json_t *ids = json_object_get(rootfs, "diff_ids");
        if (!ids)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "rootfs: missing \"diff_ids\"");
        if (kiln_oci_get_opt_strv(rootfs, "diff_ids", &c->diff_ids, err) < 0)
                return kiln_err_prefix(err, "rootfs");
        if (!c->diff_ids)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "rootfs: \"diff_ids\" must be an array of strings");
        for (size_t i = 0; c->diff_ids[i]; i++)
                if (kiln_digest_validate(c->diff_ids[i], err) < 0)
                        return kiln_err_prefix(err, "rootfs.diff_ids[%zu]", i);
        return 0;
}

static int summary_parse(json_t *doc, struct kiln_config_summary *c, struct kiln_err **err)
{
        if (!json_is_object(doc))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "not a JSON object");
        if (kiln_oci_platform_from_json(doc, &c->platform, err) < 0 ||
            kiln_oci_get_opt_string(doc, "created", &c->created, err) < 0 ||
            kiln_oci_get_opt_string(doc, "author", &c->author, err) < 0)
                return -1;
        /* Docker writes "config": null for images built FROM scratch with
         * nothing set; that is the same as an absent one. */
        json_t *cfg = json_object_get(doc, "config");
        if (cfg && !json_is_null(cfg)) {
                if (!json_is_object(cfg))
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                            "\"config\" must be an object");
                if (parse_exec_config(cfg, c, err) < 0)
                        return -1;
        }
        return parse_rootfs(doc, c, err);
}

int kiln_config_summary_parse(const char *data, size_t len, struct kiln_config_summary *out,
                              struct kiln_err **err)
{
        *out = (struct kiln_config_summary){0};
        if (len > KILN_CONFIG_MAX)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "image config is %zu bytes, over the %zu byte limit", len,
                                    KILN_CONFIG_MAX);
        if (!data || len == 0)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "empty image config");
        json_error_t jerr;
        _cleanup_json_ json_t *doc = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!doc)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "image config: invalid JSON at line %d column %d: %s",
                                    jerr.line, jerr.column, jerr.text);
        _cleanup_config_summary_ struct kiln_config_summary c = {0};
        if (summary_parse(doc, &c, err) < 0)
                return kiln_err_prefix(err, "image config");
        *out = c;
        c = (struct kiln_config_summary){0};
        return 0;
}
