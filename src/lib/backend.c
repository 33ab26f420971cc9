/* backend.c: being written */
