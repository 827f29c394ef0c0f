/* cli_common: see cli_common.h. */
#include "cli/cli_common.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *cli_actor(char *buf, size_t n)
{
    struct passwd *pw = getpwuid(geteuid());
    const char *sudo = getenv("SUDO_USER");

    if (pw != NULL && sudo != NULL && *sudo && strcmp(sudo, pw->pw_name) != 0)
        snprintf(buf, n, "%s (sudo by %.40s)", pw->pw_name, sudo);
    else if (pw != NULL)
        snprintf(buf, n, "%s", pw->pw_name);
    else
        snprintf(buf, n, "uid %u", (unsigned)geteuid());
    return buf;
}

int cli_refused(const char *err)
{
    fprintf(stderr, "portcullis: %s\n", err);
    return strncmp(err, "database", 8) == 0 || strncmp(err, "cannot connect", 14) == 0 ? 1 : 2;
}

void cli_changed(const char *what, uint64_t version)
{
    if (version == 0)
        printf("%s: nothing to change\n", what);
    else
        printf("%s; configuration version %llu is being pushed to the children\n", what,
               (unsigned long long)version);
}
