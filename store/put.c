/*
 * put.c - storing a run: its processes, its file records (each at its
 * location, linked into that location's chain) and the uses of files by
 * its processes, for weft_store_put_run and the coordinator's writer
 * (ingest.c, through store_put_process and store_put_file_with).
 *
 * Paths, argv, exe, cwd and warnings are byte strings stored as BLOBs
 * (store.c); unsigned 64-bit values as the signed integer with the same
 * bits.
 */
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

static bool name_ok(const char name[WEFT_MAX_NAME_BYTES])
{
	return memchr(name, '\0', WEFT_MAX_NAME_BYTES) != NULL;
}

/* The id of a row of a unique-valued table (paths, artifacts), inserting
 * it when absent. `get` selects id by ?1, `add` inserts ?1. */
int store_intern(weft_store *s, sqlite3_stmt *get, sqlite3_stmt *add,
		 const void *value, int len, sqlite3_int64 *id, bool *added)
{
	if (added)
		*added = false;
	sqlite3_reset(get);
	sqlite3_bind_blob(get, 1, value, len, SQLITE_STATIC);
	int rc = sqlite3_step(get);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(get, 0);
		sqlite3_reset(get);
		return WEFT_OK;
	}
	sqlite3_reset(get);
	if (rc != SQLITE_DONE)
		return WEFT_EDB;
	sqlite3_reset(add);
	sqlite3_bind_blob(add, 1, value, len, SQLITE_STATIC);
	if (sqlite3_step(add) != SQLITE_DONE) {
		sqlite3_reset(add);
		return WEFT_EDB;
	}
	sqlite3_reset(add);
	*id = sqlite3_last_insert_rowid(s->db);
	if (added)
		*added = true;
	return WEFT_OK;
}

int store_check_report(const weft_report *r)
{
	if (!name_ok(r->run_id) || !r->run_id[0] || !name_ok(r->backend) ||
	    !name_ok(r->node))
		return WEFT_EINVAL;
	for (size_t i = 0; i < r->nprocesses; i++) {
		const weft_process_rec *p = &r->processes[i];
		if (p->argc && !p->argv)
			return WEFT_EINVAL;
		for (uint32_t a = 0; a < p->argc; a++)
			if (!p->argv[a])
				return WEFT_EINVAL;
	}
	for (size_t i = 0; i < r->nfiles; i++)
		if (!r->files[i].path)
			return WEFT_EINVAL;
	for (size_t i = 0; i < r->nwarnings; i++)
		if (!r->warnings[i])
			return WEFT_EINVAL;
	return WEFT_OK;
}

const char *const store_put_sql[PUT_NSTMT] = {
	[PUT_RUN] = "INSERT INTO runs (id, backend, node, exit_code, "
		    "started_ns, ended_ns, dropped_events) "
		    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[PUT_PROCESS] = "INSERT INTO processes (run, seq, pid, ppid, argc, "
			"argv, exe, cwd, exit_code, exited, parent, by_exec, "
			"execd, started_ns, ended_ns, indexed, exe_hash, "
			"env_state, env, env_missing) "
			"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
			"?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
	[PUT_TOUCH] = "INSERT INTO touches (run, path, proc, flags, src, "
		      "first_open_ns, last_write_ns) "
		      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[PUT_PATH_GET] = "SELECT id FROM paths WHERE path = ?1",
	[PUT_PATH_ADD] = "INSERT INTO paths (path) VALUES (?1)",
	[PUT_ARTIFACT_GET] = "SELECT id FROM artifacts WHERE hash = ?1",
	[PUT_ARTIFACT_ADD] = "INSERT INTO artifacts (hash) VALUES (?1)",
	[PUT_FS_GET] = "SELECT id FROM filesystems WHERE name = ?1",
	[PUT_FS_ADD] = "INSERT INTO filesystems (name) VALUES (?1)",
	[PUT_FILE] = "INSERT INTO file_io (run, path, artifact, read, "
		     "written, created, deleted, renamed_to, size, "
		     "hash_missing, first_dev, first_ino, first_mtime_ns, "
		     "first_ctime_ns, first_size, loc_fs, loc_path, "
		     "used_path, updated, read_artifact, read_hash_missing, "
		     "final_dev, final_ino, final_mtime_ns, final_ctime_ns, "
		     "first_open_ns, last_write_ns, prev_run, prev_path) "
		     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
		     "?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, "
		     "?23, ?24, ?25, ?26, ?27, ?28, ?29)",
	[PUT_HEAD_GET] = "SELECT run, path FROM loc_heads "
			 "WHERE loc_path = ?1 AND loc_fs = ?2",
	[PUT_HEAD_SET] = "INSERT INTO loc_heads (loc_path, loc_fs, run, path) "
			 "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (loc_path, "
			 "loc_fs) DO UPDATE SET run = ?3, path = ?4",
	[PUT_PREV_GET] = "SELECT prev_run, prev_path FROM file_io "
			 "WHERE run = ?1 AND path = ?2",
	[PUT_PREV_SET] = "UPDATE file_io SET prev_run = ?3, prev_path = ?4 "
			 "WHERE run = ?1 AND path = ?2",
	[PUT_WARNING] =
		"INSERT INTO warnings (run, seq, text) VALUES (?1, ?2, ?3)",
};

