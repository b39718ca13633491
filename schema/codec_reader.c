/*
 * codec_reader.c - the strict msgpack reader every decoder in schema/ uses
 * (see codec.h for why it is hand-written).
 *
 * Order of checks for anything with a length: the type byte (WEFT_ETYPE),
 * the header bytes (WEFT_ETRUNC), the field's limit (WEFT_ETOOBIG), then
 * the bytes left (WEFT_ETRUNC). Limits come before "bytes left" so an
 * oversize claim is reported as such however short the input, and every
 * proper prefix of a valid message, whose claims are all within limits,
 * fails with WEFT_ETRUNC. Nothing is consumed when a type does not match.
 */
#include <stdlib.h>
#include <string.h>

#include "codec.h"

static size_t left(const struct weft_rd *rd)
{
	return rd->len - rd->pos;
}

/* The type byte of the next value, not consumed. */
static int peek(const struct weft_rd *rd, uint8_t *b)
{
	if (left(rd) < 1)
		return WEFT_ETRUNC;
	*b = rd->p[rd->pos];
	return WEFT_OK;
}

/* Big-endian unsigned of n bytes following the type byte, consumed with
 * it. */
static int take_be(struct weft_rd *rd, size_t n, uint64_t *v)
{
	if (left(rd) < 1 + n)
		return WEFT_ETRUNC;
	uint64_t x = 0;
	for (size_t i = 0; i < n; i++)
		x = x << 8 | rd->p[rd->pos + 1 + i];
	rd->pos += 1 + n;
	*v = x;
	return WEFT_OK;
}

bool weft_rd_nil(struct weft_rd *rd)
{
	uint8_t b;
	if (peek(rd, &b) == WEFT_OK && b == 0xc0) {
		rd->pos++;
		return true;
	}
	return false;
}

int weft_rd_bool(struct weft_rd *rd, bool *v)
{
	uint8_t b;
	int rc = peek(rd, &b);
	if (rc)
		return rc;
	if (b != 0xc2 && b != 0xc3)
		return WEFT_ETYPE;
	rd->pos++;
	*v = b == 0xc3;
	return WEFT_OK;
}

/* An int of any encoding: non-negative (neg false, u) or negative (neg
 * true, s), so that the full uint64 and int64 ranges both fit. */
struct integer {
	bool neg;
	uint64_t u;
	int64_t s;
};

static int read_integer(struct weft_rd *rd, struct integer *v)
{
	uint8_t b;
	uint64_t x;
	int rc = peek(rd, &b);
	if (rc)
		return rc;
	*v = (struct integer){0};
	if (b <= 0x7f) {
		rd->pos++;
		v->u = b;
		return WEFT_OK;
	}
	if (b >= 0xe0) {
		rd->pos++;
		v->neg = true;
		v->s = (int8_t)b;
		return WEFT_OK;
	}
	if (b >= 0xcc && b <= 0xcf) /* uint 8, 16, 32, 64 */
		return take_be(rd, (size_t)1 << (b - 0xcc), &v->u);
	if (b >= 0xd0 && b <= 0xd3) { /* int 8, 16, 32, 64 */
		size_t n = (size_t)1 << (b - 0xd0);
		rc = take_be(rd, n, &x);
		if (rc)
			return rc;
		int64_t s;
		if (n == 1)
			s = (int8_t)x;
		else if (n == 2)
			s = (int16_t)x;
		else if (n == 4)
			s = (int32_t)x;
		else
			s = (int64_t)x;
		v->neg = s < 0;
		if (s < 0)
			v->s = s;
		else
			v->u = (uint64_t)s;
		return WEFT_OK;
	}
	return WEFT_ETYPE;
}

int weft_rd_int(struct weft_rd *rd, int64_t min, int64_t max, int64_t *v)
{
	struct integer x;
	int rc = read_integer(rd, &x);
	if (rc)
		return rc;
	if (x.neg) {
		if (x.s < min || x.s > max)
			return WEFT_EINVAL;
		*v = x.s;
	} else {
		if (max < 0 || x.u > (uint64_t)max || (int64_t)x.u < min)
			return WEFT_EINVAL;
		*v = (int64_t)x.u;
	}
	return WEFT_OK;
}

int weft_rd_i64(struct weft_rd *rd, int64_t *v)
{
	return weft_rd_int(rd, INT64_MIN, INT64_MAX, v);
}

int weft_rd_i32(struct weft_rd *rd, int32_t *out)
{
	int64_t v = 0;
	int rc = weft_rd_int(rd, INT32_MIN, INT32_MAX, &v);
	*out = (int32_t)v;
	return rc;
}

