/* scan: the scan service process: the ESMTP content filter between the upstream MTA and the
 * downstream MTA. Started and supervised by the child manager (child/manager). */
#ifndef PORTCULLIS_SCAN_H
#define PORTCULLIS_SCAN_H

struct scan_options {
    const char *listen;      /* "host:port" the upstream MTA connects to */
    const char *downstream;  /* "host:port" of the downstream (reinjection) MTA */
    const char *config_path; /* packed ConfigSnapshot written by the manager; may not exist */
    const char *hostname;    /* for the greeting and EHLO */
    const char *spool_dir;   /* report spool (R7.3), shipped by the manager */
    const char *signature_dir;  /* ClamAV signature files, watched for changes (R1.4) */
    const char *light_signature_dir; /* smart scan's light pattern (R2.1), watched; NULL: none */
    const char *quarantine_dir; /* quarantine and archive message files (R5.6) */
    const char *archive_dir;
    const char *dns_server;  /* email reputation resolver "IP[:PORT]"; NULL/"": resolv.conf */
    int control_fd;          /* stream socket to the manager (framed Envelopes); -1: none */
};

/* Runs the scan service until SIGTERM/SIGINT or the manager's socket closes; returns the
 * process exit status. */
int scan_main(const struct scan_options *opt);

#endif