/* Step a fully bound insert and reset it for the next row. A constraint
 * failure means the report broke a rule (the same path twice in a run). */
int store_step_insert(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_DONE)
		return WEFT_OK;
	return (rc & 0xff) == SQLITE_CONSTRAINT ? WEFT_EINVAL : WEFT_EDB;
}

/* A time in ns, left NULL when 0 (unknown). */
static void bind_known_ns(sqlite3_stmt *st, int i, int64_t ns)
{
	if (ns)
		sqlite3_bind_int64(st, i, ns);
}

/* A stat identity bound to parameters i.. i+3 (dev, ino, mtime_ns,
 * ctime_ns; an unknown ctime left NULL), as column_identity reads it. */
static void bind_identity(sqlite3_stmt *st, int i, uint64_t dev, uint64_t ino,
			  int64_t mtime_ns, int64_t ctime_ns)
{
	sqlite3_bind_int64(st, i, (sqlite3_int64)dev);
	sqlite3_bind_int64(st, i + 1, (sqlite3_int64)ino);
	sqlite3_bind_int64(st, i + 2, mtime_ns);
	bind_known_ns(st, i + 3, ctime_ns);
}

int store_put_process(sqlite3_stmt *st, sqlite3_int64 run, size_t seq,
		      const weft_process_rec *p)
{
	/* argv as one blob, every argument NUL-terminated: lossless, since
	 * an argument cannot hold a NUL. */
	size_t len = 0;
	for (uint32_t a = 0; a < p->argc; a++)
		len += strlen(p->argv[a]) + 1;
	if (len > (size_t)WEFT_MAX_MESSAGE_BYTES)
		return WEFT_ETOOBIG;
	char *argv = malloc(len ? len : 1);
	if (!argv)
		return WEFT_ENOMEM;
	size_t off = 0;
	for (uint32_t a = 0; a < p->argc; a++) {
		size_t n = strlen(p->argv[a]) + 1;
		memcpy(argv + off, p->argv[a], n);
		off += n;
	}
	sqlite3_bind_int64(st, 1, run);
	/* Touches name a process by its index in the whole report, which a
	 * part arriving out of order must keep. */
	sqlite3_bind_int64(st, 2,
			   (sqlite3_int64)(p->has_index ? p->index : seq));
	sqlite3_bind_int(st, 3, p->pid);
	sqlite3_bind_int(st, 4, p->ppid);
	sqlite3_bind_int64(st, 5, p->argc);
	sqlite3_bind_blob(st, 6, argv, (int)len, SQLITE_STATIC);
	store_bind_bytes(st, 7, p->exe);
	store_bind_bytes(st, 8, p->cwd);
	sqlite3_bind_int(st, 9, p->exit_code);
	sqlite3_bind_int(st, 10, p->exited);
	if (p->has_parent)
		sqlite3_bind_int64(st, 11, p->parent);
	sqlite3_bind_int(st, 12, p->by_exec);
	sqlite3_bind_int(st, 13, p->execd);
	bind_known_ns(st, 14, p->started_ns);
	bind_known_ns(st, 15, p->ended_ns);
	sqlite3_bind_int(st, 16, p->has_index);
	if (p->has_exe_hash)
		sqlite3_bind_blob(st, 17, p->exe_hash, 32, SQLITE_STATIC);
	sqlite3_bind_int(st, 18, p->env_state);
	weft_buf env;
	weft_buf_init(&env);
	int err = WEFT_OK;
	if (p->env_state == WEFT_ENV_LISTED) {
		err = store_env_encode(p, &env);
		/* An empty environment is an empty blob, not NULL. */
		sqlite3_bind_blob(st, 19, env.data ? (void *)env.data : "",
				  (int)env.len, SQLITE_STATIC);
	}
	store_bind_bytes(st, 20, p->env_missing);
	if (!err)
		err = store_step_insert(st);
	else
		sqlite3_reset(st);
	weft_buf_free(&env);
	free(argv);
	return err;
}

