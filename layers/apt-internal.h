/* Shared by the steps of layers/ that run apt-get (apt_packages, and a
 * python_version installed from the distribution). */
#ifndef KILN_LAYERS_APT_INTERNAL_H
#define KILN_LAYERS_APT_INTERNAL_H

#include "kiln/step.h"

#define KILN_APT_BINDS 3

/* apt's package lists and downloaded .debs in kiln cache directories (one
 * per base image and architecture: build code can write what it mounts),
 * and the settings that keep the
 * .debs there: bound over /var/lib/apt/lists, /var/cache/apt/archives and
 * apt.conf.d for one run, so none of it reaches a layer. Held under an
 * exclusive lock until released: concurrent builds take turns. */
struct kiln_apt_cache {
        char *debs, *lists, *conf;
        int lock;
        struct kiln_step_bind binds[KILN_APT_BINDS];
};

int kiln_apt_cache_open(struct kiln_step_ctx *ctx, struct kiln_apt_cache *c, struct kiln_err **err);
/* Leaves c as a local is initialised: {.lock = -1}, no lock held. */
void kiln_apt_cache_release(struct kiln_apt_cache *c);
#define _cleanup_apt_cache_ _cleanup_(kiln_apt_cache_release)

#endif
