/* backend_local.c: being written */
