/*
 * codec_event.c - the msgpack codec for trace events (weft_event), the
 * stream a backend or the node agent hands to a wrapper.
 *
 * Map: "v" first, then k, pid, tgid, ret, fd, fd2, fl, mode, cr, t
 * required; p, p2 (bin), argv (array of bin) and st (map of mode, dev, ino,
 * size, mtime; ctime optional) optional: left out when the pointer is NULL /
 * has_stat is false, nil read as absent. An argv that is present but empty
 * (execve with argv = {NULL}) stays distinct from no argv. Which fields a kind
 * uses is the classifier's business; the codec carries all of them so it never
 * has to change when a kind's meaning is refined.
 */
#include <stdlib.h>
#include <string.h>

#include "codec.h"

enum {
	E_KIND,
	E_PID,
	E_TGID,
	E_RET,
	E_FD,
	E_FD2,
	E_FLAGS,
	E_MODE,
	E_CREATED,
	E_TIME,
	E_PATH,
	E_PATH2,
	E_ARGV,
	E_STAT,
	E_NKEYS
};
static const char *const event_key_names[E_NKEYS] = {
	"k",    "pid", "tgid", "ret", "fd", "fd2",  "fl",
	"mode", "cr",  "t",    "p",   "p2", "argv", "st",
};
static const struct weft_rd_keys event_keys = {
	event_key_names, E_NKEYS, (1u << E_PATH) - 1, /* k .. t */
};

enum { S_MODE, S_DEV, S_INO, S_SIZE, S_MTIME, S_CTIME, S_NKEYS };
static const char *const stat_key_names[S_NKEYS] = {
	"mode", "dev", "ino", "size", "mtime", "ctime",
};
static const struct weft_rd_keys stat_keys = {
	stat_key_names, S_NKEYS,
	(1u << S_CTIME) - 1, /* ctime optional: schema 1 had none */
};

static int event_check(const weft_event *ev)
{
	if (ev->kind < WEFT_EV_OPEN || ev->kind >= WEFT_EV_KIND_MAX ||
	    ev->created < WEFT_CREATED_UNKNOWN ||
	    ev->created > WEFT_CREATED_YES)
		return WEFT_EINVAL;
	if (ev->has_stat && ev->st_size < 0)
		return WEFT_EINVAL;
	if ((ev->path && strnlen(ev->path, WEFT_MAX_PATH_BYTES + 1) >
				 WEFT_MAX_PATH_BYTES) ||
	    (ev->path2 &&
	     strnlen(ev->path2, WEFT_MAX_PATH_BYTES + 1) > WEFT_MAX_PATH_BYTES))
		return WEFT_ETOOBIG;
	return weft_argv_check(ev->argv, ev->argc);
}

static void event_write(struct weft_wr *w, const weft_event *ev)
{
	uint32_t n =
		E_PATH + !!ev->path + !!ev->path2 + !!ev->argv + ev->has_stat;
	weft_wr_versioned_map(w, n);
	weft_wr_key_uint(w, "k", ev->kind);
	weft_wr_key_int(w, "pid", ev->pid);
	weft_wr_key_int(w, "tgid", ev->tgid);
	weft_wr_key_int(w, "ret", ev->ret);
	weft_wr_key_int(w, "fd", ev->fd);
	weft_wr_key_int(w, "fd2", ev->fd2);
	weft_wr_key_int(w, "fl", ev->flags);
	weft_wr_key_int(w, "mode", ev->mode);
	weft_wr_key_int(w, "cr", ev->created);
	weft_wr_key_uint(w, "t", ev->time_ns);
	if (ev->path)
		weft_wr_key_cstr(w, "p", ev->path);
	if (ev->path2)
		weft_wr_key_cstr(w, "p2", ev->path2);
	if (ev->argv) {
		weft_wr_key(w, "argv");
		weft_wr_argv(w, ev->argv, ev->argc);
	}
	if (ev->has_stat) {
		weft_wr_key(w, "st");
		weft_wr_map(w, S_NKEYS - !ev->st_ctime_ns);
		weft_wr_key_uint(w, "mode", ev->st_mode);
		weft_wr_key_uint(w, "dev", ev->st_dev);
		weft_wr_key_uint(w, "ino", ev->st_ino);
		weft_wr_key_int(w, "size", ev->st_size);
		weft_wr_key_int(w, "mtime", ev->st_mtime_ns);
		if (ev->st_ctime_ns)
			weft_wr_key_int(w, "ctime", ev->st_ctime_ns);
	}
}

