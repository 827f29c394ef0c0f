/* settings_table: THE list of cluster-wide settings (R6.1). One row per setting:
 *   X(ID, section, name, type, default, min, max, unit, description)
 * For INT the range bounds the value; for BOOL it is ignored; for STRING it bounds the length.
 * The parent validates with it, the child applies with it, the CLI describes from it.
 * Per-host bootstrap values (addresses, directories, keys) live in parent.conf / child.conf. */
#ifndef PORTCULLIS_SETTINGS_TABLE_H
#define PORTCULLIS_SETTINGS_TABLE_H

#define PORTCULLIS_SETTINGS(X)                                                                   \
    X(SMTP_MAX_MESSAGE_SIZE, "smtp", "max_message_size", INT, "52428800", 1024, 2147483647,      \
      "bytes", "largest message the scan service accepts; larger ones get 552")                  \
    X(SMTP_MEMORY_MAX, "smtp", "message_memory_max", INT, "268435456", 1048576, 2147483647,      \
      "bytes", "message bytes all sessions together may hold in memory; a message arriving "   \
      "past it is written to an unnamed 0600 file and read from there (R8.5)")                 \
    X(SMTP_MAX_LINE_LENGTH, "smtp", "max_line_length", INT, "65536", 1000, 1048576, "bytes",     \
      "longest text line in a message (RFC 5321 says 1000; real mail breaks it)")                \
    X(SMTP_MAX_CONNECTIONS_PER_ADDRESS, "smtp", "max_connections_per_address", INT, "128", 1,    \
      100000, "connections", "sessions from one client address at once; more get 421 (R8.8)")  \
    X(SMTP_MAX_RECIPIENTS, "smtp", "max_recipients", INT, "1000", 1, 100000, "recipients",       \
      "recipients accepted per transaction; more get 452 and are retried by the upstream MTA")   \
    X(SMTP_MAX_CONNECTIONS, "smtp", "max_connections", INT, "256", 1, 100000, "connections",     \
      "concurrent upstream SMTP sessions; more get 421")                                         \
    X(SMTP_COMMAND_TIMEOUT_S, "smtp", "command_timeout_s", INT, "300", 1, 3600, "seconds",       \
      "idle time allowed between upstream commands")                                            \
    X(SMTP_DATA_TIMEOUT_S, "smtp", "data_timeout_s", INT, "600", 1, 3600, "seconds",             \
      "idle time allowed while the upstream sends message content")                             \
    X(SMTP_DOWNSTREAM_TIMEOUT_S, "smtp", "downstream_timeout_s", INT, "300", 1, 3600, "seconds", \
      "time allowed for each downstream MTA reply (connect included)")                          \
    X(SMTP_SESSION_TIMEOUT_S, "smtp", "session_timeout_s", INT, "3600", 10, 86400, "seconds",    \
      "longest an upstream SMTP session may last, whatever it does; then 421 (R8.5)")           \
    X(SMTP_BARE_NEWLINE, "smtp", "bare_newline", STRING, "reject", 6, 9, "reject|normalize",     \
      "a bare LF or CR in a command or message: reject it, or normalize it to CRLF; never an "  \
      "end of data (R8.5)")                                                                      \
    X(SMTP_XFORWARD_HOSTS, "smtp", "xforward_hosts", STRING, "127.0.0.0/8 ::1", 0, 1024,         \
      "networks", "clients allowed to send XFORWARD (blank- or comma-separated; R8.5)")          \
    X(SMART_SCAN_QUERY_TIMEOUT_MS, "smart_scan", "query_timeout_ms", INT, "1500", 1, 60000, "ms", \
      "smart-protection look-up timeout (R2.6)")                                                 \
    X(SMART_SCAN_ENABLED, "smart_scan", "enabled", BOOL, "false", 0, 0, "",                    \
      "scan method: true = smart scan (hash look-ups), false = conventional (R2.1)")            \
    X(SMART_SCAN_URL, "smart_scan", "url", STRING, "", 0, 2048, "characters",                 \
      "smart-protection look-up service over HTTPS (R8.7), e.g. https://parent:7713/v1/lookup")                    \
    X(SMART_SCAN_SWITCH_TO_CONVENTIONAL, "smart_scan", "switch_to_conventional", BOOL, "true",   \
      0, 0, "", "switch to conventional scan when the server cannot be reached (R2.3)")         \
    X(SMART_SCAN_FAILURE_THRESHOLD, "smart_scan", "failure_threshold", INT, "10", 1, 10000,     \
      "failures", "look-up failures within the window that trigger the switch (R2.3)")          \
    X(SMART_SCAN_FAILURE_WINDOW_S, "smart_scan", "failure_window_s", INT, "180", 1, 86400,      \
      "seconds", "window for counting look-up failures (R2.3)")                                 \
    X(SMART_SCAN_AUTO_RETURN, "smart_scan", "auto_return", BOOL, "false", 0, 0, "",             \
      "return to smart scan by itself once the server answers again (R2.4)")                    \
    X(SMART_SCAN_AUTO_RETURN_AFTER_S, "smart_scan", "auto_return_after", INT, "600", 1, 604800, \
      "seconds", "how long the server must answer before the automatic return (R2.4)")         \
    X(WRS_ENABLED, "wrs", "enabled", BOOL, "true", 0, 0, "",                                    \
      "web reputation: rate the URLs of each message (block-lists, rating service) (R3.2)")    \
    X(WRS_URL, "wrs", "url", STRING, "", 0, 2048, "characters",                               \
      "the look-up service's URL rating over HTTPS (R8.7), e.g. https://parent:7713/v1/rate; "   \
      "empty = block-lists only")                                                                \
    X(WRS_SERVICE_URL, "wrs", "service_url", STRING, "", 0, 2048, "characters",                \
      "the rating service the parent's look-up service asks for the children (http or https)") \
    X(WRS_TIMEOUT_MS, "wrs", "timeout_ms", INT, "1500", 1, 60000, "ms",                        \
      "web-reputation rating service timeout; past it the service's ratings are skipped")     \
    X(ERS_ENABLED, "ers", "enabled", BOOL, "false", 0, 0, "",                                   \
      "email reputation: DNS block-list look-ups of the client address (R3.1)")               \
    X(ERS_ZONES, "ers", "zones", STRING, "", 0, 4096, "characters",                           \
      "block-list zones and the meaning of their answers (format in docs/ARCHITECTURE.md)")     \
    X(ERS_TIMEOUT_MS, "ers", "timeout_ms", INT, "2000", 1, 60000, "ms",                         \
      "DNS look-up timeout; on timeout the client counts as not listed (R3.1)")                 \
    X(ERS_CHECK_INTERVAL_S, "ers", "check_interval_s", INT, "60", 1, 3600, "seconds",           \
      "how often DNS reachability is checked (R3.1)")                                           \
    X(QUARANTINE_NOTIFY_THRESHOLD, "quarantine", "quarantine_notify_threshold", INT, "90", 0,    \
      100, "percent", "notify the administrator above this share of the quarantine quota; 0 disables (R5.11)") \
    X(ARCHIVE_NOTIFY_THRESHOLD, "archive", "archive_notify_threshold", INT, "90", 0, 100,        \
      "percent", "notify the administrator above this share of the archive quota; 0 disables (R5.11)") \
    X(MIME_MAX_DEPTH, "mime", "max_depth", INT, "30", 1, 1000, "levels",                     \
      "deepest MIME nesting parsed; deeper is a scan exception (mime_depth)")                   \
    X(MIME_MAX_PARTS, "mime", "max_parts", INT, "1000", 1, 100000, "parts",                     \
      "MIME parts per message; more is a scan exception (mime_parts)")                          \
    X(MIME_MAX_DECODED_SIZE, "mime", "max_decoded_size", INT, "104857600", 1024, 2147483647,    \
      "bytes", "decoded content per message; more is a scan exception (mime_size)")             \
    X(MIME_MAX_HEADERS, "mime", "max_headers", INT, "1000", 10, 100000, "headers",              \
      "header fields per part; more is a scan exception (mime_headers)")                        \
    X(MIME_MAX_HEADER_LENGTH, "mime", "max_header_length", INT, "65536", 998, 16777216, "bytes", \
      "longest header field (unfolded); longer is a scan exception (mime_header_length)")       \
    X(AV_ENABLED, "av", "enabled", BOOL, "true", 0, 0, "",                                      \
      "scan with the ClamAV engine (conventional scan)")                                        \
    X(AV_MAX_FILE_SIZE, "av", "max_file_size", INT, "26214400", 1024, 2147483647, "bytes",      \
      "largest file ClamAV scans; larger is a scan exception (av_limits), never passed unseen")  \
    X(AV_MAX_SCAN_SIZE, "av", "max_scan_size", INT, "104857600", 1024, 2147483647, "bytes",     \
      "data ClamAV reads per message, archives included; more is a scan exception (av_limits)") \
    X(AV_MAX_RECURSION, "av", "max_recursion", INT, "16", 1, 100, "levels",                     \
      "archive nesting ClamAV descends; deeper is a scan exception (av_limits)")                \
    X(AV_MAX_FILES, "av", "max_files", INT, "10000", 1, 1000000, "files",                       \
      "files ClamAV extracts per message; more is a scan exception (av_limits)")                \
    X(AV_SCAN_TIMEOUT_MS, "av", "scan_timeout_ms", INT, "120000", 100, 3600000, "ms",          \
      "time ClamAV may spend on one message; longer is a scan exception (av_timeout)")         \
    X(SCAN_THREADS, "scan", "threads", INT, "0", 0, 256, "threads",                             \
      "scan threads per child; 0 = one per core")                                               \
    X(MTA_QUEUE_RUN_DELAY, "mta", "queue_run_delay", INT, "900", 1, 86400, "seconds",          \
      "upstream Postfix: how often the queue manager scans the deferred queue (R4.1)")          \
    X(MTA_MINIMAL_BACKOFF_TIME, "mta", "minimal_backoff_time", INT, "900", 1, 604800, "seconds", \
      "upstream Postfix: first retry interval; at least queue_run_delay (R4.1, R4.2)")          \
    X(MTA_MAXIMAL_BACKOFF_TIME, "mta", "maximal_backoff_time", INT, "3600", 1, 604800, "seconds", \
      "upstream Postfix: largest retry interval (R4.1)")                                        \
    X(MTA_MAXIMAL_QUEUE_LIFETIME, "mta", "maximal_queue_lifetime", INT, "86400", 1, 8640000,    \
      "seconds", "upstream Postfix: how long a message is retried before it bounces (R4.1)")    \
    X(MTA_BOUNCE_QUEUE_LIFETIME, "mta", "bounce_queue_lifetime", INT, "0", 0, 8640000,          \
      "seconds", "upstream Postfix: lifetime of bounces (null sender); 0 = not retried (R4.1)") \
    X(MTA_APPLY, "mta", "apply", BOOL, "false", 0, 0, "",                                       \
      "children apply the mta.* retry settings to their upstream Postfix (R4.3); off: left alone") \
    X(MTA_ADAPTER, "mta", "adapter", STRING, "postfix", 4, 300, "adapter",                     \
      "how children flush and configure their MTA: postfix, postfix:/CONFIG/DIR, local (the "    \
      "commands in the child's own child.conf) or none; never a command line (R8.2)")           \
    X(SUPERVISE_CHECK_INTERVAL_S, "supervise", "check_interval_s", INT, "60", 1, 3600, "seconds", \
      "how often the manager checks the scan service (besides SIGCHLD) (R1.5)")                 \
    X(QUARANTINE_QUOTA_MB, "quarantine", "quota_mb", INT, "51200", 1, 102400, "MB",              \
      "disk quota of each child's quarantine directory; under 1024 is flagged (R5.7, R5.13)")    \
    X(ARCHIVE_QUOTA_MB, "archive", "quota_mb", INT, "10240", 1, 102400, "MB",                    \
      "disk quota of each child's archive directory; under 1024 is flagged (R5.7, R5.13)")       \
    X(QUOTA_LOW_WATER_PERCENT, "quota", "low_water_percent", INT, "80", 1, 99, "percent",       \
      "a purge over quota deletes oldest-first down to this share of the quota (R5.8)")          \
    X(QUOTA_CHECK_INTERVAL_S, "quota", "check_interval_s", INT, "21600", 10, 604800, "seconds",  \
      "how often the manager checks both directories against their quotas (R5.8)")              \
    X(QUOTA_VERIFY_INTERVAL_S, "quota", "verify_interval_s", INT, "86400", 60, 2592000, "seconds", \
      "how often a background walk verifies the usage counters and corrects drift (R5.9)")       \
    X(RETENTION_PURGE_TIME, "retention", "purge_time", STRING, "02:00", 5, 5, "HH:MM",           \
      "local time of the daily retention purge (R5.5)")                                          \
    X(RECONCILE_INTERVAL_S, "reconcile", "interval_s", INT, "86400", 60, 2592000, "seconds",     \
      "how often each child's stored files are reconciled with the parent's index (R5.3)")       \
    X(CLUSTER_COMMAND_TIMEOUT_S, "cluster", "command_timeout_s", INT, "30", 1, 3600, "seconds",  \
      "how long the parent waits for a child's answer to a command (R7.4)")                      \
    X(SPAM_ENABLED, "spam", "enabled", BOOL, "true", 0, 0, "",                                  \
      "compute each message's spam score from the anti-spam rules (R5.1)")                       \
    X(NOTIFY_ADMIN_ADDRESS, "notify", "admin_address", STRING, "", 0, 320, "characters",         \
      "administrator's e-mail address for notifications; empty: events and log lines only")     \
    X(NOTIFY_SMTP_URL, "notify", "smtp_url", STRING, "smtp://127.0.0.1:25", 1, 2048, "characters", \
      "mail server the parent sends notifications through (smtp:// or smtps://)")               \
    X(NOTIFY_FROM, "notify", "from", STRING, "portcullis@localhost", 3, 320, "characters",       \
      "sender address of notification mail")                                                    \
    X(CLUSTER_HEALTH_INTERVAL_S, "cluster", "health_interval_s", INT, "10", 1, 3600, "seconds",  \
      "how often each child reports health (R7.2)")

#endif
