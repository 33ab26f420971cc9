/* passphrase.c - read the identity passphrase from a file or the terminal.
 *
 * The terminal path follows OpenBSD's readpassphrase(3): /dev/tty, echo
 * off, signal handlers that only note the signal so the terminal state is
 * restored before the signal is re-raised. */
#include "scs/passphrase.h"
#include "scs/crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#define PASS_BUF (SCS_PASSPHRASE_MAX + 4)
#define NO_PASSPHRASE_MSG "no passphrase: set SCSFS_PASSPHRASE_FILE or use --passphrase-file"

static int pass_alloc(struct scs_passphrase *p)
{
	p->buf = calloc(1, PASS_BUF);
	if (!p->buf)
		return -ENOMEM;
	(void)mlock(p->buf, PASS_BUF); /* best effort: keep off swap */
	p->len = 0;
	return 0;
}

void scs_passphrase_clear(struct scs_passphrase *p)
{
	if (!p || !p->buf)
		return;
	scs_cleanse(p->buf, PASS_BUF);
	munlock(p->buf, PASS_BUF);
	free(p->buf);
	p->buf = NULL;
	p->len = 0;
}

static void strip_newline(struct scs_passphrase *p)
{
	if (p->len && p->buf[p->len - 1] == '\n') {
		p->buf[--p->len] = '\0';
		if (p->len && p->buf[p->len - 1] == '\r')
			p->buf[--p->len] = '\0';
	}
}

static int read_pass_file(const char *path, struct scs_passphrase *p, scs_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int e = errno;
		return scs_err_set(err, -e, "cannot read passphrase file %s: %s", path, strerror(e));
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || S_ISDIR(st.st_mode)) {
		close(fd);
		return scs_err_set(err, -EISDIR, "passphrase file %s is not a file", path);
	}
	int rc = pass_alloc(p);
	if (rc < 0) {
		close(fd);
		return scs_err_set(err, rc, "out of memory");
	}
	/* Room for a maximal passphrase, "\r\n", and one byte that proves it is too long. */
	size_t cap = SCS_PASSPHRASE_MAX + 3, n = 0;
	for (;;) {
		ssize_t r = read(fd, p->buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			scs_passphrase_clear(p);
			return scs_err_set(err, -e, "cannot read passphrase file %s: %s", path, strerror(e));
		}
		if (r == 0 || (n += (size_t)r) == cap)
			break;
	}
	close(fd);
	p->len = n;
	p->buf[n] = '\0';
	strip_newline(p);
	if (p->len > SCS_PASSPHRASE_MAX) {
		scs_passphrase_clear(p);
		return scs_err_set(err, -EINVAL, "passphrase in %s is longer than %d bytes",
				   path, SCS_PASSPHRASE_MAX);
	}
	if (memchr(p->buf, '\0', p->len)) {
		scs_passphrase_clear(p);
		return scs_err_set(err, -EINVAL, "passphrase file %s contains a NUL byte", path);
	}
	return 0;
}

/* ---- terminal ---- */

static volatile sig_atomic_t got_signal[NSIG];
static const int tty_signals[] = { SIGALRM, SIGHUP, SIGINT, SIGPIPE, SIGQUIT,
				   SIGTERM, SIGTSTP, SIGTTIN, SIGTTOU };
#define NTTYSIG (sizeof tty_signals / sizeof tty_signals[0])

static void note_signal(int s)
{
	got_signal[s] = 1;
}

