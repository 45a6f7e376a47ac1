/* platformctl's readable output: aligned tables and key/value listings. */
#ifndef PLATFORMCTL_TABLE_H
#define PLATFORMCTL_TABLE_H

#include <jansson.h>
#include <stdio.h>

typedef struct ctl_table ctl_table_t;

/* A table with `ncols` columns named by `headers` (borrowed, must outlive
 * the table). NULL on ENOMEM. */
ctl_table_t *ctl_table_new(size_t ncols, const char *const *headers);
void ctl_table_destroy(ctl_table_t **t);

/* Append a row of ncols cells (copied; NULL prints as "-").
 * 0 or -ENOMEM. */
int ctl_table_add(ctl_table_t *t, const char *const *cells);

/* Columns separated by two spaces, each as wide as its widest cell; the
 * last column is not padded. Nothing but the header when empty. */
void ctl_table_print(const ctl_table_t *t, FILE *out);

/* A JSON value as one cell: strings as they are (empty ones and null as "-"), numbers and
 * booleans as JSON, arrays of strings joined by ",", other values as
 * compact JSON. malloc'd (NULL on ENOMEM). */
char *ctl_cell(json_t *v);

/* An object as "key  value" lines, aligned; nested objects flattened to
 * dotted keys ("counts.hosts"); "*_at" members (epoch ms) shown as UTC. */
void ctl_print_object(json_t *obj, FILE *out);

#endif
