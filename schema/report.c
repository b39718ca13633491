/*
 * report.c - the in-memory run report and its small companions: error
 * strings, the growable buffer encoders write into, hash text.
 *
 * Records are appended through weft_report_add_* so that the limits in
 * weft/schema.h hold for every report that exists in memory, not only for
 * the ones that were decoded.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include <weft/schema.h>

const char *weft_strerror(int err)
{
	switch (err) {
	case WEFT_OK: return "success";
	case WEFT_ENOMEM: return "out of memory";
	case WEFT_ETRUNC: return "input truncated";
	case WEFT_EVERSION: return "unsupported schema version";
	case WEFT_ETYPE: return "value of the wrong type";
	case WEFT_ETOOBIG: return "value exceeds a size limit";
	case WEFT_EINVAL: return "invalid value";
	case WEFT_ETRAILING: return "trailing bytes after the message";
	case WEFT_EIO: return "input/output error";
	case WEFT_ENOTFOUND: return "not found";
	case WEFT_EDB: return "database error";
	case WEFT_EUNSUPPORTED: return "not supported here";
	case WEFT_ESIG: return "signature or MAC does not verify";
	case WEFT_EBUSY: return "locked by another process past the timeout";
	}
	return "unknown error";
}

void weft_buf_init(weft_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

int weft_buf_append(weft_buf *b, const void *data, size_t len)
{
	if (len > WEFT_MAX_MESSAGE_BYTES - b->len)
		return WEFT_ETOOBIG;
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + len)
			cap *= 2;
		uint8_t *p = realloc(b->data, cap);
		if (!p)
			return WEFT_ENOMEM;
		b->data = p;
		b->cap = cap;
	}
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	return WEFT_OK;
}

void weft_buf_free(weft_buf *b)
{
	free(b->data);
	weft_buf_init(b);
}

void weft_report_init(weft_report *r)
{
	memset(r, 0, sizeof(*r));
}

void weft_process_rec_release(weft_process_rec *p)
{
	for (uint32_t i = 0; i < p->argc; i++)
		free(p->argv[i]);
	free(p->argv);
	free(p->exe);
	free(p->cwd);
	for (uint32_t i = 0; i < p->nenv; i++) {
		free(p->env[i].name);
		free(p->env[i].value);
	}
	free(p->env);
	free(p->env_missing);
	memset(p, 0, sizeof(*p));
}

void weft_file_rec_release(weft_file_rec *f)
{
	free(f->path);
	free(f->used_path);
	free(f->renamed_to);
	free(f->hash_missing);
	free(f->read_hash_missing);
	free(f->loc_fs);
	free(f->loc_path);
	free(f->touches);
	memset(f, 0, sizeof(*f));
}

void weft_report_release(weft_report *r)
{
	for (size_t i = 0; i < r->nprocesses; i++)
		weft_process_rec_release(&r->processes[i]);
	free(r->processes);
	for (size_t i = 0; i < r->nfiles; i++)
		weft_file_rec_release(&r->files[i]);
	free(r->files);
	for (size_t i = 0; i < r->nwarnings; i++)
		free(r->warnings[i]);
	free(r->warnings);
	weft_report_init(r);
}

/* Make room for element n of an array of sz-byte elements. Capacity is not
 * stored: it is 4 for n <= 4 and the next power of two >= n beyond, so the
 * array grows exactly when n reaches a power of two. */
static int reserve_one(void **arr, size_t n, size_t sz)
{
	size_t cap;
	if (n == 0)
		cap = 4;
	else if (n >= 4 && (n & (n - 1)) == 0)
		cap = n * 2;
	else
		return WEFT_OK;
	void *p = realloc(*arr, cap * sz);
	if (!p)
		return WEFT_ENOMEM;
	*arr = p;
	return WEFT_OK;
}

weft_process_rec *weft_report_add_process(weft_report *r)
{
	if (r->nprocesses >= WEFT_MAX_PROCESSES ||
	    reserve_one((void **)&r->processes, r->nprocesses,
			sizeof(*r->processes)) != WEFT_OK)
		return NULL;
	weft_process_rec *rec = &r->processes[r->nprocesses++];
	memset(rec, 0, sizeof(*rec));
	return rec;
}

weft_file_rec *weft_report_add_file(weft_report *r)
{
	if (r->nfiles >= WEFT_MAX_FILES ||
	    reserve_one((void **)&r->files, r->nfiles, sizeof(*r->files)) !=
		    WEFT_OK)
		return NULL;
	weft_file_rec *rec = &r->files[r->nfiles++];
	memset(rec, 0, sizeof(*rec));
	return rec;
}

int weft_report_warn(weft_report *r, const char *fmt, ...)
{
	if (r->nwarnings > WEFT_MAX_WARNINGS)
		return WEFT_ETOOBIG;
	char text[WEFT_MAX_WARNING_BYTES];
	if (r->nwarnings == WEFT_MAX_WARNINGS) {
		snprintf(text, sizeof(text), "further warnings dropped");
	} else {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(text, sizeof(text), fmt, ap);
		va_end(ap);
	}
	if (reserve_one((void **)&r->warnings, r->nwarnings,
			sizeof(char *)) != WEFT_OK)
		return WEFT_ENOMEM;
	char *copy = strdup(text);
	if (!copy)
		return WEFT_ENOMEM;
	r->warnings[r->nwarnings++] = copy;
	return WEFT_OK;
}

/* Declared in codec.h: the report decoder appends decoded warnings as they
 * are, without weft_report_warn's formatting and truncation, but through
 * the same growth scheme so weft_report_warn can append to a decoded
 * report. WEFT_MAX_WARNINGS + 1: the limit plus weft_report_warn's
 * "further warnings dropped". */
int weft_report_push_warning(weft_report *r, char *text)
{
	if (r->nwarnings > WEFT_MAX_WARNINGS)
		return WEFT_ETOOBIG;
	if (reserve_one((void **)&r->warnings, r->nwarnings,
			sizeof(char *)) != WEFT_OK)
		return WEFT_ENOMEM;
	r->warnings[r->nwarnings++] = text;
	return WEFT_OK;
}

void weft_hash_to_text(const uint8_t hash[32], char out[WEFT_HASH_TEXT_BYTES])
{
	static const char hex[] = "0123456789abcdef";
	memcpy(out, "blake2b-256:", 12);
	for (int i = 0; i < 32; i++) {
		out[12 + 2 * i] = hex[hash[i] >> 4];
		out[12 + 2 * i + 1] = hex[hash[i] & 15];
	}
	out[WEFT_HASH_TEXT_BYTES - 1] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int weft_hash_from_text(const char *text, uint8_t hash[32])
{
	if (strncmp(text, "blake2b-256:", 12) != 0 ||
	    strlen(text) != WEFT_HASH_TEXT_BYTES - 1)
		return WEFT_EINVAL;
	for (int i = 0; i < 32; i++) {
		int hi = hexval(text[12 + 2 * i]), lo = hexval(text[13 + 2 * i]);
		if (hi < 0 || lo < 0)
			return WEFT_EINVAL;
		hash[i] = (uint8_t)(hi << 4 | lo);
	}
	return WEFT_OK;
}
