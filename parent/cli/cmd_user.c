/* cmd_user: see cmd_user.h. Passwords come from standard input — a terminal is asked twice
 * with echo off, a pipe gives its first line — never from the command line, where ps shows
 * them to everyone. */
#include "cli/cmd_user.h"

#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "admin/admin_command.h"
#include "admin/admin_users.h"
#include "cli/cli_common.h"
#include "util.h"

#define PW_BUF (ADMIN_PASSWORD_MAX + 2)

void cmd_user_usage(FILE *f)
{
    fprintf(f,
        "  user list [--json]                   users of the API and console with their role\n"
        "  user add NAME --role R               a user (admin, operator or viewer); the password\n"
        "                                       is read from standard input\n"
        "  user role NAME R                     change the role\n"
        "  user passwd NAME                     new password from standard input (ends sessions)\n"
        "  user disable|enable NAME             a disabled user cannot log in (ends sessions)\n"
        "  user remove NAME                     (never the last enabled admin)\n"
        "  user token NAME [--label L] [--ttl-hours N]\n"
        "                                       a bearer token for scripts (default %d days);\n"
        "                                       printed once, only its hash is kept\n"
        "  user tokens [NAME] [--json]          live sessions and tokens\n"
        "  user revoke ID                       end a session or token\n",
        ADMIN_API_TOKEN_TTL_DEFAULT_S / 86400);
}

