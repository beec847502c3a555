/*
 * start.h - the start of the embedded interpreter across the layers
 * (start.c), given to the runtime thread as its start hook.
 */
#ifndef PY_START_H
#define PY_START_H

/* At load: register the start with runtime/ (runtime_set_start). */
void start_init(void);

#endif
