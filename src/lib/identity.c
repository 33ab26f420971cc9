/* identity.c: being written */
