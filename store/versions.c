/*
 * versions.c - which version each read was of, and who wrote it
 * (DESIGN.md "Store and DAG: lineage by file version").
 *
 * The rows of one location are resolved together. A read (or the update
 * of content that was there) is of the version current at the task's
 * first open; its source is, in this order:
 *   1. the writer whose final stat identity (inode, size, mtime, ctime) is
 *      the identity the reader saw at its first open: the state the writer
 *      left was still there, so it wrote before the open whatever the
 *      clocks say;
 *   2. else, when the version's hash is known, the last writer of that
 *      hash at that location whose last write came before the open;
 *   3. else (the version is unknown) the last writer before the open, as
 *      a weak edge: likely, not known.
 * A writer is never its own source, and a task that wrote only after the
 * open is never the source. Equal bytes at another location are no
 * source at all (dag.c may show them as "same content").
 *
 * Rows of records stored before locations existed have none: their
 * location is their node and path, and they have no read version, so
 * their reads are weak.
 */
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

static int by_location(const void *a, const void *b, void *ctx)
{
	const struct vrow *rows = ctx;
	const struct vrow *x = &rows[*(const size_t *)a];
	const struct vrow *y = &rows[*(const size_t *)b];
	if (x->loc != y->loc)
		return x->loc < y->loc ? -1 : 1;
	if (x->t_write != y->t_write)
		return x->t_write < y->t_write ? -1 : 1;
	return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

/* The state a writer left is the state the reader first opened. */
static bool same_identity(const struct vrow *w, const struct vrow *r)
{
	return (w->flags & VR_FINAL) && (r->flags & VR_FIRST) &&
	       w->final_ino == r->first_ino && w->size == r->first_size &&
	       w->final_mtime == r->first_mtime &&
	       (!w->final_ctime || !r->first_ctime ||
		w->final_ctime == r->first_ctime);
}

static bool is_writer(const struct vrow *w)
{
	return (w->flags & VR_WRITTEN) && !(w->flags & VR_GONE);
}

/* rows[g[0..n)] are one location's, by last write time. */
static void resolve_group(struct vrow *rows, const size_t *g, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct vrow *r = &rows[g[i]];
		r->src = -1;
		r->weak = false;
		if (!(r->flags & (VR_READ | VR_UPDATED)))
			continue;
		ssize_t by_id = -1, by_hash = -1, by_time = -1;
		for (size_t k = 0; k < n; k++) {
			const struct vrow *w = &rows[g[k]];
			if (!is_writer(w) || w->run == r->run)
				continue;
			/* Equal identities with another hash: a hash cache
			 * entry and a record disagree; trust neither. */
			if (same_identity(w, r) &&
			    (!r->read_art || w->art == r->read_art))
				by_id = (ssize_t)g[k];
			if (w->t_write > r->t_open)
				continue;
			by_time = (ssize_t)g[k];
			if (r->read_art && w->art == r->read_art)
				by_hash = (ssize_t)g[k];
		}
		if (by_id >= 0) {
			r->src = by_id;
		} else if (by_hash >= 0) {
			r->src = by_hash;
		} else if (!r->read_art && by_time >= 0) {
			r->src = by_time;
			r->weak = true;
		}
	}
}

int store_versions_resolve(struct vrow *rows, size_t n)
{
	if (!n)
		return WEFT_OK;
	size_t *order = malloc(n * sizeof(*order));
	if (!order)
		return WEFT_ENOMEM;
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	qsort_r(order, n, sizeof(*order), by_location, rows);
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		while (j < n && rows[order[j]].loc == rows[order[i]].loc)
			j++;
		resolve_group(rows, order + i, j - i);
		i = j;
	}
	free(order);
	return WEFT_OK;
}

const char *const store_vrow_sql_columns =
	"f.run, p.path, up.path, f.loc_fs, lp.path, f.loc_path, f.path, "
	"f.artifact, f.read_artifact, "
	"coalesce(f.first_open_ns, r.started_ns), "
	"coalesce(f.last_write_ns, r.ended_ns), f.first_size, f.size, "
	"f.first_ino, f.first_mtime_ns, f.first_ctime_ns, f.final_ino, "
	"f.final_mtime_ns, f.final_ctime_ns, f.read, f.written, f.updated, "
	"f.deleted OR f.renamed_to IS NOT NULL, f.first_dev IS NOT NULL, "
	"f.final_ino IS NOT NULL, r.node, a.hash, ra.hash ";
