/*
 * codec.h - private to libweft_schema: the strict msgpack reader and the
 * writer the record codecs share, and the nested-record entry points the
 * report codec reuses.
 *
 * Why a hand-written reader instead of msgpack_unpack_next: the unpacker
 * builds a whole object tree in a zone sized from the lengths the input
 * claims, accepts every msgpack type, and lets the caller find out later
 * what it got. Here each call reads exactly the one type the schema expects
 * at that point, checks a claimed length against the field's limit and
 * against the bytes actually left before anything is allocated, and maps
 * every failure to one enum weft_err. Nesting depth is fixed by the schema
 * (unknown keys are rejected, so there is no generic "skip a value"), so
 * there is no recursion an input could drive.
 *
 * The writer wraps msgpack-c's packer (smallest int encodings, standard
 * headers) over a weft_buf, with a sticky error so an encoder can write a
 * whole record and check once.
 *
 * Wire conventions shared by every codec:
 * - a record is a map with short str keys; a top-level message carries
 *   "v" = WEFT_SCHEMA_VERSION as its FIRST key, so a decoder can answer
 *   WEFT_EVERSION before it meets keys a newer version may have added;
 * - every scalar field is a required key; optional values (NULL pointers,
 *   has_* = false) are left out by the encoder, and the decoder also takes
 *   nil as "absent";
 * - string values are written as bin (paths need not be UTF-8); the decoder
 *   takes str or bin and rejects an embedded NUL with WEFT_EINVAL;
 * - ints are range-checked against the C field, whatever width the input
 *   used to encode them.
 */
#ifndef WEFT_CODEC_H
#define WEFT_CODEC_H

#include <msgpack.h>

#include <weft/schema.h>

/* ---- Reader ---- */

struct weft_rd {
	const uint8_t *p;
	size_t len;
	size_t pos;
};

static inline void weft_rd_init(struct weft_rd *rd, const uint8_t *p,
				size_t len)
{
	rd->p = p;
	rd->len = len;
	rd->pos = 0;
}

/* Longest key any schema map uses; longer keys are unknown keys. */
#define WEFT_RD_MAX_KEY 16

/* A map's known keys: names[i] is bit i of the seen and required masks. */
struct weft_rd_keys {
	const char *const *names;
	unsigned n;
	uint32_t required;
};

/* Consume a nil if one is next. */
bool weft_rd_nil(struct weft_rd *rd);
int weft_rd_bool(struct weft_rd *rd, bool *v);
/* Any msgpack int within [min, max]; WEFT_EINVAL outside it. */
int weft_rd_int(struct weft_rd *rd, int64_t min, int64_t max, int64_t *v);
/* Any int64; an int32 (stored even on error, as 0). */
int weft_rd_i64(struct weft_rd *rd, int64_t *v);
int weft_rd_i32(struct weft_rd *rd, int32_t *v);
int weft_rd_uint(struct weft_rd *rd, uint64_t max, uint64_t *v);
/* A str or bin (or only bin when bin_only) of at most max bytes, pointing
 * into the input. */
int weft_rd_bytes(struct weft_rd *rd, bool bin_only, size_t max,
		  const uint8_t **data, size_t *n);
/* A str or bin of at most max bytes and no NUL, copied and terminated. */
int weft_rd_cstr(struct weft_rd *rd, size_t max, char **out);
/* An array header with at most max elements; each element takes at least
 * min_elem bytes, so a count the remaining input cannot hold is
 * WEFT_ETRUNC before the caller allocates for it. */
int weft_rd_array(struct weft_rd *rd, uint32_t max, size_t min_elem,
		  uint32_t *n);
/* Reads one element of an array into item. */
typedef int (*weft_rd_item_fn)(struct weft_rd *rd, void *item, void *ctx);
/* An array (as weft_rd_array) into a zeroed allocation of n elements of
 * size bytes at *items (left NULL for none), each read by item(rd,
 * &(*items)[i], ctx). *count is the number of elements read, the failed
 * one included, so that the caller's release frees what was read. */
int weft_rd_list(struct weft_rd *rd, uint32_t max, size_t min_elem, size_t size,
		 void **items, size_t *count, weft_rd_item_fn item, void *ctx);
/* A map header. */
int weft_rd_map(struct weft_rd *rd, uint32_t *n);
/* A map header whose first entry must be "v" = WEFT_SCHEMA_VERSION;
 * *n is the number of entries after it. */
int weft_rd_versioned_map(struct weft_rd *rd, uint32_t *n);
/* The next key of a map: its index in keys, checked against and added to
 * *seen (a duplicate is WEFT_EINVAL, as is an unknown key). */
int weft_rd_key(struct weft_rd *rd, const struct weft_rd_keys *keys,
		uint32_t *seen, unsigned *idx);
