/*
 * codec_record.c - msgpack codecs for process and file records, standalone
 * (with "v", for fragments) and nested (inside a report), and the argv
 * helpers the event codec shares.
 *
 * Process record map:  pid, ppid, exit, exited  required;
 *                      argv (array of bin), exe, cwd  optional;
 *                      schema 3: i (index), par (parent index), bx (came
 *                      by exec), execd, t0, t1 (start, end)  optional;
 *                      schema 4: xh (exe hash, 32-byte bin), env (array
 *                      of maps: n (name) and h (32-byte bin) or v (the
 *                      value in clear)), enveq (true: the parent's
 *                      environment), noenv (why it is unknown; nil or a
 *                      string)  optional, at most one of env, enveq,
 *                      noenv.
 * File record map:     path, rd, wr, cr, del  required;
 *                      ren, size, hash (32-byte bin), nohash, first
 *                      (map of dev, ino, size, mtime)  optional;
 *                      schema 3: procs, an array of touch maps (p, f
 *                      required; s, o, w optional)  optional.
 * Optional values are left out when NULL / has_* is false; nil is read as
 * absent. The encoder checks the same limits and ranges the decoder does,
 * so whatever encodes also decodes.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "codec.h"

void weft_env_value_hash(const char *value, size_t len, uint8_t out[32])
{
	static const char tag[] = "weft env value v1";
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, (const uint8_t *)tag, sizeof(tag));
	crypto_generichash_update(&st, (const uint8_t *)value, len);
	crypto_generichash_final(&st, out, 32);
}

/* ---- argv ---- */

int weft_argv_check(const char *const *argv, uint32_t argc)
{
	if (argc > WEFT_MAX_ARGC)
		return WEFT_ETOOBIG;
	if (argc && !argv)
		return WEFT_EINVAL;
	size_t total = 0;
	for (uint32_t i = 0; i < argc; i++) {
		if (!argv[i])
			return WEFT_EINVAL;
		/* Bounded scan: an argv past the limit is not read to its
		 * end. */
		total += strnlen(argv[i], WEFT_MAX_ARGV_BYTES + 1);
		if (total > WEFT_MAX_ARGV_BYTES)
			return WEFT_ETOOBIG;
	}
	return WEFT_OK;
}

void weft_wr_argv(struct weft_wr *w, const char *const *argv, uint32_t argc)
{
	weft_wr_array(w, argc);
	for (uint32_t i = 0; i < argc; i++)
		weft_wr_cstr(w, argv[i]);
}

void weft_argv_free(char **argv, uint32_t argc)
{
	if (!argv)
		return;
	for (uint32_t i = 0; i < argc; i++)
		free(argv[i]);
	free(argv);
}

int weft_rd_argv(struct weft_rd *rd, char ***argv, uint32_t *argc)
{
	uint32_t n;
	int rc = weft_rd_array(rd, WEFT_MAX_ARGC, 1, &n);
	if (rc)
		return rc;
	/* NULL-terminated, so it can go to execve as it is. */
	char **a = calloc((size_t)n + 1, sizeof(*a));
	if (!a)
		return WEFT_ENOMEM;
	size_t budget = WEFT_MAX_ARGV_BYTES;
	for (uint32_t i = 0; i < n; i++) {
		rc = weft_rd_cstr(rd, budget, &a[i]);
		if (rc) {
			weft_argv_free(a, i);
			return rc;
		}
		budget -= strlen(a[i]);
	}
	*argv = a;
	*argc = n;
	return WEFT_OK;
}

/* A string pointer that, when set, must fit max bytes. */
static int check_opt_str(const char *s, size_t max)
{
	if (s && strnlen(s, max + 1) > max)
		return WEFT_ETOOBIG;
	return WEFT_OK;
}

/* A time stamp or similar value where 0 means unknown: left out then. */
static void write_opt_time(struct weft_wr *w, const char *key, int64_t t)
{
	if (t)
		weft_wr_key_int(w, key, t);
}

/* ---- Process records ---- */

