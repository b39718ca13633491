/*
 * diff.c - `weft diff`: what differs between two runs, tasks or jobs
 * (inputs and outputs by version, command line, working directory,
 * executables, environment, exit status), and between two versions of
 * one file: the runs that made them compared, then the runs that made
 * whichever of their inputs differ, nearest first.
 *
 * A side is one run or every run of a job. What cannot be compared (an
 * environment or an executable weft did not record) is said to be
 * unknown, never the same.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare_internal.h"

/* A side's values of one section: (name, text) sorted by name. */
struct kv {
	char *name;
	char *text; /* NULL: present, value unknown */
};
struct kvs {
	struct kv *v;
	size_t n, cap;
	bool unknown; /* the whole section is not known (environment) */
};

struct side {
	weft_report *runs;
	size_t n;
	char *label;
	char *command, *cwd;
	bool has_exit;
	int32_t exit_code;
};

static void kvs_free(struct kvs *k)
{
	for (size_t i = 0; i < k->n; i++) {
		free(k->v[i].name);
		free(k->v[i].text);
	}
	free(k->v);
	memset(k, 0, sizeof(*k));
}

static int kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct kv *)a)->name,
		      ((const struct kv *)b)->name);
}

static const char SEVERAL[] = "(several versions)";

/* Add name -> text; the same name again with another text becomes
 * SEVERAL (a job whose tasks saw different versions). */
static int kvs_add(struct kvs *k, const char *name, const char *text)
{
	for (size_t i = k->n; i-- > 0 && i + 8 >= k->n;) {
		/* Recent duplicates only; the sort below merges the rest. */
		if (strcmp(k->v[i].name, name) == 0) {
			if (!k->v[i].text || !text ||
			    strcmp(k->v[i].text, text) != 0) {
				free(k->v[i].text);
				k->v[i].text = strdup(SEVERAL);
			}
			return WEFT_OK;
		}
	}
	if (store_grow((void **)&k->v, &k->cap, k->n, sizeof(*k->v)) != WEFT_OK)
		return WEFT_ENOMEM;
	k->v[k->n].name = strdup(name);
	k->v[k->n].text = text ? strdup(text) : NULL;
	if (!k->v[k->n].name || (text && !k->v[k->n].text))
		return WEFT_ENOMEM;
	k->n++;
	return WEFT_OK;
}

static void kvs_sort(struct kvs *k)
{
	qsort(k->v, k->n, sizeof(*k->v), kv_cmp);
	size_t w = 0;
	for (size_t i = 0; i < k->n; i++) {
		if (w && strcmp(k->v[w - 1].name, k->v[i].name) == 0) {
			bool same = k->v[w - 1].text && k->v[i].text &&
				    strcmp(k->v[w - 1].text, k->v[i].text) == 0;
			if (!same) {
				free(k->v[w - 1].text);
				k->v[w - 1].text = strdup(SEVERAL);
			}
			free(k->v[i].name);
			free(k->v[i].text);
			continue;
		}
		k->v[w++] = k->v[i];
	}
	k->n = w;
}

static void hash_text(const uint8_t h[32], char out[WEFT_HASH_TEXT_BYTES])
{
	weft_hash_to_text(h, out);
}

static const weft_process_rec *root_of(const weft_report *r)
{
	for (size_t i = 0; i < r->nprocesses; i++)
		if (!r->processes[i].has_parent && r->processes[i].ppid == 0)
			return &r->processes[i];
	return r->nprocesses ? &r->processes[0] : NULL;
}

/* The environment in effect for p (following "the parent's"). */
static const weft_process_rec *env_owner(const weft_report *r,
					 const weft_process_rec *p)
{
	for (int hops = 0; p && p->env_state == WEFT_ENV_PARENT && hops < 65536;
	     hops++) {
		const weft_process_rec *q = NULL;
		for (size_t i = 0; i < r->nprocesses; i++)
			if (r->processes[i].has_index &&
			    r->processes[i].index == p->parent)
				q = &r->processes[i];
		p = q;
	}
	return p;
}

enum { S_INPUTS, S_OUTPUTS, S_EXES, S_ENV, S_NSECTIONS };

