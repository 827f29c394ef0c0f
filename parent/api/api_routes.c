/* api_routes: the list of route tables; a module's routes appear in the API by being here. */
#include "api/api.h"

#include "util.h"

const struct api_route_table *const api_route_tables[] = {
    &api_table_session, &api_table_fleet, &api_table_metrics, &api_table_children,
    &api_table_config,  &api_table_stored, &api_table_logs,
};
const size_t api_route_tables_n = ARRAY_LEN(api_route_tables);
