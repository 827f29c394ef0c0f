/* portcullis-mta: the one privileged piece of a child (R8.1, R8.2). The manager runs as
 * portcullis; flushing the MTA's queue and applying its settings need root. This helper,
 * installed setuid root and executable by the group portcullis only (chown root:portcullis,
 * chmod 4750), runs a fixed set of named actions and nothing else:
 *   portcullis-mta flush ADAPTER
 *   portcullis-mta postconf ADAPTER NAME=VALUEs...   (the five mta.* retry parameters only)
 *   portcullis-mta reload ADAPTER
 * ADAPTER is an mta.adapter value (postfix, postfix:/DIR, local); "local" runs the commands of
 * /etc/portcullis/child.conf, a file root writes, never what the caller says. Everything the
 * caller gives is checked before the helper becomes root; the environment is replaced; the
 * programs are found in fixed directories. Built without sanitizers and small on purpose. */
#include <errno.h>
#include <grp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mta_adapter.h"

#define HELPER_LOCAL_CONF "/etc/portcullis/child.conf"
#define HELPER_ARGS_MAX 32
#define HELPER_LINE_MAX 1024

static const char *const s_params[] = { "queue_run_delay", "minimal_backoff_time",
                                        "maximal_backoff_time", "maximal_queue_lifetime",
                                        "bounce_queue_lifetime" };

static void s_fail(const char *fmt, const char *a)
{
    fprintf(stderr, "portcullis-mta: ");
    fprintf(stderr, fmt, a);
    fputc('\n', stderr);
    _exit(2);
}

/* NAME=DIGITSs with NAME one of the five. */
static bool s_param_ok(const char *p)
{
    for (size_t i = 0; i < sizeof s_params / sizeof s_params[0]; i++) {
        size_t n = strlen(s_params[i]), d;
        if (strncmp(p, s_params[i], n) != 0 || p[n] != '=')
            continue;
        d = strspn(p + n + 1, "0123456789");
        return d >= 1 && d <= 10 && strcmp(p + n + 1 + d, "s") == 0;
    }
    return false;
}

static const char *s_find(const char *prog, char *buf, size_t n)
{
    static const char *const dirs[] = { "/usr/sbin", "/usr/bin", "/sbin", "/bin" };

    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(buf, n, "%s/%s", dirs[i], prog);
        if (access(buf, X_OK) == 0)
            return buf;
    }
    s_fail("%s not found in /usr/sbin, /usr/bin, /sbin or /bin", prog);
    return NULL;
}

/* The value of key in the root-owned local configuration; "" if unset. */
static void s_local(const char *key, char *out, size_t n)
{
    struct stat st;
    char line[HELPER_LINE_MAX];
    FILE *f = fopen(HELPER_LOCAL_CONF, "r");

    out[0] = '\0';
    if (f == NULL || fstat(fileno(f), &st) != 0 || st.st_uid != 0 || (st.st_mode & 022))
        s_fail("mta.adapter local needs %s, owned by root and writable by root only",
               HELPER_LOCAL_CONF);
    while (fgets(line, sizeof line, f) != NULL) {
        char *k = line + strspn(line, " \t"), *eq = strchr(k, '='), *v, *e;
        if (*k == '#' || eq == NULL)
            continue;
        e = eq;
        while (e > k && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - k) != strlen(key) || strncmp(k, key, strlen(key)) != 0)
            continue;
        v = eq + 1 + strspn(eq + 1, " \t");
        v[strcspn(v, "\r\n")] = '\0';
        snprintf(out, n, "%s", v);
    }
    fclose(f);
}

int main(int argc, char **argv)
{
    static char *const env[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", NULL };
    char *av[HELPER_ARGS_MAX + 1], prog[256], cmd[HELPER_LINE_MAX], err[256];
    struct mta_adapter ad;
    const char *action;
    int n = 0;

    if (argc < 3)
        s_fail("usage: portcullis-mta flush|postconf|reload ADAPTER [NAME=VALUE...]%s", "");
    action = argv[1];
    if (strcmp(action, "flush") != 0 && strcmp(action, "postconf") != 0 &&
        strcmp(action, "reload") != 0)
        s_fail("unknown action '%.32s': flush, postconf or reload", action);
    if (mta_adapter_parse(argv[2], &ad, err, sizeof err) != 0)
        s_fail("%s", err);
    if (ad.kind == MTA_ADAPTER_NONE)
        s_fail("mta.adapter none: %s", "nothing to run");
    if (strcmp(action, "postconf") == 0 ? argc < 4 || argc > 3 + 5 : argc != 3)
        s_fail("wrong number of arguments for %s", action);
    for (int i = 3; i < argc; i++)
        if (!s_param_ok(argv[i]))
            s_fail("not an mta.* retry parameter: %.64s", argv[i]);
    if (ad.kind == MTA_ADAPTER_LOCAL) {
        char key[64];
        snprintf(key, sizeof key, "mta_%s_command", action);
        s_local(key, cmd, sizeof cmd);
        if (cmd[0] == '\0')
            s_fail("%s has no mta_%s_command", HELPER_LOCAL_CONF);
        for (char *save = NULL, *w = strtok_r(cmd, " \t", &save); w != NULL && n < HELPER_ARGS_MAX - 6;
             w = strtok_r(NULL, " \t", &save))
            av[n++] = w;
        if (n == 0 || av[0][0] != '/')
            s_fail("the local %s command must start with an absolute path", action);
        snprintf(prog, sizeof prog, "%s", av[0]);
    } else {
        const char *p = action[0] == 'f' ? "postqueue" : action[0] == 'p' ? "postconf" : "postfix";
        s_find(p, prog, sizeof prog);
        av[n++] = (char *)p;
        if (ad.dir[0] != '\0') {
            av[n++] = "-c";
            av[n++] = ad.dir;
        }
        av[n++] = action[0] == 'f' ? "-f" : action[0] == 'p' ? "-e" : "reload";
    }
    for (int i = 3; i < argc; i++)
        av[n++] = argv[i];
    av[n] = NULL;
    /* Only now root, for the exec alone (Postfix checks the real uid too). */
    if (geteuid() == 0 && (setgroups(0, NULL) != 0 || setresgid(0, 0, 0) != 0 ||
                           setresuid(0, 0, 0) != 0))
        s_fail("cannot become root: %s", strerror(errno));
    execve(prog, av, env);
    s_fail("exec failed: %s", strerror(errno));
    return 2;
}