int store_env_encode(const weft_process_rec *p, weft_buf *out)
{
	int err = WEFT_OK;
	for (uint32_t i = 0; i < p->nenv && !err; i++) {
		const weft_env_entry *e = &p->env[i];
		err = weft_buf_append(out, e->name, strlen(e->name) + 1);
		if (!err && e->value) {
			err = weft_buf_append(out, "v", 1);
			if (!err)
				err = weft_buf_append(out, e->value,
						      strlen(e->value) + 1);
		} else if (!err) {
			err = weft_buf_append(out, "h", 1);
			if (!err)
				err = weft_buf_append(out, e->hash, 32);
		}
	}
	return err;
}

int store_env_decode(const uint8_t *blob, size_t len, weft_process_rec *p)
{
	size_t n = 0;
	for (size_t off = 0; off < len;) {
		const uint8_t *nul = memchr(blob + off, 0, len - off);
		if (!nul || nul == blob + off || nul + 1 >= blob + len)
			return WEFT_EDB;
		off = (size_t)(nul - blob) + 1;
		if (blob[off] == 'h') {
			off += 33;
		} else if (blob[off] == 'v') {
			const uint8_t *end =
				memchr(blob + off + 1, 0, len - off - 1);
			if (!end)
				return WEFT_EDB;
			off = (size_t)(end - blob) + 1;
		} else {
			return WEFT_EDB;
		}
		if (off > len || ++n > WEFT_MAX_ENV_ENTRIES)
			return WEFT_EDB;
	}
	p->env = n ? calloc(n, sizeof(*p->env)) : NULL;
	if (n && !p->env)
		return WEFT_ENOMEM;
	p->env_state = WEFT_ENV_LISTED;
	for (size_t off = 0; off < len;) {
		weft_env_entry *e = &p->env[p->nenv];
		const char *name = (const char *)blob + off;
		off += strlen(name) + 1;
		if (!(e->name = strdup(name)))
			return WEFT_ENOMEM;
		p->nenv++;
		if (blob[off] == 'h') {
			memcpy(e->hash, blob + off + 1, 32);
			off += 33;
		} else {
			const char *v = (const char *)blob + off + 1;
			if (!(e->value = strdup(v)))
				return WEFT_ENOMEM;
			off += strlen(v) + 2;
		}
	}
	return WEFT_OK;
}

struct put_ctx {
	weft_store *s;
	sqlite3_stmt **stmts;
	/* The filesystem of the last file: most files of a run share one. */
	char *fs;
	sqlite3_int64 fs_id;
};

static int put_intern(void *ctx, int kind, const void *value, int len,
		      sqlite3_int64 *id)
{
	struct put_ctx *p = ctx;
	static const int get_of[] = {[STORE_INTERN_PATH] = PUT_PATH_GET,
				     [STORE_INTERN_ARTIFACT] = PUT_ARTIFACT_GET,
				     [STORE_INTERN_FS] = PUT_FS_GET};
	bool fs = kind == STORE_INTERN_FS;
	if (fs && p->fs && strlen(p->fs) == (size_t)len &&
	    !memcmp(p->fs, value, (size_t)len)) {
		*id = p->fs_id;
		return WEFT_OK;
	}
	int get = get_of[kind];
	int err = store_intern(p->s, p->stmts[get], p->stmts[get + 1], value,
			       len, id, NULL);
	if (!err && fs) {
		free(p->fs);
		if ((p->fs = strndup(value, (size_t)len)))
			p->fs_id = *id;
	}
	return err;
}

static int put_touches(sqlite3_stmt *st, sqlite3_int64 run, sqlite3_int64 path,
		       const weft_file_rec *f)
{
	int err = WEFT_OK;
	for (uint32_t i = 0; i < f->ntouches && !err; i++) {
		const weft_file_touch *t = &f->touches[i];
		sqlite3_bind_int64(st, 1, run);
		sqlite3_bind_int64(st, 2, path);
		sqlite3_bind_int64(st, 3, t->proc);
		sqlite3_bind_int64(st, 4, t->flags);
		if (t->flags & WEFT_TOUCH_SRC_RUN)
			sqlite3_bind_int64(st, 5, t->src);
		bind_known_ns(st, 6, t->first_open_ns);
		bind_known_ns(st, 7, t->last_write_ns);
		err = store_step_insert(st);
	}
	return err;
}

/* A record's key in file_io, the order of a location's chain. */
struct io_key {
	sqlite3_int64 run, path;
};

