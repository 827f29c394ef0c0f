/* cmd_sps: see cmd_sps.h. Import streams the file into a temporary table with COPY (rows
 * checked here first, so a bad line refuses the whole import before anything changes) and
 * merges it into sps_hashes with one INSERT … ON CONFLICT in the same transaction. */
#include "cli/cmd_sps.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "sps/sps_request.h"
#include "util.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define SPS_IMPORT_LINE_MAX 4096          /* bytes per line of an import file */
#define SPS_NAME_MAX 255                  /* bytes of a threat name */
#define SPS_COPY_CHUNK (1024 * 1024)      /* bytes handed to PQputCopyData at once */

void cmd_sps_usage(FILE *f)
{
    fprintf(f,
        "  sps import FILE                      add or rename known-malicious digests: one\n"
        "                                       \"SHA256-HEX THREAT-NAME\" per line, '#' comments\n"
        "                                       and blank lines ignored (FILE - reads stdin); a\n"
        "                                       malformed line refuses the whole import (nothing\n"
        "                                       changes); a digest listed twice takes its last name\n"
        "  sps stats [--json]                   how many digests the look-up service knows\n");
}

static int s_db_fail(PGconn *db, PGresult *r, const char *what)
{
    const char *m = r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(db);

    fprintf(stderr, "portcullis: %s: database: %s", what, m != NULL && *m ? m : "unknown error\n");
    PQclear(r);
    return EXIT_FAILED;
}

static int s_exec(PGconn *db, const char *sql, const char *what)
{
    PGresult *r = PQexec(db, sql);
    ExecStatusType st = PQresultStatus(r);

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        return s_db_fail(db, r, what);
    PQclear(r);
    return 0;
}

/* Appends a name to a COPY text row, escaping what COPY treats specially. */
static size_t s_copy_escape(char *out, const char *s, size_t n)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '\\': out[o++] = '\\'; out[o++] = '\\'; break;
        case '\t': out[o++] = '\\'; out[o++] = 't'; break;
        case '\r': out[o++] = '\\'; out[o++] = 'r'; break;
        default: out[o++] = s[i]; break;
        }
    }
    return o;
}

/* One line → a COPY row "\\xHEX\tNAME\tLINE\n" in row; 0 ok, 1 nothing on the line,
 * -1 malformed with the reason in why. */