static int collect(const struct side *sd, struct kvs k[S_NSECTIONS])
{
	int err = WEFT_OK;
	char text[WEFT_HASH_TEXT_BYTES];
	for (size_t j = 0; j < sd->n && !err; j++) {
		const weft_report *r = &sd->runs[j];
		for (size_t i = 0; i < r->nfiles && !err; i++) {
			const weft_file_rec *f = &r->files[i];
			if ((f->read || f->updated) && !f->written) {
				if (f->has_read_hash)
					hash_text(f->read_hash, text);
				err = kvs_add(&k[S_INPUTS], f->path,
					      f->has_read_hash ? text : NULL);
			} else if (f->written && !f->deleted &&
				   !f->renamed_to) {
				if (f->has_hash)
					hash_text(f->hash, text);
				err = kvs_add(&k[S_OUTPUTS], f->path,
					      f->has_hash ? text : NULL);
			}
		}
		for (size_t i = 0; i < r->nprocesses && !err; i++) {
			const weft_process_rec *p = &r->processes[i];
			if (!p->exe)
				continue;
			if (p->has_exe_hash)
				hash_text(p->exe_hash, text);
			err = kvs_add(&k[S_EXES], p->exe,
				      p->has_exe_hash ? text : NULL);
		}
	}
	/* The environment the side was started with: its first run's root
	 * process's. */
	const weft_process_rec *root = sd->n ? root_of(&sd->runs[0]) : NULL;
	const weft_process_rec *o = root ? env_owner(&sd->runs[0], root) : NULL;
	if (!o || o->env_state != WEFT_ENV_LISTED) {
		k[S_ENV].unknown = true;
	} else {
		for (uint32_t i = 0; i < o->nenv && !err; i++) {
			const weft_env_entry *e = &o->env[i];
			if (e->value) {
				size_t n = strlen(e->value) + 3;
				char *q = malloc(n);
				if (!q)
					return WEFT_ENOMEM;
				snprintf(q, n, "\"%s\"", e->value);
				err = kvs_add(&k[S_ENV], e->name, q);
				free(q);
			} else {
				hash_text(e->hash, text);
				err = kvs_add(&k[S_ENV], e->name, text);
			}
		}
	}
	for (int s = 0; s < S_NSECTIONS; s++)
		kvs_sort(&k[s]);
	return err;
}

static int add_item(weft_diff *d, int section, int change, const char *name,
		    const char *a, const char *b, int depth, const char *via)
{
	weft_diff_item *more =
		realloc(d->items, (d->nitems + 1) * sizeof(*more));
	if (!more)
		return WEFT_ENOMEM;
	d->items = more;
	weft_diff_item *x = &more[d->nitems];
	memset(x, 0, sizeof(*x));
	x->section = section;
	x->change = change;
	x->depth = depth;
	x->name = strdup(name);
	x->a = a ? strdup(a) : NULL;
	x->b = b ? strdup(b) : NULL;
	x->via = via ? strdup(via) : NULL;
	d->nitems++;
	if (!x->name || (a && !x->a) || (b && !x->b) || (via && !x->via))
		return WEFT_ENOMEM;
	return WEFT_OK;
}

static const int section_of[S_NSECTIONS] = {WEFT_DIFF_INPUT, WEFT_DIFF_OUTPUT,
					    WEFT_DIFF_EXE, WEFT_DIFF_ENV};

static int compare_kvs(weft_diff *d, int s, const struct kvs *a,
		       const struct kvs *b, bool with_same, int depth,
		       const char *via)
{
	int section = section_of[s];
	if (a->unknown || b->unknown)
		return add_item(d, section, WEFT_DIFF_UNKNOWN, "(environment)",
				a->unknown ? NULL : "recorded",
				b->unknown ? NULL : "recorded", depth, via);
	size_t i = 0, j = 0;
	int err = WEFT_OK;
	while (!err && (i < a->n || j < b->n)) {
		int c = i == a->n   ? 1
			: j == b->n ? -1
				    : strcmp(a->v[i].name, b->v[j].name);
		if (c < 0) {
			err = add_item(d, section, WEFT_DIFF_REMOVED,
				       a->v[i].name, a->v[i].text, NULL, depth,
				       via);
			i++;
		} else if (c > 0) {
			err = add_item(d, section, WEFT_DIFF_ADDED,
				       b->v[j].name, NULL, b->v[j].text, depth,
				       via);
			j++;
		} else {
			const char *x = a->v[i].text, *y = b->v[j].text;
			int change = !x || !y || !strcmp(x, SEVERAL) ||
						     !strcmp(y, SEVERAL)
					     ? WEFT_DIFF_UNKNOWN
				     : strcmp(x, y) ? WEFT_DIFF_CHANGED
						    : WEFT_DIFF_SAME;
			if (change != WEFT_DIFF_SAME || with_same)
				err = add_item(d, section, change, a->v[i].name,
					       x, y, depth, via);
			i++;
			j++;
		}
	}
	return err;
}

