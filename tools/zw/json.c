/* tools/zw/json.c - the one JSON writer of zw: every --json output (top, leaks, peak, compare,
 * stat) and the data of `zw report` are written with these. Strings are escaped here and nowhere
 * else; a writer made for the report also escapes '<', '>' and '&', so that its text can sit
 * inside an HTML <script> element. The keys of each output are documented in docs/zw.md#json and
 * docs/report.md#data. */
#include <inttypes.h>
#include <stdio.h>

#include "cli.h"

void
cli_json_string(const cli_json *j, const char *s)
{
    if (s == NULL) {
        fputs("null", j->out);
        return;
    }
    fputc('"', j->out);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(j->out, "\\%c", *p);
        else if (*p < 0x20 || (j->script_safe && (*p == '<' || *p == '>' || *p == '&')))
            fprintf(j->out, "\\u%04x", *p);
        else
            fputc(*p, j->out);
    }
    fputc('"', j->out);
}

void
cli_json_seconds(const cli_json *j, uint64_t ns)
{
    fprintf(j->out, "%.6f", (double)ns / 1e9);
}

void
cli_json_item(const cli_json *j, size_t i)
{
    fputs(i == 0 ? "\n  " : ",\n  ", j->out);
}

void
cli_json_end(const cli_json *j, size_t n)
{
    fputs(n > 0 ? "\n]\n" : "]\n", j->out);
}

void
cli_json_traceback(const cli_json *j, const zw_traceback *tb)
{
    fputc('[', j->out);
    size_t n = zw_traceback_len(tb);
    for (size_t k = n; k-- > 0;) { /* innermost first */
        const zw_frame *f = zw_traceback_frame(tb, k);
        fputs(k + 1 == n ? "" : ", ", j->out);
        fputs("{\"function\": ", j->out);
        cli_json_string(j, cli_demangle(f->function));
        fputs(", \"symbol\": ", j->out);
        cli_json_string(j, f->function);
        fputs(", \"file\": ", j->out);
        cli_json_string(j, f->filename);
        fprintf(j->out, ", \"line\": %u, \"module\": ", f->lineno);
        cli_json_string(j, f->module);
        fputc('}', j->out);
    }
    fputc(']', j->out);
}

void
cli_json_statistic(const cli_json *j, const zw_statistic *s, bool diff)
{
    fprintf(j->out, "{\"bytes\": %zu, \"blocks\": %zu", s->size, s->count);
    if (diff)
        fprintf(j->out, ", \"bytes_diff\": %" PRId64 ", \"blocks_diff\": %" PRId64, s->size_diff,
                s->count_diff);
    fputs(", \"traceback\": ", j->out);
    cli_json_traceback(j, s->traceback);
    fputc('}', j->out);
}

void
cli_json_stat_list(const cli_json *j, const zw_stat_list *list, size_t n, bool diff)
{
    fputc('[', j->out);
    for (size_t i = 0; i < n; i++) {
        cli_json_item(j, i);
        cli_json_statistic(j, zw_stat_list_get(list, i), diff);
    }
    cli_json_end(j, n);
}
