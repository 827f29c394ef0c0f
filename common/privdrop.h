/* privdrop: least privilege (R8.1). A daemon started as root looks up its system user, hands
 * it the directories it will write, then gives up root for good: supplementary groups, then
 * the group, then the user (real, effective and saved ids), checked afterwards — a setuid(0)
 * that succeeds again aborts. Started as another user, nothing changes. */
#ifndef PORTCULLIS_PRIVDROP_H
#define PORTCULLIS_PRIVDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define PRIVDROP_USER_MAX 32

struct privuser {
    char name[PRIVDROP_USER_MAX + 1];
    uid_t uid;
    gid_t gid;   /* the user's primary group */
};

/* True when the process runs as root and so must drop (R8.1). */
bool privdrop_needed(void);
/* The system user name: 0, or -1 with err saying how to create it. Root itself is refused. */
int privdrop_lookup(const char *name, struct privuser *out, char *err, size_t errlen);
/* Becomes u (groups: only u's primary one) — or, with gid_override != (gid_t)-1, that group
 * as the primary one. 0, or -1 with err. */
int privdrop_to(const struct privuser *u, gid_t gid_override, char *err, size_t errlen);
/* Gives path (a directory) and whatever root owns under it to uid:gid (what another user owns
 * is never taken; symbolic links are not followed), then sets path's mode when it is theirs.
 * A group-writable mode marks a tree both processes of a child use: root's files in it get
 * group read, directories group rwx. Created (mode) if missing. 0, or -1 with err. */
int privdrop_own_dir(const char *path, uid_t uid, gid_t gid, mode_t mode, char *err,
                     size_t errlen);

#endif
