/*
 * runs.c - loading a stored run back as a report (weft_store_get_run:
 * its header, processes, uses of files, file records and warnings) and
 * listing the runs of a store.
 */
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

/* A column as a malloc'd NUL-terminated string; NULL stays NULL. */
static int column_bytes(sqlite3_stmt *st, int i, char **out)
{
	*out = NULL;
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return WEFT_OK;
	const void *p = sqlite3_column_blob(st, i);
	int n = sqlite3_column_bytes(st, i);
	char *s = malloc((size_t)n + 1);
	if (!s)
		return WEFT_ENOMEM;
	if (n)
		memcpy(s, p, (size_t)n);
	s[n] = '\0';
	*out = s;
	return WEFT_OK;
}

/* A TEXT column into one of the report's fixed-size name fields. */
static int column_name(sqlite3_stmt *st, int i, char out[WEFT_MAX_NAME_BYTES])
{
	const unsigned char *t = sqlite3_column_text(st, i);
	int n = sqlite3_column_bytes(st, i);
	if (!t || n >= WEFT_MAX_NAME_BYTES) {
		out[0] = '\0';
		return t ? WEFT_EDB : WEFT_OK;
	}
	memcpy(out, t, (size_t)n + 1);
	return WEFT_OK;
}

int store_column_process_env(sqlite3_stmt *st, int col, weft_process_rec *p)
{
	if (sqlite3_column_type(st, col) != SQLITE_NULL) {
		if (sqlite3_column_bytes(st, col) != 32)
			return WEFT_EDB;
		p->has_exe_hash = true;
		memcpy(p->exe_hash, sqlite3_column_blob(st, col), 32);
	}
	int state = sqlite3_column_int(st, col + 1);
	if (state < WEFT_ENV_NONE || state > WEFT_ENV_UNKNOWN)
		return WEFT_EDB;
	if (state == WEFT_ENV_LISTED)
		return store_env_decode(
			sqlite3_column_blob(st, col + 2),
			(size_t)sqlite3_column_bytes(st, col + 2), p);
	p->env_state = (uint8_t)state;
	if (state == WEFT_ENV_PARENT && !p->has_parent)
		p->env_state = WEFT_ENV_NONE;
	if (state == WEFT_ENV_UNKNOWN)
		return column_bytes(st, col + 3, &p->env_missing);
	return WEFT_OK;
}

/* The rowid of the run named by id (NULL: latest; else exact id or unique
 * prefix). */
static int resolve_run(weft_store *s, const char *id, sqlite3_int64 *num)
{
	static const char *const latest =
		"SELECT num FROM runs ORDER BY started_ns DESC, num DESC "
		"LIMIT 1";
	static const char *const exact = "SELECT num FROM runs WHERE id = ?1";
	/* substr, not LIKE or GLOB: an id may contain their wildcards. */
	static const char *const prefix =
		"SELECT num FROM runs WHERE substr(id, 1, length(?1)) = ?1 "
		"LIMIT 2";
	if (id && !id[0])
		return WEFT_EINVAL;
	const char *const queries[] = {id ? exact : latest, prefix};
	for (int q = 0; q < (id ? 2 : 1); q++) {
		sqlite3_stmt *st;
		int err = store_prepare(s, queries[q], &st);
		if (err)
			return err;
		if (id)
			sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		int found = 0, rc;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			*num = sqlite3_column_int64(st, 0);
			found++;
		}
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return WEFT_EDB;
		if (found == 1)
			return WEFT_OK;
		if (found > 1)
			return WEFT_EINVAL; /* ambiguous prefix */
	}
	return WEFT_ENOTFOUND;
}

