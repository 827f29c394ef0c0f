/* mta_action: see mta_action.h. */
#include "manager/mta_action.h"

#include <stdio.h>
#include <string.h>

#include "mta_adapter.h"
#include "util.h"

void mta_local_from_conf(const conf_t *conf, struct mta_local *out)
{
    const char *v;

    memset(out, 0, sizeof *out);
    if ((v = conf_get(conf, "mta_flush_command")) != NULL)
        strlcpy_p(out->flush, v, sizeof out->flush);
    if ((v = conf_get(conf, "mta_postconf_command")) != NULL)
        strlcpy_p(out->postconf, v, sizeof out->postconf);
    if ((v = conf_get(conf, "mta_reload_command")) != NULL)
        strlcpy_p(out->reload, v, sizeof out->reload);
}

const char *mta_action_name(enum mta_action a)
{
    return a == MTA_ACTION_FLUSH ? "flush" : a == MTA_ACTION_POSTCONF ? "postconf" : "reload";
}

static void s_desc(const struct runcmd_argv *av, char *desc, size_t desclen)
{
    size_t n = 0;

    desc[0] = '\0';
    for (int i = 0; i < av->argc && n < desclen; i++)
        n += (size_t)snprintf(desc + n, desclen - n, "%s%s", i ? " " : "", av->argv[i]);
}

/* R8.1: the manager gave up root; the setuid helper checks the action again and runs it.
 * av becomes the helper's argv; desc keeps saying what runs, and through what. */
static void s_through_helper(const char *helper, enum mta_action a, const char *adapter,
                             const char *const *params, size_t nparams, struct runcmd_argv *av,
                             char *desc, size_t desclen)
{
    size_t dl = strlen(desc);

    runcmd_argv_free(av);
    av->argv[av->argc++] = xstrdup(helper);
    av->argv[av->argc++] = xstrdup(mta_action_name(a));
    av->argv[av->argc++] = xstrdup(adapter);
    for (size_t i = 0; i < nparams && av->argc < RUNCMD_ARGV_MAX; i++)
        av->argv[av->argc++] = xstrdup(params[i]);
    av->argv[av->argc] = NULL;
    snprintf(desc + dl, dl < desclen ? desclen - dl : 0, " (through portcullis-mta)");
}

int mta_action_argv(const settings_t *s, const struct mta_local *local, enum mta_action a,
                    const char *const *params, size_t nparams, struct runcmd_argv *av,
                    char *desc, size_t desclen, char *err, size_t errlen)
{
    const char *text = settings_str(s, SETTING_MTA_ADAPTER);
    struct mta_adapter ad;
    const char *words[RUNCMD_ARGV_MAX];
    size_t n = 0;
    char why[256];

    if (mta_adapter_parse(text, &ad, why, sizeof why) != 0) {
        snprintf(err, errlen, "mta.adapter \"%.64s\": %s", text, why);
        return -1;
    }
    if (ad.kind == MTA_ADAPTER_NONE) {
        snprintf(desc, desclen, "mta.adapter is none");
        return 0;
    }
    if (ad.kind == MTA_ADAPTER_LOCAL && local->helper[0] != '\0') {
        /* the helper reads /etc/portcullis/child.conf itself: root's word, not ours */
        memset(av, 0, sizeof *av);
        snprintf(desc, desclen, "child.conf mta_%s_command", mta_action_name(a));
        s_through_helper(local->helper, a, text, params, nparams, av, desc, desclen);
        return 1;
    }
    if (ad.kind == MTA_ADAPTER_LOCAL) {
        const char *cmd = a == MTA_ACTION_FLUSH      ? local->flush
                          : a == MTA_ACTION_POSTCONF ? local->postconf
                                                     : local->reload;
        if (cmd[0] == '\0') {
            snprintf(desc, desclen, "mta.adapter is local and child.conf has no mta_%s_command",
                     mta_action_name(a));
            return 0;
        }
        if (runcmd_split(cmd, params, nparams, av, err, errlen) != 0)
            return -1;
        s_desc(av, desc, desclen);
        return 1;
    }
    /* Postfix: fixed programs, the configuration directory when one is named */
    words[n++] = a == MTA_ACTION_FLUSH ? "postqueue" : a == MTA_ACTION_POSTCONF ? "postconf"
                                                                                : "postfix";
    if (ad.dir[0] != '\0') {
        words[n++] = "-c";
        words[n++] = ad.dir;
    }
    words[n++] = a == MTA_ACTION_FLUSH ? "-f" : a == MTA_ACTION_POSTCONF ? "-e" : "reload";
    for (size_t i = 0; i < nparams && n < RUNCMD_ARGV_MAX; i++)
        words[n++] = params[i];
    memset(av, 0, sizeof *av);
    for (size_t i = 0; i < n; i++)
        av->argv[av->argc++] = xstrdup(words[i]);
    av->argv[av->argc] = NULL;
    s_desc(av, desc, desclen);
    if (local->helper[0] != '\0')
        s_through_helper(local->helper, a, text, params, nparams, av, desc, desclen);
    return 1;
}
