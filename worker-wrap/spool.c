/*
 * spool.c - the on-disk spool: every signed fragment is durable here
 * before it is sent and stays until the coordinator acknowledged it, so a
 * coordinator that is down, a network that drops, or a wrapper that is
 * killed loses nothing: the next `weft flush` or wrapper on the node sends
 * what is left. See weft/wrap.h for the layout and the file format.
 *
 * Durability: a file is written under a temporary name, fsynced, renamed
 * into place, and its directory fsynced, so after a crash a file is either
 * absent or whole; the checksum in the container catches what a disk or a
 * person did to it afterwards. Such a file is moved aside, never trusted,
 * never fatal.
 *
 * Except for a writer whose coordinator is in this process (inproc://, a
 * local `weft run`): its files are written the same way but not fsynced.
 * What they feed is a store that syncs only at checkpoints (WAL,
 * synchronous=NORMAL), so a crash of the machine loses at most what the
 * store would have lost anyway, and an fsync bought nothing but waiting:
 * 7 of them, a third of what `weft run -- true` spent after the command.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <sodium.h>

#include <weft/wrap.h>
#include "wrap_internal.h"

#define STATE_NAME "state"
#define CORRUPT_DIR "corrupt"
#define REJECTED_DIR "rejected"
#define STATE_MAGIC "weft-spool-state 1"

struct weft_spool_writer {
	char spool[WEFT_MAX_PATH_BYTES + 1];
	char name[80]; /* "w-" + 64 hex */
	char dir[WEFT_MAX_PATH_BYTES + 96];
	int dirfd; /* open and flock'ed */
	bool sync; /* fsync files and directory (not for inproc://) */
	weft_spool_state state;
};

/* ---- The container ---- */

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* The container's header for payload. */
static int spool_header(int kind, const uint8_t *payload, size_t len,
			uint8_t h[WEFT_SPOOL_HEADER_BYTES])
{
	if (len > WEFT_WRAP_MAX_SPOOL_BYTES)
		return WEFT_ETOOBIG;
	memcpy(h, WEFT_SPOOL_MAGIC, 8);
	h[8] = (uint8_t)kind;
	put_be32(h + 9, (uint32_t)len);
	crypto_generichash(h + 13, 16, payload, len, NULL, 0);
	return WEFT_OK;
}

int weft_spool_encode(int kind, const uint8_t *payload, size_t len,
		      weft_buf *out)
{
	uint8_t h[WEFT_SPOOL_HEADER_BYTES];
	int err = spool_header(kind, payload, len, h);
	if (!err)
		err = weft_buf_append(out, h, sizeof(h));
	return err ? err : weft_buf_append(out, payload, len);
}

int weft_spool_decode(const uint8_t *buf, size_t buflen, int want_kind,
		      const uint8_t **payload, size_t *len)
{
	if (buflen < WEFT_SPOOL_HEADER_BYTES)
		return WEFT_ETRUNC;
	if (memcmp(buf, WEFT_SPOOL_MAGIC, 8) != 0 || buf[8] != want_kind)
		return WEFT_EINVAL;
	uint32_t n = (uint32_t)buf[9] << 24 | (uint32_t)buf[10] << 16 |
		     (uint32_t)buf[11] << 8 | buf[12];
	if (n > WEFT_WRAP_MAX_SPOOL_BYTES)
		return WEFT_ETOOBIG;
	size_t body = buflen - WEFT_SPOOL_HEADER_BYTES;
	if (body < n)
		return WEFT_ETRUNC;
	if (body > n)
		return WEFT_ETRAILING;
	uint8_t sum[16];
	const uint8_t *p = buf + WEFT_SPOOL_HEADER_BYTES;
	crypto_generichash(sum, sizeof(sum), p, n, NULL, 0);
	if (sodium_memcmp(sum, buf + 13, sizeof(sum)) != 0)
		return WEFT_EINVAL;
	*payload = p;
	*len = n;
	return WEFT_OK;
}

