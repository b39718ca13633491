/*
 * codec_writer.c - the msgpack writer the encoders in schema/ share:
 * msgpack-c's packer over a weft_buf, with a sticky error so an encoder
 * writes a whole record and checks once, and the buffer rolled back to
 * where the message started when anything failed (an encoder never leaves
 * half a message behind in a buffer that may hold earlier ones).
 */
#include <string.h>

#include "codec.h"

/* Every byte the packer writes comes through here, so refusing them once
 * w->err is set is what makes the error sticky: the writers below call the
 * packer without checking it. */
static int write_cb(void *data, const char *buf, size_t len)
{
	struct weft_wr *w = data;
	if (w->err)
		return -1;
	/* Nearly every write is a few bytes into room the buffer has: no
	 * call (weft_buf_append does the same with growth). */
	weft_buf *b = w->out;
	if (len && len <= b->cap - b->len &&
	    len <= WEFT_MAX_MESSAGE_BYTES - b->len) {
		memcpy(b->data + b->len, buf, len);
		b->len += len;
		return 0;
	}
	int rc = weft_buf_append(b, buf, len);
	if (rc) {
		w->err = rc;
		return -1;
	}
	return 0;
}

void weft_wr_init(struct weft_wr *w, weft_buf *out)
{
	w->out = out;
	w->start = out->len;
	w->err = WEFT_OK;
	msgpack_packer_init(&w->pk, w, write_cb);
}

int weft_wr_finish(struct weft_wr *w)
{
	if (w->err)
		w->out->len = w->start;
	return w->err;
}

void weft_wr_map(struct weft_wr *w, uint32_t n)
{
	msgpack_pack_map(&w->pk, n);
}

void weft_wr_array(struct weft_wr *w, uint32_t n)
{
	msgpack_pack_array(&w->pk, n);
}

void weft_wr_key(struct weft_wr *w, const char *key)
{
	if (w->err)
		return;
	size_t n = strlen(key);
	if (msgpack_pack_str(&w->pk, n) == 0)
		msgpack_pack_str_body(&w->pk, key, n);
}

void weft_wr_int(struct weft_wr *w, int64_t v)
{
	msgpack_pack_int64(&w->pk, v);
}

void weft_wr_uint(struct weft_wr *w, uint64_t v)
{
	msgpack_pack_uint64(&w->pk, v);
}

void weft_wr_nil(struct weft_wr *w)
{
	msgpack_pack_nil(&w->pk);
}

void weft_wr_bool(struct weft_wr *w, bool v)
{
	if (v)
		msgpack_pack_true(&w->pk);
	else
		msgpack_pack_false(&w->pk);
}

void weft_wr_bin(struct weft_wr *w, const void *data, size_t n)
{
	if (w->err)
		return;
	if (n > UINT32_MAX) {
		w->err = WEFT_ETOOBIG;
		return;
	}
	if (msgpack_pack_bin(&w->pk, n) == 0)
		msgpack_pack_bin_body(&w->pk, data, n);
}

void weft_wr_cstr(struct weft_wr *w, const char *s)
{
	weft_wr_bin(w, s, strlen(s));
}

void weft_wr_versioned_map(struct weft_wr *w, uint32_t n)
{
	weft_wr_map(w, n + 1);
	weft_wr_key(w, "v");
	weft_wr_int(w, WEFT_SCHEMA_VERSION);
}

/* One map entry: a key and its value. */

void weft_wr_key_int(struct weft_wr *w, const char *key, int64_t v)
{
	weft_wr_key(w, key);
	weft_wr_int(w, v);
}

void weft_wr_key_uint(struct weft_wr *w, const char *key, uint64_t v)
{
	weft_wr_key(w, key);
	weft_wr_uint(w, v);
}

void weft_wr_key_bool(struct weft_wr *w, const char *key, bool v)
{
	weft_wr_key(w, key);
	weft_wr_bool(w, v);
}

void weft_wr_key_bin(struct weft_wr *w, const char *key, const void *data,
		     size_t n)
{
	weft_wr_key(w, key);
	weft_wr_bin(w, data, n);
}

void weft_wr_key_cstr(struct weft_wr *w, const char *key, const char *s)
{
	weft_wr_key(w, key);
	weft_wr_cstr(w, s);
}
