/* api_config: (being written) */
#include "api/api.h"

const struct api_route_table api_table_config = { NULL, 0 };
