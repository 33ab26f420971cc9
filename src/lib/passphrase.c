/* passphrase.c: being written */