enum {
	P_PID,
	P_PPID,
	P_EXIT,
	P_EXITED,
	P_ARGV,
	P_EXE,
	P_CWD,
	/* Schema 3: process images (all optional). */
	P_INDEX,
	P_PARENT,
	P_BYEXEC,
	P_EXECD,
	P_T0,
	P_T1,
	/* Schema 4: what the result depends on besides files. */
	P_EXEHASH,
	P_ENV,
	P_ENVEQ,
	P_NOENV,
	P_NKEYS
};
static const char *const process_key_names[P_NKEYS] = {
	"pid", "ppid", "exit", "exited", "argv",  "exe",
	"cwd", "i",    "par",  "bx",     "execd", "t0",
	"t1",  "xh",   "env",  "enveq",  "noenv",
};
static const struct weft_rd_keys process_keys = {
	process_key_names,
	P_NKEYS,
	1u << P_PID | 1u << P_PPID | 1u << P_EXIT | 1u << P_EXITED,
};

/* Exit codes are what a shell shows: 0..255, 128 + signal when killed.
 * A negative value is not an exit status, so it is rejected both ways. */
#define EXIT_MIN 0
#define EXIT_MAX 255

size_t weft_process_rec_min_bytes(void)
{
	return weft_rd_min_map_bytes(&process_keys);
}

/* An env entry map: n required, exactly one of h and v. */
enum { E_NAME, E_HASH, E_VALUE, E_NKEYS };
static const char *const env_key_names[E_NKEYS] = {"n", "h", "v"};
static const struct weft_rd_keys env_keys = {
	env_key_names,
	E_NKEYS,
	1u << E_NAME,
};

/* A name is what execve takes before '=': not empty, no '=', no NUL. */
static bool env_name_ok(const char *n)
{
	return n && n[0] && !strchr(n, '=') &&
	       strnlen(n, WEFT_MAX_ENV_NAME_BYTES + 1) <=
		       WEFT_MAX_ENV_NAME_BYTES;
}

static int env_check(const weft_process_rec *p)
{
	if (p->env_state > WEFT_ENV_UNKNOWN)
		return WEFT_EINVAL;
	if (p->nenv > WEFT_MAX_ENV_ENTRIES)
		return WEFT_ETOOBIG;
	if ((p->nenv && (!p->env || p->env_state != WEFT_ENV_LISTED)) ||
	    (p->env_missing && p->env_state != WEFT_ENV_UNKNOWN) ||
	    (p->env_state == WEFT_ENV_PARENT && !p->has_parent))
		return WEFT_EINVAL;
	if (check_opt_str(p->env_missing, WEFT_MAX_WARNING_BYTES))
		return WEFT_ETOOBIG;
	size_t clear = 0;
	for (uint32_t i = 0; i < p->nenv; i++) {
		const weft_env_entry *e = &p->env[i];
		if (!env_name_ok(e->name))
			return WEFT_EINVAL;
		/* Sorted and unique: one value per name, one order. */
		if (i && strcmp(p->env[i - 1].name, e->name) >= 0)
			return WEFT_EINVAL;
		if (e->value) {
			clear += strnlen(e->value, WEFT_MAX_ARGV_BYTES + 1);
			if (clear > WEFT_MAX_ARGV_BYTES)
				return WEFT_ETOOBIG;
		}
	}
	return WEFT_OK;
}

static int process_check(const weft_process_rec *p)
{
	if (p->pid < 1 || p->ppid < 0 || p->exit_code < EXIT_MIN ||
	    p->exit_code > EXIT_MAX || p->started_ns < 0 || p->ended_ns < 0 ||
	    (p->has_index && p->index >= WEFT_MAX_PROCESSES) ||
	    (p->has_parent && p->parent >= WEFT_MAX_PROCESSES))
		return WEFT_EINVAL;
	int rc = weft_argv_check((const char *const *)p->argv, p->argc);
	if (rc)
		return rc;
	if (check_opt_str(p->exe, WEFT_MAX_PATH_BYTES) ||
	    check_opt_str(p->cwd, WEFT_MAX_PATH_BYTES))
		return WEFT_ETOOBIG;
	return env_check(p);
}

