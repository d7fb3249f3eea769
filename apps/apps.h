/* apps.h - subcommands of the tracelake command. */
#ifndef TL_APPS_H
#define TL_APPS_H

#include <stdbool.h>
#include <stdio.h>

#include <stddef.h>
#include <stdint.h>

#include "lake/catalog.h"
#include "lake/store.h"

int tl_app_dump(int argc, char **argv);
int tl_app_serve(int argc, char **argv);
int tl_app_admin(int argc, char **argv);
int tl_app_sql(int argc, char **argv);
int tl_app_query(int argc, char **argv);
/* Helpers shared by the subcommands; each returns 0 or -1/1 on bad input
 * (having printed why, for tl_app_open_lake). */
int tl_app_parse_hostport(const char *s, char *host, size_t cap,
                          uint16_t *port);
int tl_app_parse_bytes(const char *s, size_t *out);
int tl_app_parse_age(const char *s, int64_t *ns);
int tl_app_open_lake(const char *data, const char *catalog_spec,
                     tl_catalog **cat, tl_store **store);
int tl_app_demo(int argc, char **argv);
/* Decodes PATH (file or spool directory) to `out`; returns 0 or 1 (corrupt
 * input, reasons on stderr). */
int tl_app_dump_path(const char *path, FILE *out, bool summary);

#endif