/* ---- The writer state: a few text lines ---- */

int weft_spool_state_encode(const weft_spool_state *s, weft_buf *out)
{
	size_t hexsz = 2 * s->enrol_len + 1;
	size_t cap = hexsz + strlen(s->coordinator) + 256;
	char *text = malloc(cap);
	if (!text)
		return WEFT_ENOMEM;
	int n = snprintf(text, cap,
			 STATE_MAGIC "\ncoordinator %s\njob %s\n"
				     "writer %s\nenrol ",
			 s->coordinator, s->job, s->writer);
	sodium_bin2hex(text + n, hexsz, s->enrol, s->enrol_len);
	n += (int)(hexsz - 1);
	text[n++] = '\n';
	int err = weft_buf_append(out, text, (size_t)n);
	free(text);
	return err;
}

/* The next line must be "key VALUE": *val points at VALUE in the copy,
 * *vlen its length. */
static int state_line(const char **p, const char *end, const char *key,
		      const char **val, size_t *vlen)
{
	size_t k = strlen(key);
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	if (!nl || (size_t)(nl - *p) < k + 1 || memcmp(*p, key, k) != 0 ||
	    (*p)[k] != ' ')
		return WEFT_EINVAL;
	*val = *p + k + 1;
	*vlen = (size_t)(nl - *val);
	*p = nl + 1;
	return 0;
}

static int state_string(char *out, size_t outsz, const char *v, size_t n)
{
	if (n == 0 || n >= outsz || memchr(v, '\0', n))
		return WEFT_EINVAL;
	memcpy(out, v, n);
	out[n] = '\0';
	return 0;
}

static bool hex_ok(const char *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strchr("0123456789abcdef", v[i]) || !v[i])
			return false;
	return n % 2 == 0;
}

int weft_spool_state_decode(const uint8_t *buf, size_t len, weft_spool_state *s)
{
	memset(s, 0, sizeof(*s));
	const char *p = (const char *)buf, *end = p + len, *v;
	size_t n, k = strlen(STATE_MAGIC);
	if (len < k + 1 || memcmp(p, STATE_MAGIC "\n", k + 1) != 0)
		return WEFT_EVERSION;
	p += k + 1;
	if (state_line(&p, end, "coordinator", &v, &n) ||
	    state_string(s->coordinator, sizeof(s->coordinator), v, n) ||
	    weft_wrap_check_url(s->coordinator) ||
	    state_line(&p, end, "job", &v, &n) ||
	    state_string(s->job, sizeof(s->job), v, n) ||
	    weft_job_id_check(s->job) ||
	    state_line(&p, end, "writer", &v, &n) || n != 64 || !hex_ok(v, n) ||
	    state_string(s->writer, sizeof(s->writer), v, n) ||
	    state_line(&p, end, "enrol", &v, &n) || n == 0 || !hex_ok(v, n))
		goto bad;
	if (p != end)
		goto bad;
	s->enrol_len = n / 2;
	s->enrol = malloc(s->enrol_len);
	if (!s->enrol) {
		memset(s, 0, sizeof(*s));
		return WEFT_ENOMEM;
	}
	sodium_hex2bin(s->enrol, s->enrol_len, v, n, NULL, NULL, NULL);
	return WEFT_OK;
bad:
	memset(s, 0, sizeof(*s));
	return WEFT_EINVAL;
}

void weft_spool_state_release(weft_spool_state *s)
{
	free(s->enrol);
	s->enrol = NULL;
	s->enrol_len = 0;
}

/* ---- Files ---- */

static int fsync_dir(int dirfd)
{
	return fsync(dirfd) == 0 ? WEFT_OK : WEFT_EIO;
}

/* Whether a writer shipping to url fsyncs (see the top). */
static bool spool_syncs(const char *url)
{
	return !wrap_url_in_process(url);
}

