/* scsctl.h - shared bits of the scsctl subcommands. */
#ifndef SCSCTL_H
#define SCSCTL_H

#include <stddef.h>
#include <stdint.h>
#include "scs/err.h"

struct scsctl_opts {
	const char *passphrase_file;   /* --passphrase-file, NULL if not given */
};
extern struct scsctl_opts scsctl;

/* Print "scsctl: <message>" and return 1 (the exit status). */
int scsctl_fail(const scs_err *e);
int scsctl_failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print a usage line for a subcommand to stderr and return 1. */
int scsctl_usage(const char *line);
/* If argv[*i] is "--remote R" or "--remote=R": set *remote (when remote is
 * not NULL), step *i past it and return 1; else return 0. */
int scsctl_remote_arg(int argc, char **argv, int *i, const char **remote);

/* Open REMOTE (NULL: the default) without the passphrase (verified
 * keyring, membership checked): 0, or 1 after printing the message. */
struct scs_vault;
int scsctl_open_public(const char *remote, struct scs_vault **v);
/* A Unix time as "YYYY-MM-DD" (or "YYYY-MM-DD HH:MM UTC" with_time). */
void scsctl_date(int64_t t, int with_time, char *out, size_t cap);
struct scs_rekey_scan;
/* A byte count for people: "1.2 MiB". */
void scsctl_human(uint64_t n, char *out, size_t cap);
/* The "re-key: ..." line for status (rekey.c), followed from epoch 2 on by a
 * second line, the progress bar; no keys needed. */
/* scsctl rekey rotate (member.c: a keyring change like the others). */
int scsctl_rotate(int argc, char **argv);
int scsctl_rekey_line(struct scs_vault *v, char *out, size_t cap, struct scs_rekey_scan *sc,
		      scs_err *err);

/* Find PATH (plaintext, inside the group; "" the root) from the root: its
 * remote path, parent dir id, own dir id (directories), mode and display
 * form "/a/b".  0, 1 after printing the message, 2 if the directory id of
 * display is missing or damaged (nothing printed).  rpath and display:
 * SCS_RPATH_MAX bytes. */
struct scs_dirctx;
int scsctl_resolve(struct scs_dirctx *d, const uint8_t *root, const char *path, char *rpath,
		   uint8_t *pid, uint8_t *id, uint32_t *mode, char *display);

int id_main(int argc, char **argv);
int init_main(int argc, char **argv);
int join_main(int argc, char **argv);
int log_main(int argc, char **argv);
int member_main(int argc, char **argv);
int rekey_main(int argc, char **argv);
int status_main(int argc, char **argv);
int verify_main(int argc, char **argv);
int forget_main(int argc, char **argv);
int auth_main(int argc, char **argv);

#endif
