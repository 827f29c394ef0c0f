/* privdrop: see privdrop.h. */
#include "privdrop.h"

#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "util.h"

bool privdrop_needed(void) { return geteuid() == 0; }

int privdrop_lookup(const char *name, struct privuser *out, char *err, size_t errlen)
{
    struct passwd *pw;

    memset(out, 0, sizeof *out);
    if (name == NULL || *name == '\0' || strlen(name) > PRIVDROP_USER_MAX) {
        snprintf(err, errlen, "no user to run as (a system user name is required)");
        return -1;
    }
    errno = 0;
    pw = getpwnam(name);
    if (pw == NULL) {
        snprintf(err, errlen, "the system user '%s' does not exist: create it "
                              "(deploy/install-deps.sh does: useradd --system %s)", name, name);
        return -1;
    }
    if (pw->pw_uid == 0) {
        snprintf(err, errlen, "'%s' is root: a Portcullis daemon never runs as root (R8.1)",
                 name);
        return -1;
    }
    strlcpy_p(out->name, name, sizeof out->name);
    out->uid = pw->pw_uid;
    out->gid = pw->pw_gid;
    return 0;
}

int privdrop_to(const struct privuser *u, gid_t gid_override, char *err, size_t errlen)
{
    gid_t gid = gid_override != (gid_t)-1 ? gid_override : u->gid;
    uid_t ru, eu, su;
    gid_t rg, eg, sg;

    if (setgroups(1, &gid) != 0 || setresgid(gid, gid, gid) != 0 ||
        setresuid(u->uid, u->uid, u->uid) != 0) {
        snprintf(err, errlen, "cannot become %s: %s", u->name, strerror(errno));
        return -1;
    }
    if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0 || ru != u->uid ||
        eu != u->uid || su != u->uid || rg != gid || eg != gid || sg != gid) {
        snprintf(err, errlen, "cannot become %s: ids did not change", u->name);
        return -1;
    }
    if (setuid(0) == 0 || seteuid(0) == 0) {
        snprintf(err, errlen, "still able to become root after becoming %s", u->name);
        return -1;
    }
    return 0;
}

static uid_t s_uid;
static gid_t s_gid;
static bool s_shared;

/* Root's entries only: what another user already owns (the scan service's files inside the
 * manager's state directory) stays theirs. */
static int s_give(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (st->st_uid != 0 || flag == FTW_SL)
        return 0;
    if (lchown(path, s_uid, s_gid) != 0)
        return -1;
    if (s_shared) /* both processes of the child use it: the group may read (and dirs write) */
        (void)chmod(path, (st->st_mode & 07777) | (S_ISDIR(st->st_mode) ? 0070 : 0040));
    return 0;
}

int privdrop_own_dir(const char *path, uid_t uid, gid_t gid, mode_t mode, char *err,
                     size_t errlen)
{
    struct stat st;

    if (fs_mkdir_p(path, mode, err, errlen) != 0)
        return -1;
    if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: not a directory", path);
        return -1;
    }
    if (st.st_uid == 0) { /* first start (or root made it): handed over once, not every start */
        s_uid = uid;
        s_gid = gid;
        s_shared = (mode & 0020) != 0; /* group-writable: the shared trees */
        if (nftw(path, s_give, 32, FTW_PHYS) != 0) {
            snprintf(err, errlen, "%s: cannot hand it to uid %ld: %s", path, (long)uid,
                     strerror(errno));
            return -1;
        }
    }
    if ((st.st_uid == 0 || st.st_uid == uid) && (st.st_mode & 07777) != mode &&
        chmod(path, mode) != 0) {
        snprintf(err, errlen, "%s: chmod: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}
