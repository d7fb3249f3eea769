/* main.c - the tracelake command: dispatches to subcommands. */
#include <stdio.h>
#include <string.h>

#include "apps.h"
#include "tracelake/tracelake.h"

static void usage(FILE *o) {
  fprintf(o, "usage: tracelake <command> [options]\n\n"
             "commands:\n"
             "  demo    record a demo workload (logs, metrics, spans, async\n"
             "          spans) into a spool directory and summarize it\n"
             "  dump    decode a block file or spool directory as JSON lines\n"
             "  serve   run the ingestion service (HTTP) over a data lake\n"
             "  admin   retention (retire old data) and lake statistics\n"
          "  sql     run a SQL query over the lake and print the result\n"
             "  query   run a SQL query on a Flight SQL server\n"
             "  help    show this help\n\n"
             "Run 'tracelake <command> --help' for a command's options.\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "dump"))
    return tl_app_dump(argc - 1, argv + 1);
  if (!strcmp(cmd, "demo"))
    return tl_app_demo(argc - 1, argv + 1);
  if (!strcmp(cmd, "serve"))
    return tl_app_serve(argc - 1, argv + 1);
  if (!strcmp(cmd, "admin"))
    return tl_app_admin(argc - 1, argv + 1);
  if (!strcmp(cmd, "sql"))
    return tl_app_sql(argc - 1, argv + 1);
  if (!strcmp(cmd, "query"))
    return tl_app_query(argc - 1, argv + 1);
  if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
    printf("tracelake %s\n", TL_VERSION_STRING);
    return 0;
  }
  fprintf(stderr, "tracelake: unknown command '%s'\n\n", cmd);
  usage(stderr);
  return 2;
}