int weft_process_rec_write(struct weft_wr *w, const weft_process_rec *p,
			   bool versioned)
{
	int rc = process_check(p);
	if (rc)
		return rc;
	uint32_t n = 4 + !!p->argv + !!p->exe + !!p->cwd + p->has_index +
		     p->has_parent + p->by_exec + p->execd + !!p->started_ns +
		     !!p->ended_ns + p->has_exe_hash +
		     (p->env_state != WEFT_ENV_NONE);
	if (versioned)
		weft_wr_versioned_map(w, n);
	else
		weft_wr_map(w, n);
	weft_wr_key_int(w, "pid", p->pid);
	weft_wr_key_int(w, "ppid", p->ppid);
	weft_wr_key_int(w, "exit", p->exit_code);
	weft_wr_key_bool(w, "exited", p->exited);
	if (p->argv) {
		weft_wr_key(w, "argv");
		weft_wr_argv(w, (const char *const *)p->argv, p->argc);
	}
	if (p->exe)
		weft_wr_key_cstr(w, "exe", p->exe);
	if (p->cwd)
		weft_wr_key_cstr(w, "cwd", p->cwd);
	if (p->has_index)
		weft_wr_key_uint(w, "i", p->index);
	if (p->has_parent)
		weft_wr_key_uint(w, "par", p->parent);
	if (p->by_exec)
		weft_wr_key_bool(w, "bx", true);
	if (p->execd)
		weft_wr_key_bool(w, "execd", true);
	write_opt_time(w, "t0", p->started_ns);
	write_opt_time(w, "t1", p->ended_ns);
	if (p->has_exe_hash)
		weft_wr_key_bin(w, "xh", p->exe_hash, sizeof(p->exe_hash));
	switch (p->env_state) {
	case WEFT_ENV_LISTED:
		weft_wr_key(w, "env");
		weft_wr_array(w, p->nenv);
		for (uint32_t i = 0; i < p->nenv; i++) {
			const weft_env_entry *e = &p->env[i];
			weft_wr_map(w, 2);
			weft_wr_key_cstr(w, "n", e->name);
			if (e->value) {
				weft_wr_key_cstr(w, "v", e->value);
			} else {
				weft_wr_key_bin(w, "h", e->hash,
						sizeof(e->hash));
			}
		}
		break;
	case WEFT_ENV_PARENT:
		weft_wr_key_bool(w, "enveq", true);
		break;
	case WEFT_ENV_UNKNOWN:
		weft_wr_key(w, "noenv");
		if (p->env_missing)
			weft_wr_cstr(w, p->env_missing);
		else
			weft_wr_nil(w);
		break;
	}
	return w->err;
}

struct env_read_ctx {
	size_t clear; /* bytes of values in clear so far */
	bool has_hash;
};

static int env_entry_field(struct weft_rd *rd, void *ctx, unsigned key)
{
	weft_env_entry *e = ((void **)ctx)[0];
	struct env_read_ctx *c = ((void **)ctx)[1];
	const uint8_t *data;
	size_t n;
	int rc;
	switch (key) {
	case E_NAME:
		rc = weft_rd_cstr(rd, WEFT_MAX_ENV_NAME_BYTES, &e->name);
		if (rc == WEFT_OK && !env_name_ok(e->name))
			rc = WEFT_EINVAL;
		return rc;
	case E_HASH:
		rc = weft_rd_bytes(rd, true, 32, &data, &n);
		if (rc == WEFT_ETOOBIG || (rc == WEFT_OK && n != 32))
			return WEFT_EINVAL;
		if (rc == WEFT_OK) {
			memcpy(e->hash, data, 32);
			c->has_hash = true;
		}
		return rc;
	case E_VALUE:
		rc = weft_rd_cstr(rd, WEFT_MAX_ARGV_BYTES - c->clear,
				  &e->value);
		if (rc == WEFT_OK)
			c->clear += strlen(e->value);
		return rc;
	}
	return WEFT_EINVAL;
}

static int env_entry_read(struct weft_rd *rd, void *item, void *ctx)
{
	struct env_read_ctx *c = ctx;
	c->has_hash = false;
	void *pair[2] = {item, c};
	int rc = weft_rd_fields(rd, &env_keys, false, env_entry_field, pair);
	const weft_env_entry *e = item;
	/* Exactly one of the hash and the value. */
	if (rc == WEFT_OK && c->has_hash == !!e->value)
		rc = WEFT_EINVAL;
	return rc;
}

static int env_read(struct weft_rd *rd, weft_process_rec *p)
{
	if (p->env_state != WEFT_ENV_NONE)
		return WEFT_EINVAL; /* env, enveq and noenv exclude each other
				     */
	struct env_read_ctx c = {0, false};
	size_t n = 0;
	/* "n" and "v" with a one-byte name and an empty value: 7 bytes. */
	int rc = weft_rd_list(rd, WEFT_MAX_ENV_ENTRIES, 7,
			      sizeof(weft_env_entry), (void **)&p->env, &n,
			      env_entry_read, &c);
	p->nenv = (uint32_t)n;
	p->env_state = WEFT_ENV_LISTED;
	for (uint32_t i = 1; rc == WEFT_OK && i < p->nenv; i++)
		if (strcmp(p->env[i - 1].name, p->env[i].name) >= 0)
			rc = WEFT_EINVAL;
	return rc;
}

