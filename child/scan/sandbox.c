/* sandbox: see sandbox.h. A deny list with a kill, rather than an allow list: libclamav,
 * GMime, libcurl, libevent and glibc between them use a wide and version-dependent set of calls
 * a list would have to track, while what an attacker needs to leave the process (a program, an
 * id, the kernel's surfaces) is short and stable. */
#include "scan/sandbox.h"

#include <errno.h>
#include <event2/event.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"

static const int s_killed[] = {
    SCMP_SYS(execve), SCMP_SYS(execveat), SCMP_SYS(fork), SCMP_SYS(vfork),
    SCMP_SYS(setuid), SCMP_SYS(setgid), SCMP_SYS(setreuid), SCMP_SYS(setregid),
    SCMP_SYS(setresuid), SCMP_SYS(setresgid), SCMP_SYS(setgroups), SCMP_SYS(setfsuid),
    SCMP_SYS(setfsgid), SCMP_SYS(capset),
    SCMP_SYS(mount), SCMP_SYS(umount2), SCMP_SYS(pivot_root), SCMP_SYS(chroot),
    SCMP_SYS(init_module), SCMP_SYS(finit_module), SCMP_SYS(delete_module),
    SCMP_SYS(kexec_load), SCMP_SYS(kexec_file_load), SCMP_SYS(reboot), SCMP_SYS(swapon),
    SCMP_SYS(swapoff), SCMP_SYS(bpf), SCMP_SYS(perf_event_open), SCMP_SYS(keyctl),
    SCMP_SYS(add_key), SCMP_SYS(request_key), SCMP_SYS(unshare), SCMP_SYS(setns),
    SCMP_SYS(iopl), SCMP_SYS(ioperm), SCMP_SYS(acct), SCMP_SYS(settimeofday),
    SCMP_SYS(clock_settime), SCMP_SYS(clock_adjtime), SCMP_SYS(adjtimex),
    SCMP_SYS(sethostname), SCMP_SYS(setdomainname), SCMP_SYS(quotactl), SCMP_SYS(userfaultfd),
    SCMP_SYS(open_by_handle_at), SCMP_SYS(mknod), SCMP_SYS(mknodat), SCMP_SYS(personality),
#if !defined(__SANITIZE_ADDRESS__)
    /* LeakSanitizer (sanitizer builds only) stops the threads with a ptrace'd helper */
    SCMP_SYS(ptrace), SCMP_SYS(process_vm_readv), SCMP_SYS(process_vm_writev), SCMP_SYS(kcmp),
#endif
};

int sandbox_install(char *err, size_t errlen)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    int rc;

    if (ctx == NULL) {
        snprintf(err, errlen, "seccomp_init failed");
        return -1;
    }
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1); /* every thread, not just this one */
    for (size_t i = 0; rc == 0 && i < sizeof s_killed / sizeof s_killed[0]; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, s_killed[i], 0);
#if !defined(__SANITIZE_ADDRESS__)
    /* threads only: a clone without CLONE_THREAD is a new process */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0));
#endif
    /* clone3 passes its flags in memory a filter cannot read: ENOSYS, and glibc uses clone */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    if (rc == 0)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc != 0) {
        snprintf(err, errlen, "seccomp: %s", strerror(-rc));
        return -1;
    }
    return 0;
}

static void s_selftest(evutil_socket_t fd, short what, void *arg)
{
    long r;

    (void)fd;
    (void)what;
    (void)arg;
    log_warn("sandbox self-test (SIGUSR2): calling mount(2), which the filter forbids");
    r = syscall(SYS_mount, NULL, NULL, NULL, 0, NULL);
    log_err("sandbox self-test: mount(2) returned %ld (%s): the system-call filter is NOT in "
            "force", r, strerror(errno));
}

struct event *sandbox_selftest_on(struct event_base *base)
{
    struct event *ev = evsignal_new(base, SIGUSR2, s_selftest, NULL);

    if (ev != NULL)
        evsignal_add(ev, NULL);
    return ev;
}
