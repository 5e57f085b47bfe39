/* What the store's files share and no other module sees. */
#ifndef KILN_STORE_INTERNAL_H
#define KILN_STORE_INTERNAL_H

#include "kiln/store.h"

/* A blob writer tells its watch (NULL: none) how far it got. */
void watch_writer_started(struct kiln_blob_watch *w, const char *tmp_path);
void watch_writer_wrote(struct kiln_blob_watch *w, uint64_t size);
void watch_writer_reset(struct kiln_blob_watch *w);

#endif
