/* apps.h - subcommands of the tracelake command. */
#ifndef TL_APPS_H
#define TL_APPS_H

#include <stdbool.h>
#include <stdio.h>

int tl_app_dump(int argc, char **argv);
int tl_app_demo(int argc, char **argv);
/* Decodes PATH (file or spool directory) to `out`; returns 0 or 1 (corrupt
 * input, reasons on stderr). */
int tl_app_dump_path(const char *path, FILE *out, bool summary);

#endif