static char *argv_text(const weft_process_rec *p)
{
	size_t n = 1;
	for (uint32_t i = 0; p && i < p->argc; i++)
		n += strlen(p->argv[i]) + 1;
	char *s = malloc(n);
	if (!s)
		return NULL;
	s[0] = '\0';
	for (uint32_t i = 0; p && i < p->argc; i++) {
		if (i)
			strcat(s, " ");
		strcat(s, p->argv[i]);
	}
	return s;
}

static int compare_sides(weft_diff *d, const struct side *a,
			 const struct side *b, bool with_same, int depth,
			 const char *via)
{
	struct kvs ka[S_NSECTIONS] = {{0}}, kb[S_NSECTIONS] = {{0}};
	int err = collect(a, ka);
	if (!err)
		err = collect(b, kb);
	if (!err && strcmp(a->command ? a->command : "",
			   b->command ? b->command : "") != 0)
		err = add_item(d, WEFT_DIFF_COMMAND, WEFT_DIFF_CHANGED,
			       "command", a->command, b->command, depth, via);
	if (!err && (!a->cwd || !b->cwd || strcmp(a->cwd, b->cwd) != 0))
		err = add_item(d, WEFT_DIFF_CWD,
			       a->cwd && b->cwd ? WEFT_DIFF_CHANGED
						: WEFT_DIFF_UNKNOWN,
			       "cwd", a->cwd, b->cwd, depth, via);
	if (!err && (a->has_exit != b->has_exit ||
		     (a->has_exit && a->exit_code != b->exit_code))) {
		char x[16], y[16];
		snprintf(x, sizeof(x), "%d", a->exit_code);
		snprintf(y, sizeof(y), "%d", b->exit_code);
		err = add_item(d, WEFT_DIFF_EXIT, WEFT_DIFF_CHANGED,
			       "exit_code", a->has_exit ? x : NULL,
			       b->has_exit ? y : NULL, depth, via);
	}
	for (int s = 0; s < S_NSECTIONS && !err; s++)
		err = compare_kvs(d, s, &ka[s], &kb[s],
				  with_same && s == S_INPUTS, depth, via);
	for (int s = 0; s < S_NSECTIONS; s++) {
		kvs_free(&ka[s]);
		kvs_free(&kb[s]);
	}
	return err;
}

static void side_free(struct side *sd)
{
	for (size_t i = 0; i < sd->n; i++)
		weft_report_release(&sd->runs[i]);
	free(sd->runs);
	free(sd->label);
	free(sd->command);
	free(sd->cwd);
	memset(sd, 0, sizeof(*sd));
}

static int side_from_report_copy(struct side *sd)
{
	const weft_process_rec *root = sd->n ? root_of(&sd->runs[0]) : NULL;
	sd->label = strdup(sd->n ? sd->runs[0].run_id : "");
	sd->command = argv_text(root);
	sd->cwd = root && root->cwd ? strdup(root->cwd) : NULL;
	sd->has_exit = sd->n == 1;
	sd->exit_code = sd->n ? sd->runs[0].exit_code : 0;
	return sd->label && sd->command ? WEFT_OK : WEFT_ENOMEM;
}

/* A run (id or unique prefix), else a job (id or unique prefix): all its
 * runs. */
static int side_load(weft_store *s, const char *id, struct side *sd)
{
	memset(sd, 0, sizeof(*sd));
	sd->runs = calloc(1, sizeof(*sd->runs));
	if (!sd->runs)
		return WEFT_ENOMEM;
	int err = weft_store_get_run(s, id, &sd->runs[0]);
	if (err == WEFT_OK) {
		sd->n = 1;
		return side_from_report_copy(sd);
	}
	if (err != WEFT_ENOTFOUND)
		return err;
	weft_job_record job;
	err = weft_store_get_job(s, id, &job);
	if (err)
		return err;
	sqlite3_stmt *st;
	err = store_prepare(s,
			    "SELECT id FROM runs WHERE job = ?1 "
			    "ORDER BY started_ns, num",
			    &st);
	if (!err) {
		sqlite3_bind_text(st, 1, job.info.id, -1, SQLITE_STATIC);
		while (!err && sqlite3_step(st) == SQLITE_ROW) {
			char rid[WEFT_MAX_NAME_BYTES];
			snprintf(rid, sizeof(rid), "%s",
				 (const char *)sqlite3_column_text(st, 0));
			weft_report *more =
				realloc(sd->runs, (sd->n + 1) * sizeof(*more));
			if (!more) {
				err = WEFT_ENOMEM;
				break;
			}
			sd->runs = more;
			/* Prepared statements see one snapshot per step;
			 * get_run opens its own read. */
			err = weft_store_get_run(s, rid, &sd->runs[sd->n]);
			if (!err)
				sd->n++;
		}
		sqlite3_finalize(st);
	}
	if (!err) {
		sd->label = strdup(job.info.id);
		sd->command = strdup(job.info.command);
		sd->cwd = strdup(job.info.cwd);
		sd->has_exit = job.ended;
		sd->exit_code = job.exit_code;
		if (!sd->label || !sd->command || !sd->cwd)
			err = WEFT_ENOMEM;
	}
	weft_job_record_release(&job);
	return err;
}