static int process_read_entry(struct weft_rd *rd, void *ctx, unsigned key)
{
	weft_process_rec *p = ctx;
	int64_t v = 0;
	int rc;
	switch (key) {
	case P_PID:
		rc = weft_rd_int(rd, 1, INT32_MAX, &v);
		p->pid = (int32_t)v;
		return rc;
	case P_PPID:
		rc = weft_rd_int(rd, 0, INT32_MAX, &v);
		p->ppid = (int32_t)v;
		return rc;
	case P_EXIT:
		rc = weft_rd_int(rd, EXIT_MIN, EXIT_MAX, &v);
		p->exit_code = (int32_t)v;
		return rc;
	case P_EXITED:
		return weft_rd_bool(rd, &p->exited);
	case P_ARGV:
		if (weft_rd_nil(rd))
			return WEFT_OK;
		return weft_rd_argv(rd, &p->argv, &p->argc);
	case P_EXE:
		if (weft_rd_nil(rd))
			return WEFT_OK;
		return weft_rd_cstr(rd, WEFT_MAX_PATH_BYTES, &p->exe);
	case P_CWD:
		if (weft_rd_nil(rd))
			return WEFT_OK;
		return weft_rd_cstr(rd, WEFT_MAX_PATH_BYTES, &p->cwd);
	case P_NOENV:
		/* nil here is "unknown, no reason given", not absent. */
		if (p->env_state != WEFT_ENV_NONE)
			return WEFT_EINVAL;
		p->env_state = WEFT_ENV_UNKNOWN;
		if (weft_rd_nil(rd))
			return WEFT_OK;
		return weft_rd_cstr(rd, WEFT_MAX_WARNING_BYTES,
				    &p->env_missing);
	}
	if (weft_rd_nil(rd))
		return WEFT_OK;
	switch (key) {
	case P_INDEX:
		rc = weft_rd_int(rd, 0, WEFT_MAX_PROCESSES - 1, &v);
		p->index = (uint32_t)v;
		p->has_index = rc == WEFT_OK;
		return rc;
	case P_PARENT:
		rc = weft_rd_int(rd, 0, WEFT_MAX_PROCESSES - 1, &v);
		p->parent = (uint32_t)v;
		p->has_parent = rc == WEFT_OK;
		return rc;
	case P_BYEXEC:
		return weft_rd_bool(rd, &p->by_exec);
	case P_EXECD:
		return weft_rd_bool(rd, &p->execd);
	case P_T0:
		return weft_rd_int(rd, 0, INT64_MAX, &p->started_ns);
	case P_T1:
		return weft_rd_int(rd, 0, INT64_MAX, &p->ended_ns);
	case P_EXEHASH: {
		const uint8_t *data;
		size_t n;
		rc = weft_rd_bytes(rd, true, 32, &data, &n);
		if (rc == WEFT_ETOOBIG || (rc == WEFT_OK && n != 32))
			return WEFT_EINVAL;
		if (rc == WEFT_OK) {
			memcpy(p->exe_hash, data, 32);
			p->has_exe_hash = true;
		}
		return rc;
	}
	case P_ENV:
		return env_read(rd, p);
	case P_ENVEQ: {
		bool eq = false;
		rc = weft_rd_bool(rd, &eq);
		if (rc == WEFT_OK && eq) {
			if (p->env_state != WEFT_ENV_NONE)
				return WEFT_EINVAL;
			p->env_state = WEFT_ENV_PARENT;
		}
		return rc;
	}
	}
	return WEFT_EINVAL;
}

int weft_process_rec_read(struct weft_rd *rd, weft_process_rec *p,
			  bool versioned)
{
	memset(p, 0, sizeof(*p));
	int rc = weft_rd_fields(rd, &process_keys, versioned,
				process_read_entry, p);
	if (rc == WEFT_OK && p->env_state == WEFT_ENV_PARENT && !p->has_parent)
		rc = WEFT_EINVAL; /* the same as nothing */
	if (rc)
		weft_process_rec_release(p);
	return rc;
}

