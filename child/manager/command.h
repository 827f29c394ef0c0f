/* command: the manager's side of the parent's commands (R7.4, R5.4): each Command is answered
 * by exactly one CommandReply with its id. Built in: delete, fetch (a chunk of a stored file),
 * release (re-injection to the downstream MTA in a worker thread, so the loop never waits on
 * SMTP) and reconcile (a page of the stored files, for the parent to compare with its index).
 * Other modules add kinds with command_register. Stored files are found only by validated
 * names under the configured directories: nothing a command says can leave them. */
#ifndef PORTCULLIS_COMMAND_H
#define PORTCULLIS_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manager/mreport.h"
#include "wire.h"

#define COMMAND_FETCH_CHUNK (1u << 20)   /* bytes of one fetch reply: well under WIRE_MSG_MAX */
#define COMMAND_LIST_MAX 5000            /* stored files in one reconcile page */
#define COMMAND_SEARCH_MAX 100000        /* directory entries a file search may visit */
#define COMMAND_RELEASE_QUEUE_MAX 64     /* releases waiting for the worker; more: refused */
#define COMMAND_RECENT 32                /* answers kept to repeat for a repeated request id */
#define COMMAND_HANDLERS_MAX 16

typedef struct command command_t;
/* Sends one envelope to the parent: 0 sent, -1 not (not connected). */
typedef int (*command_send_fn)(void *arg, const envelope_t *env);
/* A registered kind: fills reply (id is set) and returns 0 to have it sent now, or returns 1
 * and answers later with command_reply(). */
typedef int (*command_handler_fn)(void *arg, const Portcullis__Command *cmd,
                                  Portcullis__CommandReply *reply);

struct command_conf {
    const char *quarantine_dir, *archive_dir;
    const char *downstream;          /* host:port of the downstream MTA (release) */
    const char *helo;                /* name sent in EHLO */
};

/* conf's strings must outlive the module. NULL with err filled. */
command_t *command_new(const struct command_conf *conf, mreport_t *mrep, command_send_fn send,
                       void *arg, char *err, size_t errlen);
void command_destroy(command_t **cp);
int command_register(command_t *c, const char *kind, command_handler_fn fn, void *arg);
/* One Command from the parent. */
void command_handle(command_t *c, const Portcullis__Command *cmd);
/* Called from the loop's timers: answers releases the worker has finished. */
void command_tick(command_t *c);
/* A later answer from a registered handler. */
void command_reply(command_t *c, uint64_t id, bool ok, const char *error, const char *detail);

#endif
