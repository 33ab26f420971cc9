/* crypto.c: being written */
