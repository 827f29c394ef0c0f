/* log: timestamped single-line records on stderr. Lines are written with one write(2)
 * so that the lines of a manager and its scan service never interleave mid-line. */
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096 /* bytes; longer records are cut, never split */

static const char *s_prog = "portcullis";
static enum log_level s_level = LOG_LEVEL_INFO;
static const char *const s_names[] = { "error", "warning", "info", "debug" };

void log_init(const char *progname, enum log_level level)
{
    s_prog = progname;
    s_level = level;
}

void log_set_level(enum log_level level) { s_level = level; }

int log_level_parse(const char *s, enum log_level *out)
{
    for (size_t i = 0; i < sizeof s_names / sizeof s_names[0]; i++) {
        if (strcasecmp(s, s_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

static void s_vlog(enum log_level level, const char *fmt, va_list ap)
{
    char line[LOG_LINE_MAX];
    struct timeval tv;
    struct tm tm;
    size_t n;
    int r;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    r = snprintf(line + n, sizeof line - n, ".%03ldZ %s[%ld]: %s: ", (long)tv.tv_usec / 1000,
                 s_prog, (long)getpid(), s_names[level]);
    if (r > 0)
        n += (size_t)r < sizeof line - n ? (size_t)r : sizeof line - n - 1;
    r = vsnprintf(line + n, sizeof line - n, fmt, ap);
    if (r > 0)
        n += (size_t)r < sizeof line - n ? (size_t)r : sizeof line - n - 1;
    if (n >= sizeof line - 1)
        n = sizeof line - 2;
    line[n++] = '\n';
    /* One write: atomic for lines under PIPE_BUF on pipes, and never interleaved mid-line. */
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    va_list ap;

    if (level > s_level)
        return;
    va_start(ap, fmt);
    s_vlog(level, fmt, ap);
    va_end(ap);
}

void fatal(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    s_vlog(LOG_LEVEL_ERR, fmt, ap);
    va_end(ap);
    exit(1);
}