int weft_store_diff(weft_store *s, const char *a, const char *b, weft_diff *out)
{
	memset(out, 0, sizeof(*out));
	struct side sa, sb;
	int err = side_load(s, a, &sa);
	if (!err)
		err = side_load(s, b, &sb);
	else
		memset(&sb, 0, sizeof(sb));
	if (!err) {
		out->a = strdup(sa.label);
		out->b = strdup(sb.label);
		err = out->a && out->b ? WEFT_OK : WEFT_ENOMEM;
	}
	if (!err)
		err = compare_sides(out, &sa, &sb, false, 0, NULL);
	side_free(&sa);
	side_free(&sb);
	if (err)
		weft_diff_release(out);
	return err;
}

int weft_diff_reports(const weft_report *a, const weft_report *b,
		      weft_diff *out)
{
	memset(out, 0, sizeof(*out));
	/* Sides borrow the reports (not freed here). */
	struct side sa = {(weft_report *)a, 1, NULL, NULL, NULL, 0, 0};
	struct side sb = {(weft_report *)b, 1, NULL, NULL, NULL, 0, 0};
	int err = side_from_report_copy(&sa);
	if (!err)
		err = side_from_report_copy(&sb);
	if (!err) {
		out->a = strdup(a->run_id);
		out->b = strdup(b->run_id);
		err = out->a && out->b ? WEFT_OK : WEFT_ENOMEM;
	}
	if (!err)
		err = compare_sides(out, &sa, &sb, false, 0, NULL);
	sa.runs = sb.runs = NULL;
	sa.n = sb.n = 0;
	side_free(&sa);
	side_free(&sb);
	if (err)
		weft_diff_release(out);
	return err;
}

/* The row of the run that made the version (hash) of path that a run
 * opened at topen: the last write of that content before it. */
static size_t maker_of(const struct cmp_model *m, const char *path,
		       const uint8_t hash[32], int64_t topen)
{
	size_t a, b, best = CMP_NONE;
	if (!cmp_path_rows(m, path, &a, &b))
		return CMP_NONE;
	for (size_t i = a; i < b; i++) {
		const struct cmp_row *r = &m->rows[i];
		if (r->written && r->has_hash && !memcmp(r->hash, hash, 32) &&
		    r->t <= topen)
			best = i;
	}
	return best;
}

/* The row of run r for path, or NULL. */
static const struct cmp_row *row_of(const struct cmp_model *m, size_t r,
				    const char *path)
{
	for (size_t k = m->run_first[r]; k < m->run_first[r + 1]; k++)
		if (!strcmp(m->rows[m->by_run[k]].path, path))
			return &m->rows[m->by_run[k]];
	return NULL;
}

/* Explanation limits: how far upstream, and how many pairs of runs. */
#define DIFF_MAX_DEPTH 32
#define DIFF_MAX_PAIRS 256