int weft_process_rec_encode(const weft_process_rec *p, weft_buf *out)
{
	struct weft_wr w;
	weft_wr_init(&w, out);
	int rc = weft_process_rec_write(&w, p, true);
	if (rc && !w.err)
		w.err = rc;
	return weft_wr_finish(&w);
}

int weft_process_rec_decode(const uint8_t *buf, size_t len, weft_process_rec *p)
{
	memset(p, 0, sizeof(*p));
	if (len > WEFT_MAX_MESSAGE_BYTES)
		return WEFT_ETOOBIG;
	struct weft_rd rd;
	weft_rd_init(&rd, buf, len);
	int rc = weft_process_rec_read(&rd, p, true);
	if (rc == WEFT_OK && rd.pos != len) {
		weft_process_rec_release(p);
		rc = WEFT_ETRAILING;
	}
	return rc;
}

/* ---- File records ---- */

enum {
	F_PATH,
	F_RD,
	F_WR,
	F_CR,
	F_DEL,
	F_REN,
	F_SIZE,
	F_HASH,
	F_NOHASH,
	F_FIRST,
	/* Schema 2: versions and locations (all optional). */
	F_USED,
	F_UPD,
	F_RHASH,
	F_NORHASH,
	F_FINAL,
	F_TOPEN,
	F_TWRITE,
	F_LFS,
	F_LPATH,
	/* Schema 3: attribution to processes (optional). */
	F_PROCS,
	F_NKEYS
};
static const char *const file_key_names[F_NKEYS] = {
	"path",  "rd",     "wr",     "cr",   "del",   "ren",   "size",
	"hash",  "nohash", "first",  "used", "upd",   "rhash", "norhash",
	"final", "topen",  "twrite", "lfs",  "lpath", "procs",
};
static const struct weft_rd_keys file_keys = {
	file_key_names,
	F_NKEYS,
	1u << F_PATH | 1u << F_RD | 1u << F_WR | 1u << F_CR | 1u << F_DEL,
};

/* The stat identity maps "first" and "final": dev, ino, mtime required;
 * size in "first" only (the final size is the record's "size"); ctime
 * optional (schema 1 had none). */
enum { S_DEV, S_INO, S_SIZE, S_MTIME, S_CTIME, S_NKEYS };
static const char *const stat_key_names[S_NKEYS] = {
	"dev", "ino", "size", "mtime", "ctime",
};
static const struct weft_rd_keys first_keys = {
	stat_key_names,
	S_NKEYS,
	1u << S_DEV | 1u << S_INO | 1u << S_SIZE | 1u << S_MTIME,
};
static const struct weft_rd_keys final_keys = {
	stat_key_names,
	S_NKEYS,
	1u << S_DEV | 1u << S_INO | 1u << S_MTIME,
};

/* A touch: p (process index) and f (flags) required; s (the source
 * process, with WEFT_TOUCH_SRC_RUN), o (first open), w (last write). */
enum { T_PROC, T_FLAGS, T_SRC, T_OPEN, T_WRITE, T_NKEYS };
static const char *const touch_key_names[T_NKEYS] = {"p", "f", "s", "o",
						      "w"};
static const struct weft_rd_keys touch_keys = {
	touch_key_names,
	T_NKEYS,
	1u << T_PROC | 1u << T_FLAGS,
};

/* hash_missing is a short human reason, held to a warning's limit; a
 * location's filesystem name is a mount source and a little more. */
#define NOHASH_MAX WEFT_MAX_WARNING_BYTES
#define LOC_FS_MAX (WEFT_MAX_PATH_BYTES + 128)

size_t weft_file_rec_min_bytes(void)
{
	return weft_rd_min_map_bytes(&file_keys);
}

