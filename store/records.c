/*
 * records.c - every file record of the store in memory, grouped by path
 * and by run, for the questions that compare what was recorded with what
 * is there now or with another record: weft stale, weft diff --file,
 * weft rerun (stale.c, diff.c).
 *
 * One query reads what those need of each file record (not the DAG: no
 * locations, no touches), which keeps `weft stale` on 10,000 outputs to
 * one pass over the table.
 */
#include <stdlib.h>
#include <string.h>

#include "compare_internal.h"

static int row_by_path(const void *a, const void *b)
{
	const struct cmp_row *x = a, *y = b;
	int r = strcmp(x->path, y->path);
	if (r)
		return r;
	if (x->t != y->t)
		return (x->t > y->t) - (x->t < y->t);
	return (x->run > y->run) - (x->run < y->run);
}

static int idx_by_run(const void *a, const void *b, void *ctx)
{
	const struct cmp_model *m = ctx;
	const struct cmp_row *x = &m->rows[*(const size_t *)a];
	const struct cmp_row *y = &m->rows[*(const size_t *)b];
	if (x->run != y->run)
		return (x->run > y->run) - (x->run < y->run);
	return strcmp(x->path, y->path);
}

static int run_row(sqlite3_stmt *st, void *ctx)
{
	struct cmp_model *m = ctx;
	struct cmp_run *r = store_slot((void **)&m->runs, &m->capruns, m->nruns,
				       sizeof(*r));
	if (!r)
		return WEFT_ENOMEM;
	r->num = sqlite3_column_int64(st, 0);
	const char *id = (const char *)sqlite3_column_text(st, 1);
	r->id = strdup(id ? id : "");
	r->started_ns = sqlite3_column_int64(st, 2);
	r->ended_ns = sqlite3_column_int64(st, 3);
	r->exit_code = sqlite3_column_int(st, 4);
	if (!r->id)
		return WEFT_ENOMEM;
	m->nruns++;
	return WEFT_OK;
}

static int load_runs(weft_store *s, struct cmp_model *m)
{
	return store_query(s,
			   "SELECT num, id, started_ns, ended_ns, "
			   "exit_code FROM runs ORDER BY num",
			   run_row, m);
}

static bool col_hash(sqlite3_stmt *st, int i, uint8_t out[32])
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL ||
	    sqlite3_column_bytes(st, i) != 32)
		return false;
	memcpy(out, sqlite3_column_blob(st, i), 32);
	return true;
}

/* A stat identity from its columns dev, ino, size, mtime, ctime, the
 * first of them col. */
static void col_ident(sqlite3_stmt *st, int col, struct cmp_ident *id)
{
	id->known = true;
	id->dev = (uint64_t)sqlite3_column_int64(st, col);
	id->ino = (uint64_t)sqlite3_column_int64(st, col + 1);
	id->size = sqlite3_column_int64(st, col + 2);
	id->mtime_ns = sqlite3_column_int64(st, col + 3);
	id->ctime_ns = sqlite3_column_int64(st, col + 4);
}

static int file_row(sqlite3_stmt *st, void *ctx)
{
	struct cmp_model *m = ctx;
	size_t run_idx = cmp_run_by_num(m, sqlite3_column_int64(st, 0));
	if (run_idx == CMP_NONE)
		return WEFT_EDB;
	struct cmp_row *r = store_slot((void **)&m->rows, &m->caprows, m->nrows,
				       sizeof(*r));
	if (!r || !(r->path = store_column_dup(st, 1)))
		return WEFT_ENOMEM;
	r->run = run_idx;
	m->nrows++;
	r->read = sqlite3_column_int(st, 2) != 0;
	r->written = sqlite3_column_int(st, 3) != 0;
	r->deleted = sqlite3_column_int(st, 4) != 0;
	r->renamed = sqlite3_column_int(st, 5) != 0;
	r->updated = sqlite3_column_int(st, 6) != 0;
	r->has_hash = col_hash(st, 7, r->hash);
	r->has_rhash = col_hash(st, 8, r->rhash);
	if (sqlite3_column_type(st, 9) != SQLITE_NULL)
		col_ident(st, 9, &r->first);
	if (sqlite3_column_type(st, 14) != SQLITE_NULL &&
	    sqlite3_column_type(st, 16) != SQLITE_NULL)
		col_ident(st, 14, &r->final);
	int64_t tw = sqlite3_column_int64(st, 19);
	const struct cmp_run *run = &m->runs[r->run];
	/* When the version was made: its last write, else the end of
	 * its run (deletions, older records). */
	r->t = tw ? tw : run->ended_ns;
	r->topen = sqlite3_column_int64(st, 20);
	if (!r->topen)
		r->topen = run->started_ns;
	return WEFT_OK;
}

