/* keyring.c: being written */