static int load_header(weft_store *s, sqlite3_int64 num, weft_report *r)
{
	sqlite3_stmt *st;
	int err = store_prepare(s,
				"SELECT r.id, r.backend, r.node, r.exit_code, "
				"r.started_ns, r.ended_ns, r.dropped_events, "
				"t.parts_stored, t.nparts FROM runs r "
				"LEFT JOIN tasks t ON t.run = r.num "
				"WHERE r.num = ?1",
				&st);
	if (err)
		return err;
	sqlite3_bind_int64(st, 1, num);
	if (sqlite3_step(st) != SQLITE_ROW) {
		err = WEFT_EDB;
	} else {
		err = column_name(st, 0, r->run_id);
		if (!err)
			err = column_name(st, 1, r->backend);
		if (!err)
			err = column_name(st, 2, r->node);
		r->exit_code = sqlite3_column_int(st, 3);
		r->started_ns = sqlite3_column_int64(st, 4);
		r->ended_ns = sqlite3_column_int64(st, 5);
		r->dropped_events = (uint64_t)sqlite3_column_int64(st, 6);
		r->parts_stored = (uint32_t)sqlite3_column_int64(st, 7);
		r->parts_expected = (uint32_t)sqlite3_column_int64(st, 8);
	}
	sqlite3_finalize(st);
	return err;
}

/* Split a NUL-terminated-arguments blob back into argc strings. */
static int split_argv(const char *blob, size_t len, uint32_t argc,
		      weft_process_rec *p)
{
	if (argc == 0)
		return len == 0 ? WEFT_OK : WEFT_EDB;
	if (argc > WEFT_MAX_ARGC || len == 0 || blob[len - 1] != '\0')
		return WEFT_EDB;
	p->argv = calloc(argc, sizeof(char *));
	if (!p->argv)
		return WEFT_ENOMEM;
	size_t off = 0;
	for (uint32_t a = 0; a < argc; a++) {
		if (off >= len)
			return WEFT_EDB; /* fewer arguments than argc */
		p->argv[a] = strdup(blob + off);
		p->argc = a + 1; /* so release frees what exists */
		if (!p->argv[a])
			return WEFT_ENOMEM;
		off += strlen(p->argv[a]) + 1;
	}
	return off == len ? WEFT_OK : WEFT_EDB;
}

/* Each row of sql, a query of the run num (bound to ?1), read by row
 * (store_each_row). */
static int load_rows(weft_store *s, const char *sql, sqlite3_int64 num,
		     store_row_fn row, void *ctx)
{
	sqlite3_stmt *st;
	int err = store_prepare_num(s, sql, num, &st);
	return err ? err : store_each_row(st, row, ctx);
}

static int process_row(sqlite3_stmt *st, void *ctx)
{
	weft_report *r = ctx;
	weft_process_rec *p = weft_report_add_process(r);
	if (!p)
		return WEFT_ENOMEM;
	p->pid = sqlite3_column_int(st, 0);
	p->ppid = sqlite3_column_int(st, 1);
	sqlite3_int64 argc = sqlite3_column_int64(st, 2);
	const char *blob = sqlite3_column_blob(st, 3);
	size_t len = (size_t)sqlite3_column_bytes(st, 3);
	int err;
	if (argc < 0 || argc > WEFT_MAX_ARGC)
		err = WEFT_EDB;
	else
		err = split_argv(blob, len, (uint32_t)argc, p);
	if (!err)
		err = column_bytes(st, 4, &p->exe);
	if (!err)
		err = column_bytes(st, 5, &p->cwd);
	p->exit_code = sqlite3_column_int(st, 6);
	p->exited = sqlite3_column_int(st, 7) != 0;
	/* Images of schema 3: their seq is their index (older rows
	 * are numbered by arrival). */
	sqlite3_int64 seq = sqlite3_column_int64(st, 8);
	if (sqlite3_column_int(st, 14) && seq >= 0 &&
	    seq < WEFT_MAX_PROCESSES) {
		p->has_index = true;
		p->index = (uint32_t)seq;
	}
	if (sqlite3_column_type(st, 9) != SQLITE_NULL) {
		sqlite3_int64 par = sqlite3_column_int64(st, 9);
		p->has_parent = par >= 0 && par < WEFT_MAX_PROCESSES;
		p->parent = (uint32_t)par;
	}
	p->by_exec = sqlite3_column_int(st, 10) != 0;
	p->execd = sqlite3_column_int(st, 11) != 0;
	p->started_ns = sqlite3_column_int64(st, 12);
	p->ended_ns = sqlite3_column_int64(st, 13);
	if (!err)
		err = store_column_process_env(st, 15, p);
	return err;
}