static int tty_read_line(int fd, const char *prompt, struct scs_passphrase *p)
{
	struct termios old, noecho;
	struct sigaction sa, saved[NTTYSIG];
	int have_termios = tcgetattr(fd, &old) == 0;
	int rc = 0;

	for (size_t i = 0; i < NTTYSIG; i++)
		got_signal[tty_signals[i]] = 0;
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;                 /* no SA_RESTART: read() returns EINTR */
	sa.sa_handler = note_signal;
	for (size_t i = 0; i < NTTYSIG; i++)
		sigaction(tty_signals[i], &sa, &saved[i]);

	if (have_termios) {
		noecho = old;
		noecho.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		noecho.c_lflag |= ICANON;
		(void)tcsetattr(fd, TCSAFLUSH, &noecho);
	}
	if (write(fd, prompt, strlen(prompt)) < 0) {
		/* the prompt is cosmetic; reading still works */
	}

	size_t n = 0;
	int toolong = 0;
	for (;;) {
		char c;
		ssize_t r = read(fd, &c, 1);
		if (r < 0) {
			if (errno == EINTR) {
				rc = -EINTR;
				break;
			}
			rc = -errno;
			break;
		}
		if (r == 0 || c == '\n' || c == '\r')
			break;
		if (n < SCS_PASSPHRASE_MAX)
			p->buf[n++] = c;
		else
			toolong = 1;
		c = 0;
	}
	p->buf[n] = '\0';
	p->len = n;
	if (write(fd, "\n", 1) < 0) {
		/* cosmetic */
	}
	if (have_termios)
		(void)tcsetattr(fd, TCSAFLUSH, &old);
	for (size_t i = 0; i < NTTYSIG; i++)
		sigaction(tty_signals[i], &saved[i], NULL);
	/* Deliver what arrived while the terminal was ours, now that it is restored. */
	for (size_t i = 0; i < NTTYSIG; i++)
		if (got_signal[tty_signals[i]]) {
			kill(getpid(), tty_signals[i]);
			if (tty_signals[i] != SIGTSTP && tty_signals[i] != SIGTTIN &&
			    tty_signals[i] != SIGTTOU)
				rc = -EINTR;
		}
	if (rc == 0 && toolong)
		rc = -EMSGSIZE;
	return rc;
}

static int read_pass_tty(const char *prompt, int flags, struct scs_passphrase *p, scs_err *err)
{
	int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return scs_err_set(err, -ENXIO, NO_PASSPHRASE_MSG);
	int rc = pass_alloc(p);
	if (rc < 0) {
		close(fd);
		return scs_err_set(err, rc, "out of memory");
	}
	rc = tty_read_line(fd, prompt ? prompt : "Passphrase: ", p);
	if (rc == 0 && (flags & SCS_PASS_NONEMPTY) && p->len == 0)
		rc = -ENODATA;
	if (rc == 0 && (flags & SCS_PASS_CONFIRM)) {
		struct scs_passphrase again = { 0 };
		rc = pass_alloc(&again);
		if (rc == 0)
			rc = tty_read_line(fd, "Repeat the passphrase: ", &again);
		if (rc == 0 && (again.len != p->len || !scs_ct_equal(again.buf, p->buf, p->len)))
			rc = -EILSEQ;
		scs_passphrase_clear(&again);
	}
	close(fd);
	if (rc < 0)
		scs_passphrase_clear(p);
	switch (rc) {
	case 0:
		return 0;
	case -EINTR:
		return scs_err_set(err, -EINTR, "interrupted while reading the passphrase");
	case -EMSGSIZE:
		return scs_err_set(err, -EINVAL, "passphrase longer than %d bytes; use a shorter one",
				   SCS_PASSPHRASE_MAX);
	case -ENODATA:
		return scs_err_set(err, -EINVAL, "empty passphrase; choose a non-empty passphrase");
	case -EILSEQ:
		return scs_err_set(err, -EINVAL, "the two passphrases differ; try again");
	default:
		return scs_err_set(err, rc, "cannot read the passphrase from the terminal: %s",
				   strerror(-rc));
	}
}

int scs_passphrase_get(const char *file, const char *prompt, int flags,
		       struct scs_passphrase *out, scs_err *err)
{
	out->buf = NULL;
	out->len = 0;
	if (!file || !*file) {
		const char *env = getenv(SCS_PASSPHRASE_ENV);
		if (env && *env)
			file = env;
	}
	if (file && *file) {
		int rc = read_pass_file(file, out, err);
		if (rc < 0)
			return rc;
		if ((flags & SCS_PASS_NONEMPTY) && out->len == 0) {
			scs_passphrase_clear(out);
			return scs_err_set(err, -EINVAL,
					   "passphrase file %s is empty; put a non-empty passphrase in it", file);
		}
		return 0;
	}
	if (flags & SCS_PASS_NO_PROMPT)
		return scs_err_set(err, -ENXIO, NO_PASSPHRASE_MSG);
	return read_pass_tty(prompt, flags, out, err);
}
