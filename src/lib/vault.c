/* vault.c: being written */