/* WEFT_EINVAL unless every required key was seen. */
int weft_rd_check_required(const struct weft_rd_keys *keys, uint32_t seen);
/* Reads the value of key (an index into the keys) into ctx. */
typedef int (*weft_rd_entry_fn)(struct weft_rd *rd, void *ctx, unsigned key);
/* A whole map of known keys: its header (versioned: "v" first), each
 * key checked (unknown, duplicate) and its value read by entry, then the
 * required keys. Every record decoder is this loop with its own entry. */
int weft_rd_fields(struct weft_rd *rd, const struct weft_rd_keys *keys,
		   bool versioned, weft_rd_entry_fn entry, void *ctx);
/* A whole top-level message in buf: at most max_len bytes (else
 * WEFT_ETOOBIG), one versioned map of keys read as weft_rd_fields, and
 * nothing after it (WEFT_ETRAILING). On error the caller releases ctx. */
int weft_rd_message(const uint8_t *buf, size_t len, size_t max_len,
		    const struct weft_rd_keys *keys, weft_rd_entry_fn entry,
		    void *ctx);

/* A str or bin of fewer than cap bytes and no NUL, into a fixed array of
 * cap bytes, terminated. */
int weft_rd_fixed_str(struct weft_rd *rd, char *out, size_t cap);

/* Fewest bytes a map with every required key of keys can take. */
size_t weft_rd_min_map_bytes(const struct weft_rd_keys *keys);

/* ---- Writer ---- */

struct weft_wr {
	msgpack_packer pk;
	weft_buf *out;
	size_t start; /* out->len before this message: restored on error */
	int err;
};

void weft_wr_init(struct weft_wr *w, weft_buf *out);
/* WEFT_OK, or the first error (and out back at its old length). */
int weft_wr_finish(struct weft_wr *w);
void weft_wr_map(struct weft_wr *w, uint32_t n);
void weft_wr_array(struct weft_wr *w, uint32_t n);
void weft_wr_key(struct weft_wr *w, const char *key);
void weft_wr_int(struct weft_wr *w, int64_t v);
void weft_wr_uint(struct weft_wr *w, uint64_t v);
void weft_wr_nil(struct weft_wr *w);
void weft_wr_bool(struct weft_wr *w, bool v);
void weft_wr_bin(struct weft_wr *w, const void *data, size_t n);
/* A NUL-terminated string as bin. */
void weft_wr_cstr(struct weft_wr *w, const char *s);
/* Start a top-level map of n entries besides "v", and write "v". */
void weft_wr_versioned_map(struct weft_wr *w, uint32_t n);
/* A map entry: weft_wr_key, then the value as the writer of that type. */
void weft_wr_key_int(struct weft_wr *w, const char *key, int64_t v);
void weft_wr_key_uint(struct weft_wr *w, const char *key, uint64_t v);
void weft_wr_key_bool(struct weft_wr *w, const char *key, bool v);
void weft_wr_key_bin(struct weft_wr *w, const char *key, const void *data,
		     size_t n);
void weft_wr_key_cstr(struct weft_wr *w, const char *key, const char *s);

/* ---- Nested records (codec_record.c), shared with the report codec ---- */

/* Decode one record map at rd. versioned: the map must start with "v"
 * (standalone records); nested ones must not have it. On error the record
 * is left zeroed. */
int weft_process_rec_read(struct weft_rd *rd, weft_process_rec *p,
			  bool versioned);
int weft_file_rec_read(struct weft_rd *rd, weft_file_rec *f, bool versioned);
/* Check a record against the schema's limits, then write it as a map. */
int weft_process_rec_write(struct weft_wr *w, const weft_process_rec *p,
			   bool versioned);
int weft_file_rec_write(struct weft_wr *w, const weft_file_rec *f,
			bool versioned);
/* Fewest bytes a nested record can take (for array count checks). */
size_t weft_process_rec_min_bytes(void);
size_t weft_file_rec_min_bytes(void);

/* Append an allocated warning to r, taking ownership (report.c, so the
 * array keeps the growth scheme weft_report_warn relies on). On error the
 * caller still owns text. */
int weft_report_push_warning(weft_report *r, char *text);

/* Check an argv for the WEFT_MAX_ARGC / WEFT_MAX_ARGV_BYTES limits; argv
 * bytes count every string's bytes without its NUL. */
int weft_argv_check(const char *const *argv, uint32_t argc);
/* Write argv as an array of bin (after weft_argv_check). */
void weft_wr_argv(struct weft_wr *w, const char *const *argv, uint32_t argc);
/* Read an argv array into a NULL-terminated array of argc + 1 pointers. */
int weft_rd_argv(struct weft_rd *rd, char ***argv, uint32_t *argc);
void weft_argv_free(char **argv, uint32_t argc);

#endif /* WEFT_CODEC_H */
