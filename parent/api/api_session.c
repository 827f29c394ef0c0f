/* api_session: (being written) */
#include "api/api.h"

const struct api_route_table api_table_session = { NULL, 0 };
