/* api_metrics: (being written) */
#include "api/api.h"

const struct api_route_table api_table_metrics = { NULL, 0 };
