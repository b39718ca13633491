/*
 * store_testutil.h - helpers the store's cmocka tests share: a scratch
 * directory per test, files in it, and report builders. Header-only so each
 * *_test.c stays one self-contained program.
 */
#ifndef WEFT_STORE_TESTUTIL_H
#define WEFT_STORE_TESTUTIL_H

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "weft_store.h"

struct scratch {
	char dir[256];
	char db[300];
};

static inline int scratch_rm_one(const char *path, const struct stat *st,
				 int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static inline void scratch_init(struct scratch *t)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(t->dir, sizeof(t->dir), "%s/weft-store-test-XXXXXX",
		 tmp && tmp[0] ? tmp : "/tmp");
	if (!mkdtemp(t->dir)) {
		perror("mkdtemp");
		abort();
	}
	snprintf(t->db, sizeof(t->db), "%s/weft.db", t->dir);
}

static inline void scratch_fini(struct scratch *t)
{
	nftw(t->dir, scratch_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* dir/name, in a static-free caller buffer. */
/* cmocka group/test fixtures: *state is a fresh scratch directory. */
static inline int scratch_setup(void **state)
{
	struct scratch *t = calloc(1, sizeof(*t));
	if (!t)
		return -1;
	scratch_init(t);
	*state = t;
	return 0;
}

static inline int scratch_teardown(void **state)
{
	scratch_fini(*state);
	free(*state);
	return 0;
}

static inline char *scratch_path(const struct scratch *t, const char *name,
				 char *out, size_t outsz)
{
	snprintf(out, outsz, "%s/%s", t->dir, name);
	return out;
}

static inline void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len || close(fd)) {
		perror(path);
		abort();
	}
}

static inline char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		abort();
	return p;
}

/* A process record with argv from a NULL-terminated list. */
static inline weft_process_rec *
add_process(weft_report *r, int32_t pid, int32_t ppid, const char *const *argv)
{
	weft_process_rec *p = weft_report_add_process(r);
	if (!p)
		abort();
	p->pid = pid;
	p->ppid = ppid;
	while (argv[p->argc])
		p->argc++;
	p->argv = calloc(p->argc ? p->argc : 1, sizeof(char *));
	if (!p->argv)
		abort();
	for (uint32_t i = 0; i < p->argc; i++)
		p->argv[i] = xstrdup(argv[i]);
	return p;
}

static inline weft_file_rec *add_file(weft_report *r, const char *path,
				      bool read, bool written)
{
	weft_file_rec *f = weft_report_add_file(r);
	if (!f)
		abort();
	f->path = xstrdup(path);
	f->read = read;
	f->written = written;
	return f;
}

static inline void hash_of(uint8_t h[32], uint8_t byte)
{
	memset(h, byte, 32);
}

#endif /* WEFT_STORE_TESTUTIL_H */
