/* api_fleet: (being written) */
#include "api/api.h"

const struct api_route_table api_table_fleet = { NULL, 0 };