bool wrap_url_in_process(const char *url)
{
	return strncmp(url, "inproc://", 9) == 0;
}

/* The two pieces a then b, written whole. */
static int write_two(int fd, const uint8_t *a, size_t na, const uint8_t *b,
		     size_t nb)
{
	struct iovec v[2] = {{(void *)a, na}, {(void *)b, nb}};
	struct iovec *p = v;
	int left = 2;
	while (left) {
		ssize_t w = writev(fd, p, left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return WEFT_EIO;
		size_t done = (size_t)w;
		for (; left && done >= p->iov_len; p++, left--)
			done -= p->iov_len;
		if (left) {
			p->iov_base = (uint8_t *)p->iov_base + done;
			p->iov_len -= done;
		}
	}
	return WEFT_OK;
}

/* Durably (with sync) create dirfd/name holding the container of
 * payload. */
static int write_durable(int dirfd, const char *name, int kind,
			 const uint8_t *payload, size_t len, bool sync)
{
	/* The header and the payload written as they are: no copy of a
	 * payload of megabytes. */
	uint8_t h[WEFT_SPOOL_HEADER_BYTES];
	int err = spool_header(kind, payload, len, h);
	if (err)
		return err;
	char tmp[128];
	snprintf(tmp, sizeof(tmp), ".tmp-%s", name);
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			0600);
	if (fd < 0)
		return WEFT_EIO;
	err = write_two(fd, h, sizeof(h), payload, len);
	if (!err && sync && fsync(fd) != 0)
		err = WEFT_EIO;
	int saved = errno;
	close(fd);
	if (!err && renameat(dirfd, tmp, dirfd, name) != 0)
		err = WEFT_EIO;
	if (err) {
		saved = errno;
		unlinkat(dirfd, tmp, 0);
		errno = saved;
		return err;
	}
	return sync ? fsync_dir(dirfd) : WEFT_OK;
}

/* The whole file dirfd/name into out, empty before (at most a container's
 * size): read into a buffer of the size fstat gives, then past it in case
 * the file grew meanwhile. */
static int read_file(int dirfd, const char *name, weft_buf *out)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? WEFT_ENOTFOUND : WEFT_EIO;
	const size_t most =
		WEFT_SPOOL_HEADER_BYTES + (size_t)WEFT_WRAP_MAX_SPOOL_BYTES;
	struct stat st;
	int err = WEFT_OK;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		err = WEFT_EINVAL;
	else if ((uint64_t)st.st_size > most)
		err = WEFT_ETOOBIG;
	else if (st.st_size > 0 && !(out->data = malloc((size_t)st.st_size)))
		err = WEFT_ENOMEM;
	else
		out->cap = (size_t)st.st_size;
	while (!err) {
		uint8_t chunk[4096];
		bool room = out->len < out->cap;
		ssize_t n = room ? read(fd, out->data + out->len,
					out->cap - out->len)
				 : read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			err = WEFT_EIO;
		if (n <= 0)
			break;
		if (out->len + (size_t)n > most)
			err = WEFT_ETOOBIG;
		else if (room)
			out->len += (size_t)n;
		else
			err = weft_buf_append(out, chunk, (size_t)n);
	}
	close(fd);
	return err;
}

static int ensure_dir(const char *path)
{
	char tmp[WEFT_MAX_PATH_BYTES + 1];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
			return WEFT_EIO;
		*p = '/';
	}
	if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
		return WEFT_EIO;
	return WEFT_OK;
}

/* Move dir/name into SPOOL/where/ as PREFIX.name (best effort: the caller
 * reports the original problem either way). */
static void move_aside(const char *spool, const char *where, int dirfd,
		       const char *name, const char *prefix)
{
	char dst[WEFT_MAX_PATH_BYTES + 256];
	snprintf(dst, sizeof(dst), "%s/%s", spool, where);
	if (ensure_dir(dst) != WEFT_OK)
		return;
	int len = (int)strlen(dst);
	snprintf(dst + len, sizeof(dst) - (size_t)len, "/%s.%s", prefix, name);
	renameat(dirfd, name, AT_FDCWD, dst);
	fsync_dir(dirfd);
}