static int load_processes(weft_store *s, sqlite3_int64 num, weft_report *r)
{
	return load_rows(s,
			 "SELECT pid, ppid, argc, argv, exe, cwd, "
			 "exit_code, exited, seq, parent, by_exec, "
			 "execd, started_ns, ended_ns, indexed, "
			 "exe_hash, env_state, env, env_missing "
			 "FROM processes WHERE run = ?1 ORDER BY seq",
			 num, process_row, r);
}

/* Where load_touches is: the run's files, their path ids (in r's
 * order, which is path-byte order as the touches come) and the file the
 * last touch was of. */
struct touch_load {
	weft_report *r;
	const sqlite3_int64 *ids;
	size_t fi;
};

static int touch_row(sqlite3_stmt *st, void *ctx)
{
	struct touch_load *tl = ctx;
	weft_report *r = tl->r;
	sqlite3_int64 path = sqlite3_column_int64(st, 0);
	while (tl->fi < r->nfiles && tl->ids[tl->fi] != path)
		tl->fi++;
	if (tl->fi == r->nfiles)
		return WEFT_EDB; /* a touch of no file of the run */
	weft_file_rec *f = &r->files[tl->fi];
	if (!f->touches) {
		sqlite3_int64 n = sqlite3_column_int64(st, 6);
		if (n <= 0 || n > WEFT_MAX_PROCESSES)
			return WEFT_EDB;
		if (!(f->touches = calloc((size_t)n, sizeof(*f->touches))))
			return WEFT_ENOMEM;
	}
	weft_file_touch *t = &f->touches[f->ntouches++];
	t->proc = (uint32_t)sqlite3_column_int64(st, 1);
	t->flags = (uint32_t)sqlite3_column_int64(st, 2) & WEFT_TOUCH_ALL;
	t->src = (uint32_t)sqlite3_column_int64(st, 3);
	t->first_open_ns = sqlite3_column_int64(st, 4);
	t->last_write_ns = sqlite3_column_int64(st, 5);
	return WEFT_OK;
}

/* The touches of the files loaded (ids: their path ids, in r's order,
 * which is path-byte order as here). */
static int load_touches(weft_store *s, sqlite3_int64 num, weft_report *r,
			const sqlite3_int64 *ids)
{
	struct touch_load tl = {r, ids, 0};
	return load_rows(s,
			 "SELECT t.path, t.proc, t.flags, t.src, "
			 "t.first_open_ns, t.last_write_ns, "
			 "(SELECT count(*) FROM touches u WHERE "
			 "u.run = t.run AND u.path = t.path) "
			 "FROM touches t JOIN paths p ON p.id = t.path "
			 "WHERE t.run = ?1 ORDER BY p.path, t.proc",
			 num, touch_row, &tl);
}

/* A 32-byte hash column into hash (*has set), or NULL (left unset);
 * WEFT_EDB for any other value. */
static int column_hash(sqlite3_stmt *st, int i, bool *has, uint8_t hash[32])
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return WEFT_OK;
	if (sqlite3_column_bytes(st, i) != 32)
		return WEFT_EDB;
	*has = true;
	memcpy(hash, sqlite3_column_blob(st, i), 32);
	return WEFT_OK;
}

/* A stat identity at columns col.. col+3 (dev, ino, mtime_ns, ctime_ns);
 * false, and nothing read, when it is NULL. */
static bool column_identity(sqlite3_stmt *st, int col, uint64_t *dev,
			    uint64_t *ino, int64_t *mtime_ns, int64_t *ctime_ns)
{
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return false;
	*dev = (uint64_t)sqlite3_column_int64(st, col);
	*ino = (uint64_t)sqlite3_column_int64(st, col + 1);
	*mtime_ns = sqlite3_column_int64(st, col + 2);
	*ctime_ns = sqlite3_column_int64(st, col + 3);
	return true;
}

