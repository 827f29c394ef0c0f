/* manager: the child's long-lived process: the link to the parent (enrolment, configuration,
 * heartbeats, health) and the supervision of the scan service. */
#ifndef PORTCULLIS_MANAGER_H
#define PORTCULLIS_MANAGER_H

#define CHILD_CONF_DEFAULT "/etc/portcullis/child.conf"
#define CHILD_CONF_ENV "PORTCULLIS_CHILD_CONF"

/* Runs until SIGTERM/SIGINT; returns the exit status. */
int manager_main(const char *conf_path);

#endif