const char *const store_vrow_sql_joins =
	"JOIN paths p ON p.id = f.path "
	"LEFT JOIN paths up ON up.id = f.used_path "
	"LEFT JOIN paths lp ON lp.id = f.loc_path "
	"LEFT JOIN artifacts a ON a.id = f.artifact "
	"LEFT JOIN artifacts ra ON ra.id = f.read_artifact ";

/* Nodes of records without a location: a small list of node names. */
static uint64_t legacy_node(struct vrow_names *names, const char *node)
{
	for (size_t i = 0; i < names->nnodes; i++)
		if (!strcmp(names->nodes[i], node))
			return i;
	if (store_grow((void **)&names->nodes, &names->nodes_cap, names->nnodes,
		       sizeof(char *)))
		return UINT64_MAX;
	char *copy = strdup(node);
	if (!copy)
		return UINT64_MAX;
	names->nodes[names->nnodes] = copy;
	return names->nnodes++;
}

int store_vrow_read(sqlite3_stmt *st, struct vrow_names *names, struct vrow *v)
{
	memset(v, 0, sizeof(*v));
	v->run = sqlite3_column_int64(st, 0);
	v->path = store_column_dup(st, 1);
	v->used = store_column_dup(st, 2);
	if (!v->path || (sqlite3_column_type(st, 2) != SQLITE_NULL && !v->used))
		return WEFT_ENOMEM;
	v->loc_fs = sqlite3_column_int64(st, 3);
	if (sqlite3_column_type(st, 4) != SQLITE_NULL &&
	    sqlite3_column_type(st, 3) != SQLITE_NULL) {
		if (!(v->loc_path = store_column_dup(st, 4)))
			return WEFT_ENOMEM;
		v->loc = (uint64_t)v->loc_fs << 40 |
			 (uint64_t)sqlite3_column_int64(st, 5);
	} else {
		const char *node = (const char *)sqlite3_column_text(st, 25);
		uint64_t n = legacy_node(names, node ? node : "");
		if (n == UINT64_MAX)
			return WEFT_ENOMEM;
		v->loc_fs = 0;
		v->loc = (uint64_t)1 << 63 | n << 40 |
			 (uint64_t)sqlite3_column_int64(st, 6);
	}
	v->art = sqlite3_column_int64(st, 7);
	v->read_art = sqlite3_column_int64(st, 8);
	if (v->art && sqlite3_column_bytes(st, 26) == 32)
		memcpy(v->hash, sqlite3_column_blob(st, 26), 32);
	else
		v->art = 0;
	if (v->read_art && sqlite3_column_bytes(st, 27) == 32)
		memcpy(v->read_hash, sqlite3_column_blob(st, 27), 32);
	else
		v->read_art = 0;
	v->t_open = sqlite3_column_int64(st, 9);
	v->t_write = sqlite3_column_int64(st, 10);
	v->first_size = sqlite3_column_int64(st, 11);
	v->size = sqlite3_column_type(st, 12) == SQLITE_NULL
			  ? -1
			  : sqlite3_column_int64(st, 12);
	v->first_ino = (uint64_t)sqlite3_column_int64(st, 13);
	v->first_mtime = sqlite3_column_int64(st, 14);
	v->first_ctime = sqlite3_column_int64(st, 15);
	v->final_ino = (uint64_t)sqlite3_column_int64(st, 16);
	v->final_mtime = sqlite3_column_int64(st, 17);
	v->final_ctime = sqlite3_column_int64(st, 18);
	v->flags = (sqlite3_column_int(st, 19) ? VR_READ : 0) |
		   (sqlite3_column_int(st, 20) ? VR_WRITTEN : 0) |
		   (sqlite3_column_int(st, 21) ? VR_UPDATED : 0) |
		   (sqlite3_column_int(st, 22) ? VR_GONE : 0) |
		   (sqlite3_column_int(st, 23) ? VR_FIRST : 0) |
		   (sqlite3_column_int(st, 24) ? VR_FINAL : 0);
	return WEFT_OK;
}

void store_vrows_free(struct vrow *rows, size_t n, struct vrow_names *names)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].path);
		free(rows[i].used);
		free(rows[i].loc_path);
	}
	free(rows);
	for (size_t i = 0; i < names->nnodes; i++)
		free(names->nodes[i]);
	free(names->nodes);
	memset(names, 0, sizeof(*names));
}