/* ---- Writers ---- */

static bool writer_name_ok(const char *name)
{
	return strncmp(name, "w-", 2) == 0 && strlen(name) == 66 &&
	       hex_ok(name + 2, 64);
}

int weft_spool_writer_create(const char *spool, const weft_spool_state *st,
			     weft_spool_writer **out)
{
	*out = NULL;
	weft_spool_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return WEFT_ENOMEM;
	w->dirfd = -1;
	w->sync = spool_syncs(st->coordinator);
	snprintf(w->spool, sizeof(w->spool), "%s", spool);
	snprintf(w->name, sizeof(w->name), "w-%s", st->writer);
	int n = snprintf(w->dir, sizeof(w->dir), "%s/.new-XXXXXX", spool);
	int err = WEFT_EIO;
	if (!writer_name_ok(w->name) || n < 0 || (size_t)n >= sizeof(w->dir)) {
		free(w);
		return WEFT_EINVAL;
	}
	/* Built under a temporary name and locked before it gets its real
	 * one, so a flush never sees a writer without its state. */
	if (ensure_dir(spool) != WEFT_OK || !mkdtemp(w->dir))
		goto fail;
	w->dirfd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dirfd < 0 || flock(w->dirfd, LOCK_EX) != 0)
		goto fail;
	weft_buf b;
	weft_buf_init(&b);
	err = weft_spool_state_encode(st, &b);
	if (!err)
		err = write_durable(w->dirfd, STATE_NAME, WEFT_SPOOL_STATE,
				    b.data, b.len, w->sync);
	weft_buf_free(&b);
	if (err)
		goto fail;
	char final[sizeof(w->dir)];
	snprintf(final, sizeof(final), "%s/%s", spool, w->name);
	err = WEFT_EIO;
	if (rename(w->dir, final) != 0)
		goto fail;
	snprintf(w->dir, sizeof(w->dir), "%s", final);
	int sfd = w->sync ? open(spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
			  : -1;
	if (sfd >= 0) {
		fsync_dir(sfd);
		close(sfd);
	}
	w->state = *st;
	w->state.enrol = malloc(st->enrol_len ? st->enrol_len : 1);
	if (!w->state.enrol) {
		weft_spool_writer_close(w, false);
		return WEFT_ENOMEM;
	}
	memcpy(w->state.enrol, st->enrol, st->enrol_len);
	*out = w;
	return WEFT_OK;
fail:;
	int saved = errno;
	if (w->dirfd >= 0) {
		unlinkat(w->dirfd, STATE_NAME, 0);
		close(w->dirfd);
		rmdir(w->dir);
	}
	free(w);
	errno = saved;
	return err;
}

static int read_state(weft_spool_writer *w)
{
	weft_buf b;
	weft_buf_init(&b);
	int err = read_file(w->dirfd, STATE_NAME, &b);
	const uint8_t *payload;
	size_t len;
	if (!err)
		err = weft_spool_decode(b.data, b.len, WEFT_SPOOL_STATE,
					&payload, &len);
	if (!err)
		err = weft_spool_state_decode(payload, len, &w->state);
	if (!err && strcmp(w->state.writer, w->name + 2) != 0) {
		weft_spool_state_release(&w->state);
		err = WEFT_EINVAL;
	}
	weft_buf_free(&b);
	return err;
}

/* Left-overs of a wrapper that died mid-write. */
static void remove_temporaries(int dirfd)
{
	int fd = dup(dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d)))
		if (strncmp(e->d_name, ".tmp-", 5) == 0)
			unlinkat(dirfd, e->d_name, 0);
	closedir(d);
}