bool weft_path_ok(const char *p)
{
	if (!p || p[0] != '/')
		return false;
	if (p[1] == '\0')
		return true;
	/* Components between slashes: none empty, ".", or "..". */
	for (const char *c = p + 1;;) {
		const char *e = strchr(c, '/');
		size_t n = e ? (size_t)(e - c) : strlen(c);
		if (n == 0 || (n == 1 && c[0] == '.') ||
		    (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		if (!e)
			return true;
		c = e + 1;
	}
}

static int file_check(const weft_file_rec *f)
{
	if (!f->path)
		return WEFT_EINVAL;
	if (check_opt_str(f->path, WEFT_MAX_PATH_BYTES) ||
	    check_opt_str(f->renamed_to, WEFT_MAX_PATH_BYTES) ||
	    check_opt_str(f->used_path, WEFT_MAX_PATH_BYTES) ||
	    check_opt_str(f->hash_missing, NOHASH_MAX) ||
	    check_opt_str(f->read_hash_missing, NOHASH_MAX) ||
	    check_opt_str(f->loc_fs, LOC_FS_MAX) ||
	    check_opt_str(f->loc_path, WEFT_MAX_PATH_BYTES))
		return WEFT_ETOOBIG;
	/* Paths are absolute and normalized (DESIGN.md, file records). */
	if (!weft_path_ok(f->path) ||
	    (f->renamed_to && !weft_path_ok(f->renamed_to)) ||
	    (f->used_path && !weft_path_ok(f->used_path)) ||
	    (f->loc_path && !weft_path_ok(f->loc_path)) ||
	    !f->loc_fs != !f->loc_path)
		return WEFT_EINVAL;
	/* Sizes are byte counts: a negative one is a bug upstream. */
	if ((f->has_size && f->size < 0) ||
	    (f->has_first_stat && f->first_size < 0))
		return WEFT_EINVAL;
	if (f->ntouches > WEFT_MAX_PROCESSES || (f->ntouches && !f->touches))
		return WEFT_ETOOBIG;
	for (uint32_t i = 0; i < f->ntouches; i++) {
		const weft_file_touch *t = &f->touches[i];
		if (t->proc >= WEFT_MAX_PROCESSES ||
		    (t->flags & ~WEFT_TOUCH_ALL) ||
		    ((t->flags & WEFT_TOUCH_SRC_RUN) &&
		     t->src >= WEFT_MAX_PROCESSES) ||
		    t->first_open_ns < 0 || t->last_write_ns < 0)
			return WEFT_EINVAL;
	}
	return WEFT_OK;
}

static void touch_write(struct weft_wr *w, const weft_file_touch *t)
{
	bool src = t->flags & WEFT_TOUCH_SRC_RUN;
	weft_wr_map(w, 2 + src + !!t->first_open_ns + !!t->last_write_ns);
	weft_wr_key_uint(w, "p", t->proc);
	weft_wr_key_uint(w, "f", t->flags);
	if (src)
		weft_wr_key_uint(w, "s", t->src);
	write_opt_time(w, "o", t->first_open_ns);
	write_opt_time(w, "w", t->last_write_ns);
}

static int touch_read_entry(struct weft_rd *rd, void *ctx, unsigned key)
{
	weft_file_touch *t = ctx;
	int64_t v = 0;
	int rc;
	switch (key) {
	case T_PROC:
		rc = weft_rd_int(rd, 0, WEFT_MAX_PROCESSES - 1, &v);
		t->proc = (uint32_t)v;
		return rc;
	case T_FLAGS:
		rc = weft_rd_int(rd, 0, WEFT_TOUCH_ALL, &v);
		t->flags = (uint32_t)v;
		return rc;
	case T_SRC:
		rc = weft_rd_int(rd, 0, WEFT_MAX_PROCESSES - 1, &v);
		t->src = (uint32_t)v;
		return rc;
	case T_OPEN:
		return weft_rd_int(rd, 0, INT64_MAX, &t->first_open_ns);
	case T_WRITE:
		return weft_rd_int(rd, 0, INT64_MAX, &t->last_write_ns);
	}
	return WEFT_EINVAL;
}

static int touch_read(struct weft_rd *rd, void *item, void *ctx)
{
	(void)ctx;
	return weft_rd_fields(rd, &touch_keys, false, touch_read_entry, item);
}

int weft_file_rec_write(struct weft_wr *w, const weft_file_rec *f,
			bool versioned)
{
	int rc = file_check(f);
	if (rc)
		return rc;
	uint32_t n = 5 + !!f->renamed_to + f->has_size + f->has_hash +
		     !!f->hash_missing + f->has_first_stat + !!f->used_path +
		     f->updated + f->has_read_hash + !!f->read_hash_missing +
		     f->has_final_stat + !!f->first_open_ns +
		     !!f->last_write_ns + 2 * !!f->loc_fs + !!f->ntouches;
	if (versioned)
		weft_wr_versioned_map(w, n);
	else
		weft_wr_map(w, n);
	weft_wr_key_cstr(w, "path", f->path);
	weft_wr_key_bool(w, "rd", f->read);
	weft_wr_key_bool(w, "wr", f->written);
	weft_wr_key_bool(w, "cr", f->created);
	weft_wr_key_bool(w, "del", f->deleted);
	if (f->renamed_to)
		weft_wr_key_cstr(w, "ren", f->renamed_to);
	if (f->has_size)
		weft_wr_key_int(w, "size", f->size);
	if (f->has_hash)
		weft_wr_key_bin(w, "hash", f->hash, sizeof(f->hash));
	if (f->hash_missing)
		weft_wr_key_cstr(w, "nohash", f->hash_missing);
	if (f->has_first_stat) {
		weft_wr_key(w, "first");
		weft_wr_map(w, 4 + !!f->first_ctime_ns);
		weft_wr_key_uint(w, "dev", f->first_dev);
		weft_wr_key_uint(w, "ino", f->first_ino);
		weft_wr_key_int(w, "size", f->first_size);
		weft_wr_key_int(w, "mtime", f->first_mtime_ns);
		write_opt_time(w, "ctime", f->first_ctime_ns);
	}
	if (f->used_path)
		weft_wr_key_cstr(w, "used", f->used_path);
	if (f->updated)
		weft_wr_key_bool(w, "upd", true);
	if (f->has_read_hash)
		weft_wr_key_bin(w, "rhash", f->read_hash, sizeof(f->read_hash));
	if (f->read_hash_missing)
		weft_wr_key_cstr(w, "norhash", f->read_hash_missing);
	if (f->has_final_stat) {
		weft_wr_key(w, "final");
		weft_wr_map(w, 3 + !!f->final_ctime_ns);
		weft_wr_key_uint(w, "dev", f->final_dev);
		weft_wr_key_uint(w, "ino", f->final_ino);
		weft_wr_key_int(w, "mtime", f->final_mtime_ns);
		write_opt_time(w, "ctime", f->final_ctime_ns);
	}
	write_opt_time(w, "topen", f->first_open_ns);
	write_opt_time(w, "twrite", f->last_write_ns);
	if (f->loc_fs) {
		weft_wr_key_cstr(w, "lfs", f->loc_fs);
		weft_wr_key_cstr(w, "lpath", f->loc_path);
	}
	if (f->ntouches) {
		weft_wr_key(w, "procs");
		weft_wr_array(w, f->ntouches);
		for (uint32_t i = 0; i < f->ntouches; i++)
			touch_write(w, &f->touches[i]);
	}
	return w->err;
}

/* Where a stat identity map's values go: the first or the final fields
 * of a file record ("size" in a final map is read but not kept). */
struct stat_fields {
	uint64_t *dev, *ino;
	int64_t *size, *mtime, *ctime;
};

static int stat_entry_read(struct weft_rd *rd, void *ctx, unsigned key)
{
	const struct stat_fields *s = ctx;
	switch (key) {
	case S_DEV:
		return weft_rd_uint(rd, UINT64_MAX, s->dev);
	case S_INO:
		return weft_rd_uint(rd, UINT64_MAX, s->ino);
	case S_SIZE:
		return weft_rd_int(rd, 0, INT64_MAX, s->size);
	case S_MTIME:
		return weft_rd_i64(rd, s->mtime);
	case S_CTIME:
		return weft_rd_i64(rd, s->ctime);
	}
	return WEFT_EINVAL;
}

/* A stat identity map into the first (final false) or final fields. */
static int stat_map_read(struct weft_rd *rd, weft_file_rec *f, bool final)
{
	int64_t final_size;
	struct stat_fields first = {&f->first_dev, &f->first_ino,
				    &f->first_size, &f->first_mtime_ns,
				    &f->first_ctime_ns};
	struct stat_fields last = {&f->final_dev, &f->final_ino, &final_size,
				   &f->final_mtime_ns, &f->final_ctime_ns};
	int rc = weft_rd_fields(rd, final ? &final_keys : &first_keys, false,
				stat_entry_read, final ? &last : &first);
	if (rc == WEFT_OK && final)
		f->has_final_stat = true;
	else if (rc == WEFT_OK)
		f->has_first_stat = true;
	return rc;
}

/* A BLAKE2b-256 as bin, exactly 32 bytes. Only bin: a hash is bytes, and
 * a str here is a sender confusing it with the hex text form. */
static int hash_read(struct weft_rd *rd, uint8_t out[32], bool *has)
{
	const uint8_t *data;
	size_t n;
	int rc = weft_rd_bytes(rd, true, 32, &data, &n);
	if (rc == WEFT_ETOOBIG)
		return WEFT_EINVAL;
	if (rc)
		return rc;
	if (n != 32)
		return WEFT_EINVAL;
	memcpy(out, data, n);
	*has = true;
	return WEFT_OK;
}

static int path_read(struct weft_rd *rd, char **out)
{
	int rc = weft_rd_cstr(rd, WEFT_MAX_PATH_BYTES, out);
	if (rc == WEFT_OK && !weft_path_ok(*out))
		rc = WEFT_EINVAL;
	return rc;
}

static int file_read_entry(struct weft_rd *rd, void *ctx, unsigned key)
{
	weft_file_rec *f = ctx;
	switch (key) {
	case F_PATH:
		return path_read(rd, &f->path);
	case F_RD:
		return weft_rd_bool(rd, &f->read);
	case F_WR:
		return weft_rd_bool(rd, &f->written);
	case F_CR:
		return weft_rd_bool(rd, &f->created);
	case F_DEL:
		return weft_rd_bool(rd, &f->deleted);
	}
	if (weft_rd_nil(rd))
		return WEFT_OK; /* an optional value, absent */
	int rc;
	switch (key) {
	case F_REN:
		return path_read(rd, &f->renamed_to);
	case F_SIZE:
		rc = weft_rd_int(rd, 0, INT64_MAX, &f->size);
		f->has_size = rc == WEFT_OK;
		return rc;
	case F_HASH:
		return hash_read(rd, f->hash, &f->has_hash);
	case F_NOHASH:
		return weft_rd_cstr(rd, NOHASH_MAX, &f->hash_missing);
	case F_FIRST:
		return stat_map_read(rd, f, false);
	case F_USED:
		return path_read(rd, &f->used_path);
	case F_UPD:
		return weft_rd_bool(rd, &f->updated);
	case F_RHASH:
		return hash_read(rd, f->read_hash, &f->has_read_hash);
	case F_NORHASH:
		return weft_rd_cstr(rd, NOHASH_MAX, &f->read_hash_missing);
	case F_FINAL:
		return stat_map_read(rd, f, true);
	case F_TOPEN:
		return weft_rd_int(rd, 0, INT64_MAX, &f->first_open_ns);
	case F_TWRITE:
		return weft_rd_int(rd, 0, INT64_MAX, &f->last_write_ns);
	case F_LFS:
		return weft_rd_cstr(rd, LOC_FS_MAX, &f->loc_fs);
	case F_LPATH:
		return path_read(rd, &f->loc_path);
	case F_PROCS: {
		size_t n = 0;
		/* "p" and "f" with one-byte values: 6 bytes at least. */
		rc = weft_rd_list(rd, WEFT_MAX_PROCESSES, 6,
				      sizeof(weft_file_touch),
				      (void **)&f->touches, &n, touch_read,
				      NULL);
		f->ntouches = (uint32_t)n;
		return rc;
	}
	}
	return WEFT_EINVAL;
}

int weft_file_rec_read(struct weft_rd *rd, weft_file_rec *f, bool versioned)
{
	memset(f, 0, sizeof(*f));
	int rc = weft_rd_fields(rd, &file_keys, versioned, file_read_entry, f);
	if (rc == WEFT_OK && !f->loc_fs != !f->loc_path)
		rc = WEFT_EINVAL; /* a location is both halves or neither */
	if (rc)
		weft_file_rec_release(f);
	return rc;
}

int weft_file_rec_encode(const weft_file_rec *f, weft_buf *out)
{
	struct weft_wr w;
	weft_wr_init(&w, out);
	int rc = weft_file_rec_write(&w, f, true);
	if (rc && !w.err)
		w.err = rc;
	return weft_wr_finish(&w);
}

int weft_file_rec_decode(const uint8_t *buf, size_t len, weft_file_rec *f)
{
	memset(f, 0, sizeof(*f));
	if (len > WEFT_MAX_MESSAGE_BYTES)
		return WEFT_ETOOBIG;
	struct weft_rd rd;
	weft_rd_init(&rd, buf, len);
	int rc = weft_file_rec_read(&rd, f, true);
	if (rc == WEFT_OK && rd.pos != len) {
		weft_file_rec_release(f);
		rc = WEFT_ETRAILING;
	}
	return rc;
}
