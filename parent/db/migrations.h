/* migrations: the numbered SQL files of parent/db/sql, embedded at build time. */
#ifndef PORTCULLIS_MIGRATIONS_H
#define PORTCULLIS_MIGRATIONS_H

struct migration {
    int version;
    const char *name;
    const char *sql;
};

extern const struct migration migrations[];
extern const unsigned migrations_count;

#endif
