/* Private helpers shared by the layer module's files (and its tests). */
#ifndef KILN_LAYER_INTERNAL_H
#define KILN_LAYER_INTERNAL_H

#include "kiln/layer.h"

/* Tests set this to exercise the component-by-component resolver that is
 * used when the kernel has no openat2(2). */
extern bool kiln_layer_force_no_openat2;

/* Opens the directory at rel (a normalised relative path, "" for the root)
 * resolved as if rootfd were "/": symlinks and ".." cannot leave it.
 * Returns an O_PATH fd or -1 with errno set. */
int kiln_layer_open_in_root(int rootfd, const char *rel);

/* Removes name below dirfd recursively without following symlinks. ENOENT
 * is not an error. Returns 0 or -1 with errno set. */
int kiln_layer_rm_rf_at(int parent, const char *name);

/* Orders paths so that a directory comes right before its children and the
 * children before the directory's following siblings ("a", "a/x", "a-b"). */
int kiln_layer_path_cmp(const char *a, const char *b);

#endif
