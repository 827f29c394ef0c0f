/* api_children: (being written) */
#include "api/api.h"

const struct api_route_table api_table_children = { NULL, 0 };