int weft_spool_writer_open(const char *spool, const char *name,
			   weft_spool_writer **out, bool *busy)
{
	*out = NULL;
	*busy = false;
	if (!writer_name_ok(name))
		return WEFT_EINVAL;
	weft_spool_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return WEFT_ENOMEM;
	snprintf(w->spool, sizeof(w->spool), "%s", spool);
	snprintf(w->name, sizeof(w->name), "%s", name);
	snprintf(w->dir, sizeof(w->dir), "%s/%s", spool, name);
	w->dirfd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dirfd < 0) {
		free(w);
		return WEFT_ENOTFOUND;
	}
	if (flock(w->dirfd, LOCK_EX | LOCK_NB) != 0) {
		*busy = errno == EWOULDBLOCK;
		close(w->dirfd);
		free(w);
		return WEFT_ENOTFOUND;
	}
	remove_temporaries(w->dirfd);
	int err = read_state(w);
	w->sync = err || spool_syncs(w->state.coordinator);
	if (err) {
		/* Without its state nobody can deliver this writer: keep
		 * it for a person to look at, out of every flush's way. */
		uint64_t *seqs = NULL;
		size_t n = 0;
		if (err == WEFT_ENOTFOUND &&
		    weft_spool_list(w, &seqs, &n) == WEFT_OK && n == 0) {
			rmdir(w->dir); /* removed while we waited */
			err = WEFT_ENOTFOUND;
		} else {
			char dst[sizeof(w->dir) + 32];
			snprintf(dst, sizeof(dst), "%s/" CORRUPT_DIR, spool);
			if (ensure_dir(dst) == WEFT_OK) {
				snprintf(dst, sizeof(dst),
					 "%s/" CORRUPT_DIR "/%s", spool, name);
				rename(w->dir, dst);
			}
			err = WEFT_EINVAL;
		}
		free(seqs);
		close(w->dirfd);
		free(w);
		return err;
	}
	*out = w;
	return WEFT_OK;
}

const weft_spool_state *weft_spool_writer_state(const weft_spool_writer *w)
{
	return &w->state;
}

const char *weft_spool_writer_dir(const weft_spool_writer *w)
{
	return w->dir;
}

const char *wrap_spool_of(const weft_spool_writer *w)
{
	return w->spool;
}

static void frag_name(uint64_t seq, char out[32])
{
	snprintf(out, 32, "f-%020" PRIu64, seq);
}

