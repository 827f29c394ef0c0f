/* cli_actor: see cli_actor.h. */
#include "cli/cli_actor.h"

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