int weft_event_encode(const weft_event *ev, weft_buf *out)
{
	int rc = event_check(ev);
	if (rc)
		return rc;
	struct weft_wr w;
	weft_wr_init(&w, out);
	event_write(&w, ev);
	/* Every field can be within its limit and the whole still exceed
	 * WEFT_MAX_EVENT_BYTES (thousands of short args plus two long
	 * paths): refuse here what the decoder would refuse. */
	if (!w.err && out->len - w.start > WEFT_MAX_EVENT_BYTES)
		w.err = WEFT_ETOOBIG;
	return weft_wr_finish(&w);
}

static int stat_entry_read(struct weft_rd *rd, void *ctx, unsigned key)
{
	weft_event *ev = ctx;
	uint64_t mode = 0;
	int rc;
	switch (key) {
	case S_MODE:
		rc = weft_rd_uint(rd, UINT32_MAX, &mode);
		ev->st_mode = (uint32_t)mode;
		return rc;
	case S_DEV:
		return weft_rd_uint(rd, UINT64_MAX, &ev->st_dev);
	case S_INO:
		return weft_rd_uint(rd, UINT64_MAX, &ev->st_ino);
	case S_SIZE:
		return weft_rd_int(rd, 0, INT64_MAX, &ev->st_size);
	case S_MTIME:
		return weft_rd_i64(rd, &ev->st_mtime_ns);
	case S_CTIME:
		return weft_rd_i64(rd, &ev->st_ctime_ns);
	}
	return WEFT_EINVAL;
}

static int stat_read(struct weft_rd *rd, weft_event *ev)
{
	int rc = weft_rd_fields(rd, &stat_keys, false, stat_entry_read, ev);
	if (rc == WEFT_OK)
		ev->has_stat = true;
	return rc;
}

/* Read an int into an int32_t field. */
static int event_read_entry(struct weft_rd *rd, void *ctx, unsigned key)
{
	weft_event *ev = ctx;
	int64_t v = 0;
	char *s = NULL;
	int rc;
	switch (key) {
	case E_KIND:
		rc = weft_rd_int(rd, WEFT_EV_OPEN, WEFT_EV_KIND_MAX - 1, &v);
		ev->kind = (uint16_t)v;
		return rc;
	case E_PID:
		return weft_rd_i32(rd, &ev->pid);
	case E_TGID:
		return weft_rd_i32(rd, &ev->tgid);
	case E_RET:
		return weft_rd_i64(rd, &ev->ret);
	case E_FD:
		return weft_rd_i32(rd, &ev->fd);
	case E_FD2:
		return weft_rd_i32(rd, &ev->fd2);
	case E_FLAGS:
		return weft_rd_i32(rd, &ev->flags);
	case E_MODE:
		return weft_rd_i32(rd, &ev->mode);
	case E_CREATED:
		rc = weft_rd_int(rd, WEFT_CREATED_UNKNOWN, WEFT_CREATED_YES,
				 &v);
		ev->created = (int8_t)v;
		return rc;
	case E_TIME:
		return weft_rd_uint(rd, UINT64_MAX, &ev->time_ns);
	}
	if (weft_rd_nil(rd))
		return WEFT_OK; /* an optional value, absent */
	switch (key) {
	case E_PATH:
		rc = weft_rd_cstr(rd, WEFT_MAX_PATH_BYTES, &s);
		ev->path = s;
		return rc;
	case E_PATH2:
		rc = weft_rd_cstr(rd, WEFT_MAX_PATH_BYTES, &s);
		ev->path2 = s;
		return rc;
	case E_ARGV: {
		char **argv = NULL;
		rc = weft_rd_argv(rd, &argv, &ev->argc);
		ev->argv = (const char *const *)argv;
		return rc;
	}
	case E_STAT:
		return stat_read(rd, ev);
	}
	return WEFT_EINVAL;
}

int weft_event_decode(const uint8_t *buf, size_t len, weft_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	int rc = weft_rd_message(buf, len, WEFT_MAX_EVENT_BYTES, &event_keys,
				 event_read_entry, ev);
	if (rc)
		weft_event_release(ev);
	return rc;
}

void weft_event_release(weft_event *ev)
{
	/* Only decoded events are released, and the decoder allocated these
	 * strings: the const in weft_event is for backends feeding borrowed
	 * strings. */
	free((char *)ev->path);
	free((char *)ev->path2);
	weft_argv_free((char **)ev->argv, ev->argc);
	memset(ev, 0, sizeof(*ev));
}