int weft_spool_put(weft_spool_writer *w, uint64_t seq, const uint8_t *env,
		   size_t len)
{
	char name[32];
	frag_name(seq, name);
	return write_durable(w->dirfd, name, WEFT_SPOOL_FRAGMENT, env, len,
			     w->sync);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* "f-" + exactly 20 digits. */
static bool frag_seq(const char *name, uint64_t *seq)
{
	if (strncmp(name, "f-", 2) != 0 || strlen(name) != 22)
		return false;
	uint64_t v = 0;
	for (const char *p = name + 2; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*seq = v;
	return true;
}

int weft_spool_list(weft_spool_writer *w, uint64_t **seqs, size_t *n)
{
	*seqs = NULL;
	*n = 0;
	int fd = dup(w->dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return WEFT_EIO;
	}
	rewinddir(d);
	size_t cap = 0;
	struct dirent *e;
	int err = WEFT_OK;
	while ((e = readdir(d))) {
		uint64_t seq;
		if (!frag_seq(e->d_name, &seq))
			continue;
		if (*n == cap) {
			cap = cap ? 2 * cap : 16;
			uint64_t *grown = realloc(*seqs, cap * sizeof(**seqs));
			if (!grown) {
				err = WEFT_ENOMEM;
				break;
			}
			*seqs = grown;
		}
		(*seqs)[(*n)++] = seq;
	}
	closedir(d);
	if (err) {
		free(*seqs);
		*seqs = NULL;
		*n = 0;
		return err;
	}
	if (*n)
		qsort(*seqs, *n, sizeof(**seqs), cmp_u64);
	return WEFT_OK;
}

int weft_spool_get(weft_spool_writer *w, uint64_t seq, weft_buf *out, char *err,
		   size_t errsz)
{
	char name[32];
	frag_name(seq, name);
	weft_buf b;
	weft_buf_init(&b);
	int rc = read_file(w->dirfd, name, &b);
	if (rc == WEFT_ENOTFOUND) {
		weft_buf_free(&b);
		return rc;
	}
	const uint8_t *payload = NULL;
	size_t len = 0;
	if (rc == WEFT_OK)
		rc = weft_spool_decode(b.data, b.len, WEFT_SPOOL_FRAGMENT,
				       &payload, &len);
	if (rc == WEFT_OK && out->len == 0) {
		/* The file's buffer becomes out's, its header dropped: no
		 * second copy of a fragment that may be megabytes. */
		memmove(b.data, payload, len);
		b.len = len;
		weft_buf_free(out);
		*out = b;
		weft_buf_init(&b);
	} else if (rc == WEFT_OK) {
		rc = weft_buf_append(out, payload, len);
	}
	weft_buf_free(&b);
	if (rc != WEFT_OK && rc != WEFT_ENOMEM) {
		snprintf(err, errsz,
			 "spool file %s/%s is unreadable (%s); moved to "
			 "%s/" CORRUPT_DIR "/",
			 w->dir, name, weft_strerror(rc), w->spool);
		move_aside(w->spool, CORRUPT_DIR, w->dirfd, name, w->name);
		return WEFT_EINVAL;
	}
	return rc;
}

int weft_spool_delete(weft_spool_writer *w, uint64_t seq)
{
	char name[32];
	frag_name(seq, name);
	if (unlinkat(w->dirfd, name, 0) != 0 && errno != ENOENT)
		return WEFT_EIO;
	return w->sync ? fsync_dir(w->dirfd) : WEFT_OK;
}

int weft_spool_reject(weft_spool_writer *w, uint64_t seq, const char *reason)
{
	char name[32], path[WEFT_MAX_PATH_BYTES + 256];
	frag_name(seq, name);
	snprintf(path, sizeof(path), "%s/" REJECTED_DIR, w->spool);
	if (ensure_dir(path) != WEFT_OK)
		return WEFT_EIO;
	int len = (int)strlen(path);
	snprintf(path + len, sizeof(path) - (size_t)len, "/%s.%s.reason",
		 w->name, name);
	FILE *f = fopen(path, "we");
	if (f) {
		fprintf(f, "%s\n", reason);
		fclose(f);
	}
	move_aside(w->spool, REJECTED_DIR, w->dirfd, name, w->name);
	return WEFT_OK;
}

/* ---- Many fragments at once ----
 *
 * Each weft_spool_put is durable on its own (the file fsynced, renamed,
 * the directory fsynced), each weft_spool_delete fsyncs the directory:
 * one after the other, every fragment waits for journal commits of its
 * own. Done from several threads at once, the file system commits them
 * together (ext4 and xfs batch concurrent fsyncs into one journal
 * commit), and nothing is less durable. */

#define SPOOL_THREADS 8

struct spool_job {
	weft_spool_writer *w;
	const uint64_t *seqs;
	const weft_buf *bufs; /* NULL: delete */
	size_t n, next;
	int err;
	pthread_mutex_t lock;
};

static void *spool_worker(void *arg)
{
	struct spool_job *j = arg;
	for (;;) {
		pthread_mutex_lock(&j->lock);
		size_t i = j->next++;
		pthread_mutex_unlock(&j->lock);
		if (i >= j->n)
			break;
		int rc = j->bufs ? weft_spool_put(j->w, j->seqs[i],
						  j->bufs[i].data,
						  j->bufs[i].len)
				 : weft_spool_delete(j->w, j->seqs[i]);
		if (rc != WEFT_OK) {
			pthread_mutex_lock(&j->lock);
			if (!j->err)
				j->err = rc;
			pthread_mutex_unlock(&j->lock);
		}
	}
	return NULL;
}

int wrap_spool_many(weft_spool_writer *w, const uint64_t *seqs,
		    const weft_buf *bufs, size_t n)
{
	struct spool_job j = {.w = w, .seqs = seqs, .bufs = bufs, .n = n};
	pthread_mutex_init(&j.lock, NULL);
	pthread_t t[SPOOL_THREADS - 1];
	size_t nt = 0;
	while (nt + 1 < SPOOL_THREADS && nt + 1 < n &&
	       weft_wrap_thread_start(&t[nt], spool_worker, &j) == 0)
		nt++;
	spool_worker(&j);
	for (size_t i = 0; i < nt; i++)
		pthread_join(t[i], NULL);
	pthread_mutex_destroy(&j.lock);
	return j.err;
}

void weft_spool_writer_close(weft_spool_writer *w, bool remove_if_empty)
{
	if (!w)
		return;
	uint64_t *seqs = NULL;
	size_t n = 1;
	if (remove_if_empty && weft_spool_list(w, &seqs, &n) == WEFT_OK &&
	    n == 0) {
		/* State last: a directory with fragments always has it. */
		remove_temporaries(w->dirfd);
		unlinkat(w->dirfd, STATE_NAME, 0);
		rmdir(w->dir);
		int sfd = w->sync ? open(w->spool,
					 O_RDONLY | O_DIRECTORY | O_CLOEXEC)
				  : -1;
		if (sfd >= 0) {
			fsync_dir(sfd);
			close(sfd);
		}
	}
	free(seqs);
	close(w->dirfd); /* drops the lock */
	weft_spool_state_release(&w->state);
	free(w);
}

/* ---- Listing writers ---- */

struct named {
	char *name;
	struct timespec mtime;
};

static int cmp_named(const void *a, const void *b)
{
	const struct named *x = a, *y = b;
	if (x->mtime.tv_sec != y->mtime.tv_sec)
		return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
	if (x->mtime.tv_nsec != y->mtime.tv_nsec)
		return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
	return strcmp(x->name, y->name);
}

int weft_spool_writers(const char *spool, char ***names, size_t *n)
{
	*names = NULL;
	*n = 0;
	DIR *d = opendir(spool);
	if (!d)
		return errno == ENOENT ? WEFT_OK : WEFT_EIO;
	struct named *v = NULL;
	size_t cnt = 0, cap = 0;
	int err = WEFT_OK;
	struct dirent *e;
	while ((e = readdir(d)) && !err) {
		if (!writer_name_ok(e->d_name))
			continue;
		char st[WEFT_MAX_PATH_BYTES + 96];
		struct stat sb;
		snprintf(st, sizeof(st), "%s/%s/" STATE_NAME, spool, e->d_name);
		if (stat(st, &sb) != 0)
			memset(&sb, 0, sizeof(sb));
		if (cnt == cap) {
			cap = cap ? 2 * cap : 16;
			struct named *g = realloc(v, cap * sizeof(*v));
			if (!g) {
				err = WEFT_ENOMEM;
				break;
			}
			v = g;
		}
		v[cnt].name = strdup(e->d_name);
		v[cnt].mtime = sb.st_mtim;
		if (!v[cnt].name)
			err = WEFT_ENOMEM;
		else
			cnt++;
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof(*v), cmp_named);
	char **out = cnt ? calloc(cnt, sizeof(*out)) : NULL;
	if (cnt && !out)
		err = WEFT_ENOMEM;
	for (size_t i = 0; i < cnt; i++) {
		if (out)
			out[i] = v[i].name;
		else
			free(v[i].name);
	}
	free(v);
	if (err) {
		weft_spool_names_free(out, out ? cnt : 0);
		return err;
	}
	*names = out;
	*n = cnt;
	return WEFT_OK;
}

void weft_spool_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}
