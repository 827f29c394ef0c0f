/* sandbox: the scan service's system-call filter (R8.1). The service parses hostile mail; once
 * it is set up (listening, threads started), a libseccomp filter kills it on any call it never
 * needs: running a program (execve, fork, vfork, clone without CLONE_THREAD), changing ids or
 * capabilities, tracing, mounting, modules, namespaces, keyrings, BPF, clocks, reboot. A kill
 * ends the process (SIGSYS); its manager logs it and restarts it with backoff, and mail in
 * flight was never acknowledged, so the upstream MTA keeps it. SIGUSR2 is a self-test: the
 * service makes one forbidden call (mount) and dies if the filter is in force. */
#ifndef PORTCULLIS_SANDBOX_H
#define PORTCULLIS_SANDBOX_H

#include <stddef.h>

struct event;
struct event_base;

/* Installs the filter on every thread. 0, or -1 with err (the service runs without it and
 * says so: a kernel without seccomp). */
int sandbox_install(char *err, size_t errlen);
/* The SIGUSR2 self-test on base; the caller frees the event (NULL: none). */
struct event *sandbox_selftest_on(struct event_base *base);

#endif
