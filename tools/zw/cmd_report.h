/* tools/zw/cmd_report.h - what cmd_report.c (the command: options, files, the HTML page) and
 * cmd_report_json.c (the data the page shows) share. See docs/report.md. */
#ifndef CLI_CMD_REPORT_H
#define CLI_CMD_REPORT_H

#include <stddef.h>
#include <stdio.h>

#include <zerowaste/capture.h>

/* Writes the report's data as one JSON object (docs/report.md#data) for the processes `caps[i]`
 * read from `paths[i]` (i < n; caps[0] is the root of the process tree). Every string is escaped
 * so that the text can sit inside an HTML <script> element. Aggregates by allocation site in C:
 * the size of the output grows with the number of sites kept (at most `max_entries` per live
 * set), never with the number of blocks. 0, or -1 with a message in `err`. */
int cli_report_write_json(FILE *out, const zw_capture *const *caps, const char *const *paths,
                          size_t n, size_t max_entries, zw_error *err);

#endif /* CLI_CMD_REPORT_H */
