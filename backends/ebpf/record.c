/*
 * record.c - a ring-buffer record (weft_ebpf.h) to a weft_event. The
 * bytes come from the kernel, or from the agent over a socket: every
 * length is checked against the record's size and every string must end
 * in its NUL, so a malformed record is an error, never a read out of
 * bounds.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ebpf_internal.h"

int64_t wb_realtime_offset(void)
{
	struct timespec r, m;
	clock_gettime(CLOCK_REALTIME, &r);
	clock_gettime(CLOCK_MONOTONIC, &m);
	return ((int64_t)r.tv_sec - m.tv_sec) * 1000000000 +
	       (r.tv_nsec - m.tv_nsec);
}

/* A string of n bytes (NUL included) at p, or NULL when n is 0. */
static int take_string(const char *p, size_t n, const char **out)
{
	*out = NULL;
	if (n == 0)
		return 0;
	if (p[n - 1] != '\0' || memchr(p, '\0', n) != p + n - 1)
		return WEFT_EINVAL;
	*out = p;
	return 0;
}

/* Split the NUL-separated argv block (its last argument may lack its NUL
 * when cut) into d->argv. */
static int split_argv(wb_decoded *d, const char *p, size_t n)
{
	uint32_t argc = 0;
	for (size_t i = 0; i < n; i++)
		if (p[i] == '\0')
			argc++;
	if (argc > WEFT_MAX_ARGC)
		argc = WEFT_MAX_ARGC;
	if (argc > d->argv_cap) {
		const char **a = realloc(d->argv, argc * sizeof(*a));
		if (!a)
			return WEFT_ENOMEM;
		d->argv = a;
		d->argv_cap = argc;
	}
	uint32_t k = 0;
	for (size_t i = 0; i < n && k < argc;) {
		d->argv[k++] = p + i;
		i += strnlen(p + i, n - i) + 1;
	}
	d->ev.argv = d->argv;
	d->ev.argc = k;
	return 0;
}

int wb_record_decode(const uint8_t *buf, size_t len, wb_decoded *d)
{
	struct wb_record r;
	memset(&d->ev, 0, sizeof(d->ev));
	if (len < sizeof(r))
		return WEFT_ETRUNC;
	memcpy(&r, buf, sizeof(r));
	size_t need = sizeof(r) + (size_t)r.path_len + r.path2_len + r.argv_len;
	if (need > len)
		return WEFT_ETRUNC;
	if (r.kind < WEFT_EV_OPEN || r.kind >= WEFT_EV_KIND_MAX ||
	    r.path_len > WB_PATH_MAX || r.path2_len > WB_PATH_MAX ||
	    r.argv_len > WB_ARGV_MAX)
		return WEFT_EINVAL;
	const char *data = (const char *)buf + sizeof(r);
	weft_event *ev = &d->ev;
	int err = take_string(data, r.path_len, &ev->path);
	if (!err)
		err = take_string(data + r.path_len, r.path2_len, &ev->path2);
	if (err)
		return err;
	if (r.kind == WEFT_EV_EXEC && r.argv_len > 0 &&
	    (err = split_argv(d, data + r.path_len + r.path2_len,
			      r.argv_len)) != 0)
		return err;
	d->owner = r.owner;
	d->rflags = r.rflags;
	ev->kind = r.kind;
	ev->pid = r.pid;
	ev->tgid = r.tgid;
	ev->ret = r.ret;
	ev->fd = r.fd;
	ev->fd2 = r.fd2;
	ev->flags = r.flags;
	ev->mode = r.mode;
	ev->created = r.created < -1 || r.created > 1 ? WEFT_CREATED_UNKNOWN
						      : (int8_t)r.created;
	ev->has_stat = r.rflags & WB_R_HAS_STAT;
	ev->st_mode = r.st_mode;
	ev->st_dev = r.st_dev;
	ev->st_ino = r.st_ino;
	ev->st_size = r.st_size;
	ev->st_mtime_ns = r.st_mtime_ns;
	ev->st_ctime_ns = r.st_ctime_ns;
	ev->time_ns = r.time_ns;
	return 0;
}

void wb_decoded_release(wb_decoded *d)
{
	free(d->argv);
	d->argv = NULL;
	d->argv_cap = 0;
}