int weft_store_diff_file(weft_store *s, const char *path, const char *va,
			 const char *vb, weft_diff *out)
{
	memset(out, 0, sizeof(*out));
	struct cmp_model m;
	int err = cmp_model_load(s, &m);
	if (err)
		return err;
	size_t first, end;
	/* The versions: rows that left content there, oldest first. */
	size_t *vers = NULL, nv = 0;
	if (!cmp_path_rows(&m, path, &first, &end))
		err = WEFT_ENOTFOUND;
	if (!err && !(vers = malloc((end - first) * sizeof(*vers))))
		err = WEFT_ENOMEM;
	for (size_t i = first; !err && i < end; i++) {
		const struct cmp_row *r = &m.rows[i];
		if (r->written && !r->deleted && !r->renamed && r->has_hash)
			vers[nv++] = i;
	}
	size_t pa = CMP_NONE, pb = CMP_NONE;
	for (size_t i = 0; !err && i < nv; i++) {
		const char *id = m.runs[m.rows[vers[i]].run].id;
		if (va && !strncmp(id, va, strlen(va)))
			pa = vers[i];
		if (vb && !strncmp(id, vb, strlen(vb)))
			pb = vers[i];
	}
	if (!err && !va && !vb && nv) {
		/* The last two different contents. */
		pb = vers[nv - 1];
		for (size_t i = nv - 1; i-- > 0;)
			if (memcmp(m.rows[vers[i]].hash, m.rows[pb].hash, 32)) {
				pa = vers[i];
				break;
			}
	}
	if (!err && (pa == CMP_NONE || pb == CMP_NONE))
		err = WEFT_ENOTFOUND;
	struct pair {
		size_t a, b; /* runs */
		int depth;
		char *via;
	} *q = err ? NULL : calloc(DIFF_MAX_PAIRS, sizeof(*q));
	if (!err && !q)
		err = WEFT_ENOMEM;
	size_t nq = 0;
	if (!err) {
		char ta[WEFT_HASH_TEXT_BYTES], tb[WEFT_HASH_TEXT_BYTES];
		hash_text(m.rows[pa].hash, ta);
		hash_text(m.rows[pb].hash, tb);
		out->a = strdup(m.runs[m.rows[pa].run].id);
		out->b = strdup(m.runs[m.rows[pb].run].id);
		q[nq++] = (struct pair){m.rows[pa].run, m.rows[pb].run, 0,
					strdup(path)};
		err = add_item(out, WEFT_DIFF_FILE,
			       strcmp(ta, tb) ? WEFT_DIFF_CHANGED
					      : WEFT_DIFF_SAME,
			       path, ta, tb, 0, NULL);
	}
	/* Breadth first: the versions' own runs, then the runs that made
	 * their differing inputs, and so on. */
	for (size_t h = 0; !err && h < nq; h++) {
		struct pair p = q[h];
		struct side sa = {0}, sb = {0};
		err = side_load(s, m.runs[p.a].id, &sa);
		if (!err)
			err = side_load(s, m.runs[p.b].id, &sb);
		size_t before = out->nitems;
		if (!err)
			err = compare_sides(out, &sa, &sb, true, p.depth,
					    p.via);
		side_free(&sa);
		side_free(&sb);
		for (size_t i = before; !err && i < out->nitems; i++) {
			const weft_diff_item *x = &out->items[i];
			if (x->section != WEFT_DIFF_INPUT ||
			    x->change != WEFT_DIFF_CHANGED ||
			    p.depth + 1 >= DIFF_MAX_DEPTH ||
			    nq == DIFF_MAX_PAIRS)
				continue;
			const struct cmp_row *ra = row_of(&m, p.a, x->name);
			const struct cmp_row *rb = row_of(&m, p.b, x->name);
			if (!ra || !rb || !ra->has_rhash || !rb->has_rhash)
				continue;
			size_t ma = maker_of(&m, x->name, ra->rhash, ra->topen);
			size_t mb = maker_of(&m, x->name, rb->rhash, rb->topen);
			if (ma == CMP_NONE || mb == CMP_NONE ||
			    m.rows[ma].run == m.rows[mb].run)
				continue;
			bool seen = false;
			for (size_t k = 0; k < nq && !seen; k++)
				seen = q[k].a == m.rows[ma].run &&
				       q[k].b == m.rows[mb].run;
			if (seen)
				continue;
			q[nq++] = (struct pair){m.rows[ma].run, m.rows[mb].run,
						p.depth + 1, strdup(x->name)};
			if (!q[nq - 1].via)
				err = WEFT_ENOMEM;
		}
	}
	for (size_t i = 0; q && i < nq; i++)
		free(q[i].via);
	free(q);
	free(vers);
	cmp_model_free(&m);
	if (err)
		weft_diff_release(out);
	return err;
}

void weft_diff_release(weft_diff *d)
{
	static const size_t item_strings[] = {
		offsetof(weft_diff_item, name), offsetof(weft_diff_item, a),
		offsetof(weft_diff_item, b), offsetof(weft_diff_item, via),
		STORE_MEMBERS_END};
	store_free_members(d->items, d->nitems, sizeof(*d->items),
			   item_strings);
	free(d->a);
	free(d->b);
	memset(d, 0, sizeof(*d));
}

const char *weft_diff_section_name(int section)
{
	static const char *const names[] = {
		"file", "input",   "output", "executable",
		"env",  "command", "cwd",    "exit_code",
	};
	return section >= 0 && section <= WEFT_DIFF_EXIT ? names[section] : "?";
}

const char *weft_diff_change_name(int change)
{
	static const char *const names[] = {"same", "added", "removed",
					    "changed", "unknown"};
	return change >= 0 && change <= WEFT_DIFF_UNKNOWN ? names[change] : "?";
}
