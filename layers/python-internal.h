/* Shared by the python steps of layers/. */
#ifndef KILN_LAYERS_PYTHON_INTERNAL_H
#define KILN_LAYERS_PYTHON_INTERNAL_H

#include "kiln/step.h"

#define KILN_VENV "/root/.venv"
/* PATH when the image sets none, as BuildKit assumes */
#define KILN_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Does the spec get the venv (the python step)? */
bool kiln_python_venv_wanted(const struct kiln_spec *s);

/* The interpreter the venv is made from: python_exec, python<version>, or
 * the base's python3. Caller frees. */
char *kiln_python_interpreter(const struct kiln_spec *s);

#endif
