int manager_placeholder_x;
