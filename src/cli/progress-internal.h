/* The renderers of kiln build's progress (progress.c, progress_tty.c). */
#ifndef KILN_CLI_PROGRESS_INTERNAL_H
#define KILN_CLI_PROGRESS_INTERNAL_H

#include "kiln/builder.h"

#include <pthread.h>

/* One process renders one build (forked builds have their own copy). */
struct cli_progress {
        pthread_mutex_t lock;
        enum cli_progress_mode mode; /* as chosen: AUTO means no sink */
        uint64_t start_ns;
        size_t step; /* the running step, 0 between steps */
        char *step_kind;
        struct kiln_buf step_output; /* the running step's output, for its failure */
        uint64_t bytes_pushed;
};
extern struct cli_progress cli_progress;

/* Under the lock: keep an output line of the running step; print and
 * forget what was kept; count pushed bytes. */
void cli_progress_keep_output(const struct kiln_event *ev);
void cli_progress_flush_output(void);
void cli_progress_count(const struct kiln_event *ev);

void cli_progress_tty_start(void);
void cli_progress_tty_result(const struct kiln_build_result *r, uint64_t total_ms);
void cli_progress_tty_stop(void);

#endif