static bool key_below(struct io_key a, struct io_key b)
{
	return a.run < b.run || (a.run == b.run && a.path < b.path);
}

/* One row's two integers from get (bound with two), *found false when
 * there is none or they are NULL. */
static int get_key(sqlite3_stmt *get, sqlite3_int64 a, sqlite3_int64 b,
		   struct io_key *out, bool *found)
{
	sqlite3_bind_int64(get, 1, a);
	sqlite3_bind_int64(get, 2, b);
	int rc = sqlite3_step(get);
	*found = rc == SQLITE_ROW && sqlite3_column_type(get, 0) != SQLITE_NULL;
	if (*found)
		*out = (struct io_key){sqlite3_column_int64(get, 0),
				       sqlite3_column_int64(get, 1)};
	sqlite3_reset(get);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? WEFT_OK : WEFT_EDB;
}

/* Where a record goes in its location's chain (schema step 12): every
 * record at a location names the one below it in file_io's key order
 * (its predecessor, bound to the insert's ?28 and ?29), loc_heads the
 * highest. Records nearly always come in key order (a new run's number
 * is the highest), so the new one is the head; one that comes late (a
 * task's later part, a location reached by two paths in one run) is put
 * after the first record below it, and *succ is the one above it, whose
 * predecessor it becomes. */
static int chain_find(sqlite3_stmt *const *put, sqlite3_stmt *file,
		      sqlite3_int64 loc, sqlite3_int64 fs, struct io_key key,
		      bool *head, struct io_key *succ)
{
	struct io_key at, below;
	bool found;
	int err = get_key(put[PUT_HEAD_GET], loc, fs, &at, &found);
	*head = true;
	if (err || !found)
		return err; /* the location's first record */
	if (key_below(at, key)) {
		below = at; /* the usual case: above the head */
	} else {
		*head = false;
		for (;;) {
			if ((err = get_key(put[PUT_PREV_GET], at.run, at.path,
					   &below, &found)))
				return err;
			if (!found || key_below(below, key))
				break;
			if (!key_below(below, at))
				return WEFT_EDB; /* a damaged chain: not down */
			at = below;
		}
		*succ = at;
		if (!found)
			return WEFT_OK; /* the lowest now */
	}
	sqlite3_bind_int64(file, 28, below.run);
	sqlite3_bind_int64(file, 29, below.path);
	return WEFT_OK;
}

/* The record just stored made the head or its successor's predecessor. */
static int chain_link(sqlite3_stmt *const *put, sqlite3_int64 loc,
		      sqlite3_int64 fs, struct io_key key, bool head,
		      struct io_key succ)
{
	sqlite3_stmt *st = put[head ? PUT_HEAD_SET : PUT_PREV_SET];
	sqlite3_bind_int64(st, 1, head ? loc : succ.run);
	sqlite3_bind_int64(st, 2, head ? fs : succ.path);
	sqlite3_bind_int64(st, 3, key.run);
	sqlite3_bind_int64(st, 4, key.path);
	return store_step_insert(st) ? WEFT_EDB : WEFT_OK;
}