/* Where load_files is: the run, and the path ids of its files in order
 * (load_touches matches the touches to them). */
struct file_load {
	weft_report *r;
	sqlite3_int64 *ids;
	size_t capids;
};

static int file_row(sqlite3_stmt *st, void *ctx)
{
	struct file_load *fl = ctx;
	weft_report *r = fl->r;
	weft_file_rec *f = weft_report_add_file(r);
	if (!f)
		return WEFT_ENOMEM;
	if (store_grow((void **)&fl->ids, &fl->capids, r->nfiles - 1,
		       sizeof(*fl->ids)))
		return WEFT_ENOMEM;
	fl->ids[r->nfiles - 1] = sqlite3_column_int64(st, 26);
	f->read = sqlite3_column_int(st, 1) != 0;
	f->written = sqlite3_column_int(st, 2) != 0;
	f->created = sqlite3_column_int(st, 3) != 0;
	f->deleted = sqlite3_column_int(st, 4) != 0;
	f->updated = sqlite3_column_int(st, 15) != 0;
	if (sqlite3_column_type(st, 6) != SQLITE_NULL) {
		f->has_size = true;
		f->size = sqlite3_column_int64(st, 6);
	}
	/* The version first read, and the version written. */
	f->has_first_stat =
		column_identity(st, 9, &f->first_dev, &f->first_ino,
				&f->first_mtime_ns, &f->first_ctime_ns);
	if (f->has_first_stat)
		f->first_size = sqlite3_column_int64(st, 13);
	f->has_final_stat =
		column_identity(st, 18, &f->final_dev, &f->final_ino,
				&f->final_mtime_ns, &f->final_ctime_ns);
	int err = column_hash(st, 16, &f->has_read_hash, f->read_hash);
	if (!err)
		err = column_hash(st, 7, &f->has_hash, f->hash);
	if (!err)
		err = column_bytes(st, 0, &f->path);
	if (!err)
		err = column_bytes(st, 5, &f->renamed_to);
	if (!err)
		err = column_bytes(st, 8, &f->hash_missing);
	if (!err)
		err = column_bytes(st, 14, &f->used_path);
	if (!err)
		err = column_bytes(st, 17, &f->read_hash_missing);
	f->first_open_ns = sqlite3_column_int64(st, 22);
	f->last_write_ns = sqlite3_column_int64(st, 23);
	if (!err && sqlite3_column_type(st, 24) != SQLITE_NULL &&
	    sqlite3_column_type(st, 25) != SQLITE_NULL) {
		err = column_bytes(st, 24, &f->loc_fs);
		if (!err)
			err = column_bytes(st, 25, &f->loc_path);
	}
	return err;
}

static int load_files(weft_store *s, sqlite3_int64 num, weft_report *r)
{
	struct file_load fl = {r, NULL, 0};
	/* BLOBs compare with memcmp: files come back in path-byte order. */
	int err = load_rows(
		s,
		"SELECT p.path, f.read, f.written, f.created, f.deleted, "
		"rp.path, f.size, a.hash, f.hash_missing, f.first_dev, "
		"f.first_ino, f.first_mtime_ns, f.first_ctime_ns, "
		"f.first_size, up.path, f.updated, ra.hash, "
		"f.read_hash_missing, f.final_dev, f.final_ino, "
		"f.final_mtime_ns, f.final_ctime_ns, f.first_open_ns, "
		"f.last_write_ns, fs.name, lp.path, f.path "
		"FROM file_io f JOIN paths p ON p.id = f.path "
		"LEFT JOIN paths rp ON rp.id = f.renamed_to "
		"LEFT JOIN artifacts a ON a.id = f.artifact "
		"LEFT JOIN paths up ON up.id = f.used_path "
		"LEFT JOIN artifacts ra ON ra.id = f.read_artifact "
		"LEFT JOIN filesystems fs ON fs.id = f.loc_fs "
		"LEFT JOIN paths lp ON lp.id = f.loc_path "
		"WHERE f.run = ?1 ORDER BY p.path",
		num, file_row, &fl);
	if (!err && r->nfiles)
		err = load_touches(s, num, r, fl.ids);
	free(fl.ids);
	return err;
}

