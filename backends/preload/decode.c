/*
 * decode.c - checking a batch from libweft_preload.so. The batches come
 * from the traced workload's memory, so they are outside input: a batch
 * is either valid in every byte or rejected whole, and nothing in it can
 * make the collector read out of bounds or feed the classifier a string
 * it cannot take.
 */
#include <string.h>

#include "preload_internal.h"

/* The strings a kind needs at least, and whether they are paths (bounded
 * by WEFT_MAX_PATH_BYTES) or free text (argv, a warning). */
static bool strings_ok(const pl_record *d)
{
	unsigned need;
	bool paths = true, exact = false; /* exact: no more than need */
	switch (d->r.kind) {
	case PL_R_IMAGE:
		need = 2; /* exe, cwd, then argv */
		break;
	case PL_R_EXEC:
		need = 1; /* exe, then argv */
		break;
	case PL_R_OPEN:
	case PL_R_UNLINK:
	case PL_R_TRUNCATE:
	case PL_R_CHDIR:
		need = 1;
		exact = true;
		break;
	case PL_R_RENAME:
	case PL_R_LINK:
		need = 2;
		exact = true;
		break;
	case PL_R_WARN:
		need = 1;
		paths = false;
		if (d->nstr != 1 || strlen(d->strs[0]) >= WEFT_MAX_WARNING_BYTES)
			return false;
		break;
	default:
		return d->nstr == 0;
	}
	if (d->nstr < need || (exact && d->nstr != need))
		return false;
	if (!paths)
		return true;
	/* IMAGE and EXEC: exe and cwd are paths; argv is bounded by the
	 * record size. */
	unsigned npaths = d->r.kind == PL_R_IMAGE  ? 2
			  : d->r.kind == PL_R_EXEC ? 1
						   : d->nstr;
	for (unsigned i = 0; i < npaths; i++)
		if (strlen(d->strs[i]) > WEFT_MAX_PATH_BYTES - 1)
			return false;
	return true;
}

/* Parse the record at p (avail bytes left in the batch) into *d. */
static int parse_record(const uint8_t *p, size_t avail, pl_record *d,
			size_t *size)
{
	if (avail < sizeof(struct pl_rec))
		return WEFT_ETRUNC;
	memcpy(&d->r, p, sizeof(d->r));
	size_t n = d->r.size;
	if (n < sizeof(struct pl_rec) || n % PL_ALIGN != 0)
		return WEFT_EINVAL;
	if (n > avail)
		return WEFT_ETRUNC;
	if (d->r.kind < PL_R_IMAGE || d->r.kind >= PL_R_KIND_MAX)
		return WEFT_EINVAL;
	if (d->r.nstr > PL_MAX_STR)
		return WEFT_ETOOBIG;
	size_t off = sizeof(struct pl_rec);
	d->has_stat = (d->r.bits & PL_B_STAT) != 0;
	if (d->has_stat) {
		if (n - off < sizeof(struct pl_stat))
			return WEFT_ETRUNC;
		memcpy(&d->st, p + off, sizeof(d->st));
		off += sizeof(d->st);
	}
	d->nstr = d->r.nstr;
	for (unsigned i = 0; i < d->nstr; i++) {
		const void *nul = memchr(p + off, '\0', n - off);
		if (!nul)
			return WEFT_ETRUNC;
		d->strs[i] = (const char *)(p + off);
		off = (size_t)((const uint8_t *)nul - p) + 1;
	}
	/* What follows the strings is padding, all zero. */
	for (size_t i = off; i < n; i++)
		if (p[i] != 0)
			return WEFT_EINVAL;
	if (!strings_ok(d))
		return WEFT_EINVAL;
	*size = n;
	return WEFT_OK;
}

int pl_batch_decode(const uint8_t *buf, size_t len, struct pl_batch *hdr,
		    pl_record_fn fn, void *ctx)
{
	struct pl_batch h;
	if (len < sizeof(h))
		return WEFT_ETRUNC;
	memcpy(&h, buf, sizeof(h));
	if (h.magic != PL_MAGIC)
		return WEFT_EINVAL;
	if (h.version != PL_VERSION)
		return WEFT_EVERSION;
	if (len > PL_BATCH_MAX)
		return WEFT_ETOOBIG;
	if (h.len != len)
		return h.len > len ? WEFT_ETRUNC : WEFT_EINVAL;
	if (h.pid <= 0 || h.ppid < 0 || h.how > PL_HOW_SPAWNED)
		return WEFT_EINVAL;
	pl_record d;
	size_t size;
	for (size_t off = sizeof(h); off < len; off += size) {
		int err = parse_record(buf + off, len - off, &d, &size);
		if (err)
			return err;
	}
	*hdr = h;
	for (size_t off = sizeof(h); off < len; off += size) {
		parse_record(buf + off, len - off, &d, &size);
		int rc = fn(ctx, &d);
		if (rc)
			return rc;
	}
	return WEFT_OK;
}