int store_put_file_with(sqlite3_stmt *const *put, store_intern_fn intern,
			void *ctx, sqlite3_int64 run, const weft_file_rec *f)
{
	sqlite3_stmt *st = put[PUT_FILE];
	sqlite3_int64 path, renamed = 0, artifact = 0, fs = 0, loc = 0,
			    used = 0, read = 0;
	int err = intern(ctx, STORE_INTERN_PATH, f->path, (int)strlen(f->path),
			 &path);
	if (!err && f->renamed_to)
		err = intern(ctx, STORE_INTERN_PATH, f->renamed_to,
			     (int)strlen(f->renamed_to), &renamed);
	if (!err && f->has_hash)
		err = intern(ctx, STORE_INTERN_ARTIFACT, f->hash, 32,
			     &artifact);
	if (!err && f->has_read_hash)
		err = intern(ctx, STORE_INTERN_ARTIFACT, f->read_hash, 32,
			     &read);
	if (!err && f->used_path)
		err = intern(ctx, STORE_INTERN_PATH, f->used_path,
			     (int)strlen(f->used_path), &used);
	if (!err && f->loc_fs)
		err = intern(ctx, STORE_INTERN_FS, f->loc_fs,
			     (int)strlen(f->loc_fs), &fs);
	if (!err && f->loc_path) {
		/* Mostly the path itself (a file on the root filesystem). */
		if (!strcmp(f->loc_path, f->path))
			loc = path;
		else
			err = intern(ctx, STORE_INTERN_PATH, f->loc_path,
				     (int)strlen(f->loc_path), &loc);
	}
	if (err)
		return err;
	sqlite3_bind_int64(st, 1, run);
	sqlite3_bind_int64(st, 2, path);
	if (f->has_hash)
		sqlite3_bind_int64(st, 3, artifact);
	sqlite3_bind_int(st, 4, f->read);
	sqlite3_bind_int(st, 5, f->written);
	sqlite3_bind_int(st, 6, f->created);
	sqlite3_bind_int(st, 7, f->deleted);
	if (f->renamed_to)
		sqlite3_bind_int64(st, 8, renamed);
	if (f->has_size)
		sqlite3_bind_int64(st, 9, f->size);
	store_bind_bytes(st, 10, f->hash_missing);
	if (f->has_first_stat) {
		bind_identity(st, 11, f->first_dev, f->first_ino,
			      f->first_mtime_ns, f->first_ctime_ns);
		sqlite3_bind_int64(st, 15, f->first_size);
	}
	if (f->loc_fs && f->loc_path) {
		sqlite3_bind_int64(st, 16, fs);
		sqlite3_bind_int64(st, 17, loc);
	}
	if (f->used_path)
		sqlite3_bind_int64(st, 18, used);
	sqlite3_bind_int(st, 19, f->updated);
	if (f->has_read_hash)
		sqlite3_bind_int64(st, 20, read);
	store_bind_bytes(st, 21, f->read_hash_missing);
	if (f->has_final_stat)
		bind_identity(st, 22, f->final_dev, f->final_ino,
			      f->final_mtime_ns, f->final_ctime_ns);
	bind_known_ns(st, 26, f->first_open_ns);
	bind_known_ns(st, 27, f->last_write_ns);
	bool located = f->loc_fs && f->loc_path, head = false;
	struct io_key key = {run, path}, succ = {0, 0};
	if (located &&
	    (err = chain_find(put, st, loc, fs, key, &head, &succ))) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return err;
	}
	err = store_step_insert(st);
	if (!err && located)
		err = chain_link(put, loc, fs, key, head, succ);
	return err ? err : put_touches(put[PUT_TOUCH], run, path, f);
}

int weft_store_put_run(weft_store *s, const weft_report *r)
{
	s->errmsg[0] = '\0';
	int err = store_check_report(r);
	if (err)
		return err;
	sqlite3_stmt *stmts[PUT_NSTMT] = {0};
	for (int i = 0; i < PUT_NSTMT; i++)
		if ((err = store_prepare(s, store_put_sql[i], &stmts[i])))
			goto out;
	/* IMMEDIATE: take the write lock now (waiting up to the busy
	 * timeout) rather than fail half-way when upgrading a read lock. */
	if ((err = store_exec(s, "BEGIN IMMEDIATE")))
		goto out;

	sqlite3_stmt *st = stmts[PUT_RUN];
	sqlite3_bind_text(st, 1, r->run_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, r->backend, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, r->node, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, r->exit_code);
	sqlite3_bind_int64(st, 5, r->started_ns);
	sqlite3_bind_int64(st, 6, r->ended_ns);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)r->dropped_events);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		/* The only constraint a valid report can break here is the
		 * unique run id. */
		err = (rc & 0xff) == SQLITE_CONSTRAINT ? WEFT_EINVAL : WEFT_EDB;
		goto rollback;
	}
	sqlite3_int64 run = sqlite3_last_insert_rowid(s->db);

	for (size_t i = 0; i < r->nprocesses && !err; i++)
		err = store_put_process(stmts[PUT_PROCESS], run, i,
					&r->processes[i]);
	struct put_ctx pc = {s, stmts, NULL, 0};
	for (size_t i = 0; i < r->nfiles && !err; i++)
		err = store_put_file_with(stmts, put_intern, &pc, run,
					  &r->files[i]);
	free(pc.fs);
	for (size_t i = 0; i < r->nwarnings && !err; i++) {
		st = stmts[PUT_WARNING];
		sqlite3_bind_int64(st, 1, run);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
		store_bind_bytes(st, 3, r->warnings[i]);
		err = store_step_insert(st);
	}
	if (!err && store_exec(s, "COMMIT"))
		err = WEFT_EDB;
	if (!err)
		goto out;
rollback:
	/* The failing statement's message, before ROLLBACK replaces it. */
	store_save_errmsg(s);
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
out:
	for (int i = 0; i < PUT_NSTMT; i++)
		sqlite3_finalize(stmts[i]);
	return err;
}
