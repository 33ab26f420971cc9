/* file.c: being written */