static int warning_row(sqlite3_stmt *st, void *ctx)
{
	weft_report *r = ctx;
	/* Appended directly, not through weft_report_warn: a stored
	 * warning may hold bytes a format string must not see. */
	if (r->nwarnings >= WEFT_MAX_WARNINGS + 1)
		return WEFT_EDB;
	char **w = realloc(r->warnings, (r->nwarnings + 1) * sizeof(char *));
	if (!w)
		return WEFT_ENOMEM;
	r->warnings = w;
	int err = column_bytes(st, 0, &w[r->nwarnings]);
	if (!err)
		r->nwarnings++;
	return err;
}

static int load_warnings(weft_store *s, sqlite3_int64 num, weft_report *r)
{
	return load_rows(
		s, "SELECT text FROM warnings WHERE run = ?1 ORDER BY seq", num,
		warning_row, r);
}

int weft_store_get_run(weft_store *s, const char *run_id, weft_report *out)
{
	weft_report_init(out);
	s->errmsg[0] = '\0';
	sqlite3_int64 num = 0;
	/* One read transaction, so the run is read from one snapshot. */
	int err = store_exec(s, "BEGIN");
	if (err)
		return err;
	err = resolve_run(s, run_id, &num);
	if (!err)
		err = load_header(s, num, out);
	if (!err)
		err = load_processes(s, num, out);
	if (!err)
		err = load_files(s, num, out);
	if (!err)
		err = load_warnings(s, num, out);
	/* Said where every reader of the run looks: its warnings. */
	if (!err && out->parts_stored < out->parts_expected &&
	    weft_report_warn(out,
			     "incomplete: %u of %u parts of this task are "
			     "stored (its wrapper died while spooling, or "
			     "parts are still to be delivered)",
			     out->parts_stored,
			     out->parts_expected) == WEFT_ENOMEM)
		err = WEFT_ENOMEM;
	if (err == WEFT_EDB)
		store_save_errmsg(s);
	sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	if (err)
		weft_report_release(out);
	return err;
}

int weft_store_list_runs(weft_store *s, weft_run_summary **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	sqlite3_stmt *st;
	int err = store_prepare(s,
				"SELECT id, backend, exit_code, started_ns, "
				"ended_ns, " STORE_ROOT_ARGV_SQL " FROM runs r "
				"ORDER BY started_ns, num",
				&st);
	if (err)
		return err;
	weft_run_summary *runs = NULL;
	size_t count = 0, cap = 0;
	int rc;
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			weft_run_summary *p =
				realloc(runs, ncap * sizeof(*runs));
			if (!p) {
				err = WEFT_ENOMEM;
				break;
			}
			runs = p;
			cap = ncap;
		}
		weft_run_summary *sum = &runs[count];
		memset(sum, 0, sizeof(*sum));
		err = column_name(st, 0, sum->run_id);
		if (!err)
			err = column_name(st, 1, sum->backend);
		sum->exit_code = sqlite3_column_int(st, 2);
		sum->started_ns = sqlite3_column_int64(st, 3);
		sum->ended_ns = sqlite3_column_int64(st, 4);
		const void *argv = sqlite3_column_blob(st, 5);
		sum->command = store_join_argv(
			argv, (size_t)sqlite3_column_bytes(st, 5));
		count++;
		if (!err && !sum->command)
			err = WEFT_ENOMEM;
	}
	if (!err && rc != SQLITE_DONE)
		err = WEFT_EDB;
	sqlite3_finalize(st);
	if (err) {
		weft_run_summaries_free(runs, count);
		return err;
	}
	*out = runs;
	*n = count;
	return WEFT_OK;
}

void weft_run_summaries_free(weft_run_summary *runs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(runs[i].command);
	free(runs);
}