int weft_rd_uint(struct weft_rd *rd, uint64_t max, uint64_t *v)
{
	struct integer x;
	int rc = read_integer(rd, &x);
	if (rc)
		return rc;
	if (x.neg || x.u > max)
		return WEFT_EINVAL;
	*v = x.u;
	return WEFT_OK;
}

/* A str (when str_ok) or bin (when bin_ok) header: its length, with the
 * header consumed only on success. */
static int read_bytes_header(struct weft_rd *rd, bool str_ok, bool bin_ok,
			     uint64_t *n)
{
	uint8_t b;
	int rc = peek(rd, &b);
	if (rc)
		return rc;
	if (str_ok && b >= 0xa0 && b <= 0xbf) {
		rd->pos++;
		*n = b & 0x1f;
		return WEFT_OK;
	}
	if (str_ok && b >= 0xd9 && b <= 0xdb) /* str 8, 16, 32 */
		return take_be(rd, (size_t)1 << (b - 0xd9), n);
	if (bin_ok && b >= 0xc4 && b <= 0xc6) /* bin 8, 16, 32 */
		return take_be(rd, (size_t)1 << (b - 0xc4), n);
	return WEFT_ETYPE;
}

/* A str or bin (as read_bytes_header) of at most max bytes, pointing into
 * the input; a longer one is the error too_long. Nothing is consumed on
 * error. */
static int read_bytes(struct weft_rd *rd, bool str_ok, bool bin_ok,
		      uint64_t max, int too_long, const uint8_t **data,
		      size_t *n)
{
	size_t save = rd->pos;
	uint64_t len;
	int rc = read_bytes_header(rd, str_ok, bin_ok, &len);
	if (rc)
		return rc;
	if (len > max)
		rc = too_long;
	else if (len > left(rd))
		rc = WEFT_ETRUNC;
	if (rc) {
		rd->pos = save;
		return rc;
	}
	*data = rd->p + rd->pos;
	*n = (size_t)len;
	rd->pos += (size_t)len;
	return WEFT_OK;
}

int weft_rd_bytes(struct weft_rd *rd, bool bin_only, size_t max,
		  const uint8_t **data, size_t *n)
{
	return read_bytes(rd, !bin_only, true, max, WEFT_ETOOBIG, data, n);
}

int weft_rd_cstr(struct weft_rd *rd, size_t max, char **out)
{
	const uint8_t *data;
	size_t n;
	int rc = weft_rd_bytes(rd, false, max, &data, &n);
	if (rc)
		return rc;
	/* A C string cannot carry a NUL: it would silently cut the path. */
	if (memchr(data, 0, n))
		return WEFT_EINVAL;
	char *s = malloc(n + 1);
	if (!s)
		return WEFT_ENOMEM;
	if (n)
		memcpy(s, data, n);
	s[n] = '\0';
	*out = s;
	return WEFT_OK;
}

/* An array (is_map false) or map header: its count, consumed. */
static int read_container(struct weft_rd *rd, bool is_map, uint64_t *n)
{
	uint8_t b;
	int rc = peek(rd, &b);
	if (rc)
		return rc;
	uint8_t fix = is_map ? 0x80 : 0x90;
	uint8_t c16 = is_map ? 0xde : 0xdc;
	if ((b & 0xf0) == fix) {
		rd->pos++;
		*n = b & 0x0f;
		return WEFT_OK;
	}
	if (b == c16)
		return take_be(rd, 2, n);
	if (b == c16 + 1)
		return take_be(rd, 4, n);
	return WEFT_ETYPE;
}

int weft_rd_array(struct weft_rd *rd, uint32_t max, size_t min_elem,
		  uint32_t *n)
{
	size_t save = rd->pos;
	uint64_t count;
	int rc = read_container(rd, false, &count);
	if (rc)
		return rc;
	if (count > max)
		rc = WEFT_ETOOBIG;
	else if (min_elem && count > left(rd) / min_elem)
		rc = WEFT_ETRUNC;
	if (rc) {
		rd->pos = save;
		return rc;
	}
	*n = (uint32_t)count;
	return WEFT_OK;
}

int weft_rd_list(struct weft_rd *rd, uint32_t max, size_t min_elem, size_t size,
		 void **items, size_t *count, weft_rd_item_fn item, void *ctx)
{
	uint32_t n;
	int rc = weft_rd_array(rd, max, min_elem, &n);
	if (rc || n == 0)
		return rc;
	unsigned char *a = calloc(n, size);
	if (!a)
		return WEFT_ENOMEM;
	*items = a;
	for (uint32_t i = 0; rc == WEFT_OK && i < n; i++) {
		rc = item(rd, a + (size_t)i * size, ctx);
		*count = i + 1;
	}
	return rc;
}

