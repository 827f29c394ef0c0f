/* api_logs: (being written) */
#include "api/api.h"

const struct api_route_table api_table_logs = { NULL, 0 };