static int s_read_line(const char *prompt, char *buf, size_t n)
{
    bool tty = isatty(STDIN_FILENO);
    struct termios old, quiet;
    char *ok;

    if (tty) {
        fputs(prompt, stderr);
        if (tcgetattr(STDIN_FILENO, &old) == 0) {
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        }
    }
    ok = fgets(buf, (int)n, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    if (ok == NULL)
        return -1;
    if (strchr(buf, '\n') == NULL && !feof(stdin))
        return -1;  /* longer than any password we accept */
    buf[strcspn(buf, "\r\n")] = '\0';
    return 0;
}

/* The new password into pw (PW_BUF); 0 ok, 2 with a message. */
static int s_password(char *pw)
{
    char again[PW_BUF];

    if (s_read_line("password: ", pw, PW_BUF) != 0) {
        fprintf(stderr, "portcullis: no password on standard input (at most %d characters)\n",
                ADMIN_PASSWORD_MAX);
        return 2;
    }
    if (isatty(STDIN_FILENO)) {
        if (s_read_line("again: ", again, sizeof again) != 0 || strcmp(pw, again) != 0) {
            sodium_memzero(again, sizeof again);
            fprintf(stderr, "portcullis: the passwords differ\n");
            return 2;
        }
        sodium_memzero(again, sizeof again);
    }
    return 0;
}

/* Prints the outcome, writes the audit row; the exit status. */
static int s_done(PGconn *db, int rc, const char *action, const char *target, const char *err,
                  const char *ok_text)
{
    char actor[CLI_ACTOR_MAX];

    admin_audit(db, cli_actor(actor, sizeof actor), action, target, rc == 0,
                rc == 0 ? "" : err);
    if (rc != 0)
        return cli_refused(err);
    printf("%s\n", ok_text);
    return 0;
}

static int s_list(PGconn *db, bool json)
{
    char err[512];
    json_t *o = admin_user_list(db, err, sizeof err), *u;
    size_t i;

    if (o == NULL)
        return cli_refused(err);
    if (json) {
        json_dumpf(o, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
    } else {
        printf("%-24s %-9s %-9s %-20s %s\n", "NAME", "ROLE", "STATE", "CREATED", "LAST LOG-IN");
        json_array_foreach(json_object_get(o, "users"), i, u) {
            const char *last = json_string_value(json_object_get(u, "last_login"));
            printf("%-24s %-9s %-9s %-20s %s\n", json_string_value(json_object_get(u, "name")),
                   json_string_value(json_object_get(u, "role")),
                   json_is_true(json_object_get(u, "disabled")) ? "disabled" : "enabled",
                   json_string_value(json_object_get(u, "created_at")), last ? last : "never");
        }
    }
    json_decref(o);
    return 0;
}

static int s_tokens(PGconn *db, bool json, int argc, char **argv)
{
    char err[512];
    int64_t uid = 0;
    json_t *o, *t;
    size_t i;

    if (argc > 1) {
        cmd_user_usage(stderr);
        return 2;
    }
    if (argc == 1) {
        int rc = admin_user_id(db, argv[0], &uid, err, sizeof err);
        if (rc != 0)
            return rc < 0 ? 1 : cli_refused(err);
    }
    if ((o = admin_credential_list(db, uid, NULL, err, sizeof err)) == NULL)
        return cli_refused(err);
    if (json) {
        json_dumpf(o, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
    } else {
        printf("%-6s %-20s %-8s %-20s %-20s %s\n", "ID", "USER", "KIND", "EXPIRES", "LAST USED",
               "LABEL");
        json_array_foreach(json_object_get(o, "tokens"), i, t) {
            const char *last = json_string_value(json_object_get(t, "last_used"));
            printf("%-6lld %-20s %-8s %-20s %-20s %s\n",
                   (long long)json_integer_value(json_object_get(t, "id")),
                   json_string_value(json_object_get(t, "user")),
                   json_string_value(json_object_get(t, "kind")),
                   json_string_value(json_object_get(t, "expires_at")), last ? last : "never",
                   json_string_value(json_object_get(t, "label")));
        }
    }
    json_decref(o);
    return 0;
}

static int s_token(PGconn *db, int argc, char **argv)
{
    const char *name = argv[0], *label = "";
    int64_t ttl_h = ADMIN_API_TOKEN_TTL_DEFAULT_S / 3600, uid, id;
    char err[512], secret[ADMIN_CRED_SECRET_HEX + 1], expires[40], actor[CLI_ACTOR_MAX];
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--label") == 0 && i + 1 < argc) {
            label = argv[++i];
        } else if (strcmp(argv[i], "--ttl-hours") == 0 && i + 1 < argc &&
                   parse_int64(argv[i + 1], &ttl_h) == 0 && ttl_h >= 1 &&
                   ttl_h <= ADMIN_API_TOKEN_TTL_MAX_S / 3600) {
            i++;
        } else {
            fprintf(stderr, "portcullis: user token: --label TEXT, --ttl-hours 1..%d\n",
                    ADMIN_API_TOKEN_TTL_MAX_S / 3600);
            return 2;
        }
    }
    if ((rc = admin_user_id(db, name, &uid, err, sizeof err)) != 0)
        return rc < 0 ? 1 : cli_refused(err);
    rc = admin_credential_create(db, uid, "token", label, ttl_h * 3600, secret, expires, &id, err,
                                 sizeof err);
    admin_audit(db, cli_actor(actor, sizeof actor), "token create", name, rc == 0,
                rc == 0 ? label : err);
    if (rc != 0)
        return cli_refused(err);
    printf("%s\n", secret);
    fprintf(stderr, "token %lld for %s, valid until %s; it is shown only now\n", (long long)id,
            name, expires);
    sodium_memzero(secret, sizeof secret);
    return 0;
}

int cmd_user(PGconn *db, bool json, int argc, char **argv)
{
    char err[512], pw[PW_BUF], text[256];
    int rc;

    if (argc == 1 && strcmp(argv[0], "list") == 0)
        return s_list(db, json);
    if (argc >= 1 && strcmp(argv[0], "tokens") == 0)
        return s_tokens(db, json, argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[0], "token") == 0)
        return s_token(db, argc - 1, argv + 1);
    if (argc == 4 && strcmp(argv[0], "add") == 0 && strcmp(argv[2], "--role") == 0) {
        if ((rc = s_password(pw)) != 0)
            return rc;
        rc = admin_user_add(db, argv[1], argv[3], pw, err, sizeof err);
        sodium_memzero(pw, sizeof pw);
        snprintf(text, sizeof text, "user %s added with role %s", argv[1], argv[3]);
        return s_done(db, rc, "user add", argv[1], err, text);
    }
    if (argc == 3 && strcmp(argv[0], "role") == 0) {
        rc = admin_user_update(db, argv[1], argv[2], NULL, -1, err, sizeof err);
        snprintf(text, sizeof text, "user %s now has role %s", argv[1], argv[2]);
        return s_done(db, rc, "user change", argv[1], err, text);
    }
    if (argc == 2 && strcmp(argv[0], "passwd") == 0) {
        if ((rc = s_password(pw)) != 0)
            return rc;
        rc = admin_user_update(db, argv[1], NULL, pw, -1, err, sizeof err);
        sodium_memzero(pw, sizeof pw);
        snprintf(text, sizeof text, "password of %s changed; its sessions and tokens ended",
                 argv[1]);
        return s_done(db, rc, "user change", argv[1], err, text);
    }
    if (argc == 2 && (strcmp(argv[0], "disable") == 0 || strcmp(argv[0], "enable") == 0)) {
        bool off = argv[0][0] == 'd';
        rc = admin_user_update(db, argv[1], NULL, NULL, off ? 1 : 0, err, sizeof err);
        snprintf(text, sizeof text, "user %s %s", argv[1],
                 off ? "disabled; its sessions and tokens ended" : "enabled");
        return s_done(db, rc, "user change", argv[1], err, text);
    }
    if (argc == 2 && strcmp(argv[0], "remove") == 0) {
        rc = admin_user_remove(db, argv[1], err, sizeof err);
        snprintf(text, sizeof text, "user %s removed", argv[1]);
        return s_done(db, rc, "user remove", argv[1], err, text);
    }
    if (argc == 2 && strcmp(argv[0], "revoke") == 0) {
        int64_t id;
        if (parse_int64(argv[1], &id) != 0 || id < 1) {
            fprintf(stderr, "portcullis: user revoke: ID is a number from `user tokens`\n");
            return 2;
        }
        rc = admin_credential_revoke(db, 0, id, err, sizeof err);
        snprintf(text, sizeof text, "token %s revoked", argv[1]);
        return s_done(db, rc, "token revoke", argv[1], err, text);
    }
    cmd_user_usage(stderr);
    return 2;
}