int weft_rd_map(struct weft_rd *rd, uint32_t *n)
{
	size_t save = rd->pos;
	uint64_t count;
	int rc = read_container(rd, true, &count);
	if (rc)
		return rc;
	/* Every entry is a key and a value of at least one byte each. */
	if (count > left(rd) / 2) {
		rd->pos = save;
		return WEFT_ETRUNC;
	}
	*n = (uint32_t)count;
	return WEFT_OK;
}

/* The next key as raw bytes: a str, at most WEFT_RD_MAX_KEY bytes (no
 * schema key is longer: a longer one is WEFT_EINVAL). */
static int read_key(struct weft_rd *rd, const uint8_t **key, size_t *n)
{
	return read_bytes(rd, true, false, WEFT_RD_MAX_KEY, WEFT_EINVAL, key,
			  n);
}

int weft_rd_versioned_map(struct weft_rd *rd, uint32_t *n)
{
	uint32_t count;
	int rc = weft_rd_map(rd, &count);
	if (rc)
		return rc;
	if (count == 0)
		return WEFT_EINVAL; /* no version */
	const uint8_t *key;
	size_t klen;
	rc = read_key(rd, &key, &klen);
	if (rc)
		return rc;
	if (klen != 1 || key[0] != 'v')
		return WEFT_EINVAL;
	struct integer v;
	rc = read_integer(rd, &v);
	if (rc)
		return rc;
	if (v.neg || v.u < WEFT_SCHEMA_MIN_VERSION || v.u > WEFT_SCHEMA_VERSION)
		return WEFT_EVERSION;
	*n = count - 1;
	return WEFT_OK;
}

int weft_rd_key(struct weft_rd *rd, const struct weft_rd_keys *keys,
		uint32_t *seen, unsigned *idx)
{
	const uint8_t *key;
	size_t klen;
	int rc = read_key(rd, &key, &klen);
	if (rc)
		return rc;
	/* Encoders write keys in the table's order: start after the last
	 * one seen, so the next key is mostly the first tried. Names are
	 * unique, so the order of the search changes nothing else. */
	unsigned n = keys->n;
	unsigned start = *seen ? 32u - (unsigned)__builtin_clz(*seen) : 0;
	for (unsigned j = 0; j < n; j++) {
		unsigned i = start + j < n ? start + j : start + j - n;
		const char *name = keys->names[i];
		if (strlen(name) == klen && memcmp(name, key, klen) == 0) {
			if (*seen & (UINT32_C(1) << i))
				return WEFT_EINVAL; /* duplicate key */
			*seen |= UINT32_C(1) << i;
			*idx = i;
			return WEFT_OK;
		}
	}
	return WEFT_EINVAL; /* unknown key */
}

int weft_rd_check_required(const struct weft_rd_keys *keys, uint32_t seen)
{
	return (seen & keys->required) == keys->required ? WEFT_OK
							 : WEFT_EINVAL;
}

int weft_rd_fields(struct weft_rd *rd, const struct weft_rd_keys *keys,
		   bool versioned, weft_rd_entry_fn entry, void *ctx)
{
	uint32_t n, seen = 0;
	int rc =
		versioned ? weft_rd_versioned_map(rd, &n) : weft_rd_map(rd, &n);
	for (uint32_t i = 0; rc == WEFT_OK && i < n; i++) {
		unsigned key;
		rc = weft_rd_key(rd, keys, &seen, &key);
		if (rc == WEFT_OK)
			rc = entry(rd, ctx, key);
	}
	if (rc == WEFT_OK)
		rc = weft_rd_check_required(keys, seen);
	return rc;
}

int weft_rd_message(const uint8_t *buf, size_t len, size_t max_len,
		    const struct weft_rd_keys *keys, weft_rd_entry_fn entry,
		    void *ctx)
{
	struct weft_rd rd;
	weft_rd_init(&rd, buf, len);
	int rc = len > max_len ? WEFT_ETOOBIG
			       : weft_rd_fields(&rd, keys, true, entry, ctx);
	return rc == WEFT_OK && rd.pos != len ? WEFT_ETRAILING : rc;
}

int weft_rd_fixed_str(struct weft_rd *rd, char *out, size_t cap)
{
	const uint8_t *data;
	size_t n;
	int rc = weft_rd_bytes(rd, false, cap - 1, &data, &n);
	if (rc)
		return rc;
	if (memchr(data, 0, n))
		return WEFT_EINVAL;
	memcpy(out, data, n);
	out[n] = '\0';
	return WEFT_OK;
}

size_t weft_rd_min_map_bytes(const struct weft_rd_keys *keys)
{
	size_t n = 1; /* fixmap header */
	for (unsigned i = 0; i < keys->n; i++)
		if (keys->required & (UINT32_C(1) << i))
			n += 1 + strlen(keys->names[i]) + 1; /* key, value */
	return n;
}