static int load_rows(weft_store *s, struct cmp_model *m)
{
	return store_query(
		s,
		"SELECT f.run, p.path, f.read, f.written, f.deleted, "
		"f.renamed_to IS NOT NULL, f.updated, a.hash, ra.hash, "
		"f.first_dev, f.first_ino, f.first_size, f.first_mtime_ns, "
		"f.first_ctime_ns, f.final_dev, f.final_ino, f.size, "
		"f.final_mtime_ns, f.final_ctime_ns, f.last_write_ns, "
		"f.first_open_ns "
		"FROM file_io f JOIN paths p ON p.id = f.path "
		"LEFT JOIN artifacts a ON a.id = f.artifact "
		"LEFT JOIN artifacts ra ON ra.id = f.read_artifact",
		file_row, m);
}

size_t cmp_run_by_num(const struct cmp_model *m, int64_t num)
{
	size_t lo = 0, hi = m->nruns;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (m->runs[mid].num < num)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->nruns && m->runs[lo].num == num ? lo : CMP_NONE;
}

size_t cmp_run_by_id(const struct cmp_model *m, const char *id)
{
	for (size_t i = 0; i < m->nruns; i++)
		if (strcmp(m->runs[i].id, id) == 0)
			return i;
	return CMP_NONE;
}

bool cmp_path_rows(const struct cmp_model *m, const char *path, size_t *first,
		   size_t *end)
{
	size_t lo = 0, hi = m->nrows;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (strcmp(m->rows[mid].path, path) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	size_t e = lo;
	while (e < m->nrows && strcmp(m->rows[e].path, path) == 0)
		e++;
	*first = lo;
	*end = e;
	return e > lo;
}

size_t cmp_producer(const struct cmp_model *m, const char *path)
{
	size_t a, b;
	if (!cmp_path_rows(m, path, &a, &b))
		return CMP_NONE;
	/* Rows of a path are in time order: the last that wrote, removed
	 * or renamed it away made what should be there now. */
	for (size_t i = b; i-- > a;) {
		const struct cmp_row *r = &m->rows[i];
		if (r->written || r->deleted || r->renamed)
			return i;
	}
	return CMP_NONE;
}

int cmp_model_load(weft_store *s, struct cmp_model *m)
{
	memset(m, 0, sizeof(*m));
	/* One read transaction: one snapshot. */
	int err = store_exec(s, "BEGIN");
	if (err)
		return err;
	err = load_runs(s, m);
	if (!err)
		err = load_rows(s, m);
	if (err == WEFT_EDB)
		store_save_errmsg(s);
	sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	if (!err) {
		qsort(m->rows, m->nrows, sizeof(*m->rows), row_by_path);
		m->by_run = m->nrows ? malloc(m->nrows * sizeof(size_t)) : NULL;
		m->run_first = calloc(m->nruns + 1, sizeof(size_t));
		if ((m->nrows && !m->by_run) || !m->run_first)
			err = WEFT_ENOMEM;
	}
	if (!err) {
		for (size_t i = 0; i < m->nrows; i++)
			m->by_run[i] = i;
		qsort_r(m->by_run, m->nrows, sizeof(size_t), idx_by_run, m);
		/* run_first[r] .. run_first[r + 1]: run r's rows in by_run. */
		size_t k = 0;
		for (size_t r = 0; r <= m->nruns; r++) {
			while (k < m->nrows && m->rows[m->by_run[k]].run < r)
				k++;
			m->run_first[r] = k;
		}
	}
	if (err)
		cmp_model_free(m);
	return err;
}

void cmp_model_free(struct cmp_model *m)
{
	for (size_t i = 0; i < m->nruns; i++)
		free(m->runs[i].id);
	free(m->runs);
	for (size_t i = 0; i < m->nrows; i++)
		free(m->rows[i].path);
	free(m->rows);
	free(m->by_run);
	free(m->run_first);
	memset(m, 0, sizeof(*m));
}
