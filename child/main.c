/* portcullis-child: one binary, two processes. Without arguments beyond -c it is the manager
 * (link to the parent, supervision); "portcullis-child scan …" is the scan service, which
 * the manager starts itself. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "manager/manager.h"
#include "scan/scan.h"
#include "util.h"

static int s_scan(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "listen", required_argument, NULL, 'l' },
        { "downstream", required_argument, NULL, 'd' },
        { "config", required_argument, NULL, 'c' },
        { "hostname", required_argument, NULL, 'H' },
        { "log-level", required_argument, NULL, 'v' },
        { "control-fd", required_argument, NULL, 'f' },
        { "spool", required_argument, NULL, 's' },
        { "signatures", required_argument, NULL, 'S' },
        { "light-signatures", required_argument, NULL, 'L' },
        { "quarantine-dir", required_argument, NULL, 'Q' },
        { "archive-dir", required_argument, NULL, 'A' },
        { "dns-server", required_argument, NULL, 'D' },
        { NULL, 0, NULL, 0 },
    };
    struct scan_options o = { .listen = "127.0.0.1:10025", .downstream = "127.0.0.1:10026",
                              .config_path = NULL, .hostname = "localhost", .control_fd = -1,
                              .spool_dir = "/var/lib/portcullis/spool",
                              .signature_dir = "/var/lib/portcullis/signatures",
                              .quarantine_dir = "/var/lib/portcullis/quarantine",
                              .archive_dir = "/var/lib/portcullis/archive" };
    enum log_level level = LOG_LEVEL_INFO;
    int64_t fd;
    int opt;

    log_init("portcullis-scan", LOG_LEVEL_INFO);
    raise_nofile_limit();
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'l': o.listen = optarg; break;
        case 'd': o.downstream = optarg; break;
        case 'c': o.config_path = optarg; break;
        case 'H': o.hostname = optarg; break;
        case 's': o.spool_dir = optarg; break;
        case 'S': o.signature_dir = optarg; break;
        case 'L': o.light_signature_dir = optarg; break;
        case 'Q': o.quarantine_dir = optarg; break;
        case 'A': o.archive_dir = optarg; break;
        case 'D': o.dns_server = optarg; break;
        case 'v':
            if (log_level_parse(optarg, &level) != 0)
                fatal("--log-level: error, warning, info or debug");
            log_set_level(level);
            break;
        case 'f':
            if (parse_int64(optarg, &fd) != 0 || fd < 0 || fd > 1024)
                fatal("--control-fd: a file descriptor number is required");
            o.control_fd = (int)fd;
            break;
        default:
            fprintf(stderr, "usage: portcullis-child scan --listen HOST:PORT --downstream HOST:PORT "
                            "[--config FILE] [--hostname NAME] [--spool DIR] [--signatures DIR] "
                            "[--light-signatures DIR] "
                            "[--quarantine-dir DIR] [--archive-dir DIR] [--dns-server IP[:PORT]] "
                            "[--control-fd N] "
                            "[--log-level L]\n");
            return 2;
        }
    }
    return scan_main(&o);
}

int main(int argc, char **argv)
{
    const char *path = getenv(CHILD_CONF_ENV);
    int opt;

    if (argc >= 2 && strcmp(argv[1], "scan") == 0)
        return s_scan(argc - 1, argv + 1);
    while ((opt = getopt(argc, argv, "c:h")) != -1) {
        switch (opt) {
        case 'c': path = optarg; break;
        case 'h':
            printf("usage: portcullis-child [-c child.conf]\n");
            return 0;
        default:
            fprintf(stderr, "usage: portcullis-child [-c child.conf]\n");
            return 2;
        }
    }
    return manager_main(path != NULL ? path : CHILD_CONF_DEFAULT);
}