static int s_line_row(char *line, size_t len, unsigned long lineno, char *row, size_t *rowlen,
                      const char **why)
{
    uint8_t d[SPS_DIGEST_LEN];
    char *p = line, *end = line + len, *h, *name;
    size_t o;

    while (end > p && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (p == end || *p == '#')
        return 1;
    if (memchr(p, '\0', (size_t)(end - p)) != NULL) {
        *why = "NUL byte in line";
        return -1;
    }
    h = p;
    while (p < end && *p != ' ' && *p != '\t')
        p++;
    if (sps_request_hex_decode(h, (size_t)(p - h), d) != 0) {
        *why = "first field is not a SHA-256 digest (64 hex characters)";
        return -1;
    }
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    name = p;
    if (name == end) {
        *why = "threat name missing after the digest";
        return -1;
    }
    if ((size_t)(end - name) > SPS_NAME_MAX) {
        *why = "threat name longer than 255 bytes";
        return -1;
    }
    memcpy(row, "\\\\x", 3);
    sps_request_hex_encode(d, row + 3);
    o = 3 + SPS_HEX_LEN;
    row[o++] = '\t';
    o += s_copy_escape(row + o, name, (size_t)(end - name));
    o += (size_t)sprintf(row + o, "\t%lu\n", lineno);
    *rowlen = o;
    return 0;
}

static const char s_sql_merge[] =
    "WITH src AS (SELECT DISTINCT ON (sha256) sha256, name FROM sps_import"
    "             ORDER BY sha256, line DESC),"
    "     up AS (INSERT INTO sps_hashes (sha256, name) SELECT sha256, name FROM src"
    "            ON CONFLICT (sha256) DO UPDATE SET name = EXCLUDED.name, added_at = now()"
    "            WHERE sps_hashes.name IS DISTINCT FROM EXCLUDED.name"
    "            RETURNING (xmax = 0) AS inserted)"
    " SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted),"
    "        (SELECT count(*) FROM src) FROM up";

/* Streams f into the COPY; 0 ok, EXIT_USAGE on a malformed line, EXIT_FAILED on the database. */
static int s_copy_file(PGconn *db, FILE *f, const char *path, unsigned long *nrows)
{
    char *buf = xmalloc(SPS_COPY_CHUNK + 2 * SPS_IMPORT_LINE_MAX);
    char *line = NULL;
    size_t cap = 0, used = 0, rl;
    ssize_t len;
    unsigned long lineno = 0;
    const char *why = NULL;
    int rc = 0;

    while ((len = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (len > SPS_IMPORT_LINE_MAX) {
            why = "line longer than 4096 bytes";
            break;
        }
        int k = s_line_row(line, (size_t)len, lineno, buf + used, &rl, &why);
        if (k < 0)
            break;
        if (k == 0) {
            used += rl;
            (*nrows)++;
        }
        if (used >= SPS_COPY_CHUNK) {
            if (PQputCopyData(db, buf, (int)used) != 1) {
                why = NULL;
                rc = EXIT_FAILED;
                break;
            }
            used = 0;
        }
    }
    if (why == NULL && rc == 0 && ferror(f)) {
        fprintf(stderr, "portcullis: %s: %s\n", path, strerror(errno));
        rc = EXIT_FAILED;
    } else if (why != NULL) {
        fprintf(stderr, "portcullis: %s:%lu: %s; nothing imported\n", path, lineno, why);
        rc = EXIT_USAGE;
    }
    if (rc == 0 && used > 0 && PQputCopyData(db, buf, (int)used) != 1)
        rc = EXIT_FAILED;
    PQputCopyEnd(db, rc == 0 ? NULL : "import refused");
    free(buf);
    free(line);
    return rc;
}

static int cmd_sps_import(PGconn *db, bool json, const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    uint64_t t0 = now_ms();
    unsigned long nrows = 0;
    PGresult *r;
    int rc;

    if (f == NULL) {
        fprintf(stderr, "portcullis: %s: %s\n", path, strerror(errno));
        return EXIT_FAILED;
    }
    if (s_exec(db, "SET temp_buffers = '256MB'", "import") != 0 ||
        s_exec(db, "BEGIN", "import") != 0 ||
        s_exec(db, "CREATE TEMP TABLE sps_import (sha256 bytea NOT NULL, name text NOT NULL,"
                   " line bigint NOT NULL) ON COMMIT DROP", "import") != 0) {
        rc = EXIT_FAILED;
        goto out;
    }
    r = PQexec(db, "COPY sps_import (sha256, name, line) FROM STDIN");
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        rc = s_db_fail(db, r, "import");
        goto rollback;
    }
    PQclear(r);
    rc = s_copy_file(db, f, path, &nrows);
    r = PQgetResult(db);
    if (rc == 0 && PQresultStatus(r) != PGRES_COMMAND_OK) {
        rc = s_db_fail(db, r, "import");
        r = NULL;
    }
    PQclear(r);
    while ((r = PQgetResult(db)) != NULL)
        PQclear(r);
    if (rc != 0)
        goto rollback;
    r = PQexec(db, s_sql_merge);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        rc = s_db_fail(db, r, "import");
        goto rollback;
    }
    long long added = atoll(PQgetvalue(r, 0, 0)), updated = atoll(PQgetvalue(r, 0, 1));
    long long distinct = atoll(PQgetvalue(r, 0, 2));
    PQclear(r);
    if (s_exec(db, "COMMIT", "import") != 0) {
        rc = EXIT_FAILED;
        goto out;
    }
    double secs = (double)(now_ms() - t0) / 1000.0;
    if (json) {
        json_t *j = json_pack("{s:I,s:I,s:I,s:I,s:f}", "read", (json_int_t)nrows, "new",
                              (json_int_t)added, "updated", (json_int_t)updated, "unchanged",
                              (json_int_t)(distinct - added - updated), "seconds", secs);
        char *s = json_dumps(j, JSON_SORT_KEYS);
        puts(s);
        free(s);
        json_decref(j);
    } else {
        printf("sps import: read %lu, new %lld, updated %lld, unchanged %lld, in %.2f s\n", nrows,
               added, updated, distinct - added - updated, secs);
    }
    goto out;
rollback:
    s_exec(db, "ROLLBACK", "import");
out:
    if (f != stdin)
        fclose(f);
    return rc;
}

static int cmd_sps_stats(PGconn *db, bool json)
{
    PGresult *r = PQexec(db, "SELECT count(*), max(added_at) FROM sps_hashes");

    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return s_db_fail(db, r, "stats");
    if (json)
        printf("{\"hashes\": %s, \"last_added\": %s%s%s}\n", PQgetvalue(r, 0, 0),
               PQgetisnull(r, 0, 1) ? "" : "\"", PQgetisnull(r, 0, 1) ? "null" : PQgetvalue(r, 0, 1),
               PQgetisnull(r, 0, 1) ? "" : "\"");
    else
        printf("hashes %s, last added %s\n", PQgetvalue(r, 0, 0),
               PQgetisnull(r, 0, 1) ? "never" : PQgetvalue(r, 0, 1));
    PQclear(r);
    return 0;
}

int cmd_sps(PGconn *db, bool json, int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[0], "import") == 0)
        return cmd_sps_import(db, json, argv[1]);
    if (argc == 1 && strcmp(argv[0], "stats") == 0)
        return cmd_sps_stats(db, json);
    fprintf(stderr, "usage:\n");
    cmd_sps_usage(stderr);
    return EXIT_USAGE;
}
