/* api_stored: (being written) */
#include "api/api.h"

const struct api_route_table api_table_stored = { NULL, 0 };
