/*
 * stale.c - `weft stale`: which recorded outputs are out of date, and the
 * runs to re-run, in order.
 *
 * An output is what the last run that wrote a path left there. It is out
 * of date when that run's inputs are not, on disk, the versions it read
 * (changed, gone, or not known to be the same), when a run upstream of it
 * is out of date, or when the output itself was changed or removed since.
 * A file is compared by its stat identity first (device, inode, size,
 * mtime, ctime); its content is hashed (through the hash cache) only when
 * the identity is not one a recorded version had, so an unchanged
 * project costs one stat per file. "Fresh" is said only when weft can
 * vouch for it: a version it has neither the identity nor the hash of is
 * "unknown", which counts as stale.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "compare_internal.h"

enum { V_SAME, V_CHANGED, V_GONE, V_UNKNOWN };

/* What is at a path now, looked at once. */
struct disk {
	bool looked, gone, hashed, hash_failed;
	struct cmp_ident id;
	uint8_t hash[32];
};

enum { R_NEW, R_VISITING, R_FRESH, R_STALE };

struct stale_ctx {
	weft_store *s;
	struct cmp_model m;
	struct disk *disk; /* by the first row of a path */
	uint8_t *run_state;
	/* Causes found per run (inputs and upstream), kept for reports. */
	weft_stale_cause **run_causes;
	size_t *run_ncauses;
	uint64_t hashed;
	int err;
};

static int64_t ts_ns(struct timespec t)
{
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static bool ident_eq(const struct cmp_ident *a, const struct cmp_ident *b)
{
	return a->known && b->known && a->dev == b->dev && a->ino == b->ino &&
	       a->size == b->size && a->mtime_ns == b->mtime_ns &&
	       a->ctime_ns == b->ctime_ns;
}

static struct disk *look(struct stale_ctx *c, const char *path)
{
	size_t a, b;
	if (!cmp_path_rows(&c->m, path, &a, &b))
		return NULL;
	struct disk *d = &c->disk[a];
	if (d->looked)
		return d;
	d->looked = true;
	struct stat st;
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
		d->gone = true;
		return d;
	}
	d->id = (struct cmp_ident){
		true,       (uint64_t)st.st_dev, (uint64_t)st.st_ino,
		st.st_size, ts_ns(st.st_mtim),   ts_ns(st.st_ctim)};
	/* A recorded version with this identity gives its hash unread. */
	for (size_t i = a; i < b && !d->hashed; i++) {
		const struct cmp_row *r = &c->m.rows[i];
		if (r->has_hash && ident_eq(&r->final, &d->id)) {
			memcpy(d->hash, r->hash, 32);
			d->hashed = true;
		} else if (r->has_rhash && ident_eq(&r->first, &d->id)) {
			memcpy(d->hash, r->rhash, 32);
			d->hashed = true;
		}
	}
	return d;
}

static bool disk_hash(struct stale_ctx *c, const char *path, struct disk *d)
{
	if (d->hashed || d->hash_failed)
		return d->hashed;
	bool hit = false;
	int rc = weft_hash_file(c->s, path, d->hash, NULL, &hit);
	if (rc == WEFT_ENOMEM)
		c->err = rc;
	if (rc == WEFT_OK && !hit)
		c->hashed++;
	d->hashed = rc == WEFT_OK;
	d->hash_failed = rc != WEFT_OK;
	return d->hashed;
}

/* Is the version (hash, identity) at path now? */
static int version_here(struct stale_ctx *c, const char *path, bool has_hash,
			const uint8_t hash[32], const struct cmp_ident *id)
{
	struct disk *d = look(c, path);
	if (!d || d->gone)
		return V_GONE;
	if (ident_eq(id, &d->id))
		return V_SAME;
	if (!has_hash)
		return V_UNKNOWN;
	if (!disk_hash(c, path, d))
		return V_UNKNOWN;
	return memcmp(d->hash, hash, 32) == 0 ? V_SAME : V_CHANGED;
}

static int add_cause(weft_stale_cause **v, size_t *n, int why, const char *path,
		     const char *run)
{
	weft_stale_cause *more = realloc(*v, (*n + 1) * sizeof(**v));
	if (!more)
		return WEFT_ENOMEM;
	*v = more;
	weft_stale_cause *x = &more[*n];
	x->why = why;
	x->path = strdup(path);
	x->run = run ? strdup(run) : NULL;
	if (!x->path || (run && !x->run)) {
		free(x->path);
		free(x->run);
		return WEFT_ENOMEM;
	}
	(*n)++;
	return WEFT_OK;
}

/* The producer of what run r read at row i's path, when that is another
 * run's output (an edge upstream), else CMP_NONE. */
static size_t upstream_of(const struct cmp_model *m, size_t r,
			  const struct cmp_row *in)
{
	size_t p = cmp_producer(m, in->path);
	if (p == CMP_NONE)
		return CMP_NONE;
	const struct cmp_row *pr = &m->rows[p];
	if (pr->run == r || !pr->written || pr->deleted || pr->renamed)
		return CMP_NONE;
	return p;
}

static bool is_input(const struct cmp_row *x)
{
	/* What a run wrote itself is its output, checked as such. */
	return (x->read || x->updated) && !x->written && !x->deleted &&
	       !x->renamed;
}

/* Whether run r is out of date (its inputs, or a run upstream). */
static bool run_stale(struct stale_ctx *c, size_t r)
{
	if (c->run_state[r] == R_STALE || c->run_state[r] == R_FRESH)
		return c->run_state[r] == R_STALE;
	if (c->run_state[r] == R_VISITING)
		return false; /* a cycle: its start decides */
	c->run_state[r] = R_VISITING;
	const struct cmp_model *m = &c->m;
	for (size_t k = m->run_first[r]; k < m->run_first[r + 1] && !c->err;
	     k++) {
		const struct cmp_row *x = &m->rows[m->by_run[k]];
		if (!is_input(x))
			continue;
		int v = version_here(c, x->path, x->has_rhash, x->rhash,
				     &x->first);
		if (v != V_SAME) {
			int why = v == V_GONE      ? WEFT_STALE_INPUT_GONE
				  : v == V_CHANGED ? WEFT_STALE_INPUT_CHANGED
						   : WEFT_STALE_INPUT_UNKNOWN;
			c->err =
				add_cause(&c->run_causes[r], &c->run_ncauses[r],
					  why, x->path, NULL);
			continue;
		}
		size_t up = upstream_of(m, r, x);
		if (up != CMP_NONE && run_stale(c, m->rows[up].run))
			c->err =
				add_cause(&c->run_causes[r], &c->run_ncauses[r],
					  WEFT_STALE_UPSTREAM, x->path,
					  m->runs[m->rows[up].run].id);
	}
	c->run_state[r] = c->run_ncauses[r] ? R_STALE : R_FRESH;
	return c->run_state[r] == R_STALE;
}

/* The stale runs upstream of r and r itself, upstream first. */
static int chain_add(struct stale_ctx *c, size_t r, uint8_t *seen,
		     weft_stale_output *o)
{
	if (seen[r])
		return WEFT_OK;
	seen[r] = 1;
	for (size_t i = 0; i < c->run_ncauses[r]; i++) {
		const weft_stale_cause *x = &c->run_causes[r][i];
		if (x->why != WEFT_STALE_UPSTREAM)
			continue;
		size_t u = cmp_run_by_id(&c->m, x->run);
		int err = u == CMP_NONE ? WEFT_OK : chain_add(c, u, seen, o);
		if (err)
			return err;
	}
	char **more = realloc(o->chain, (o->nchain + 1) * sizeof(*more));
	if (!more)
		return WEFT_ENOMEM;
	o->chain = more;
	if (!(more[o->nchain] = strdup(c->m.runs[r].id)))
		return WEFT_ENOMEM;
	o->nchain++;
	return WEFT_OK;
}

/* Check one output (the producer row p of its path). */
static int check_output(struct stale_ctx *c, size_t p, weft_stale_result *out)
{
	const struct cmp_row *pr = &c->m.rows[p];
	out->checked++;
	int own = version_here(c, pr->path, pr->has_hash, pr->hash, &pr->final);
	bool stale = run_stale(c, pr->run);
	if (c->err)
		return c->err;
	if (own == V_SAME && !stale)
		return WEFT_OK;
	weft_stale_output *more =
		realloc(out->stale, (out->nstale + 1) * sizeof(*more));
	if (!more)
		return WEFT_ENOMEM;
	out->stale = more;
	weft_stale_output *o = &more[out->nstale++];
	memset(o, 0, sizeof(*o));
	o->path = strdup(pr->path);
	o->run = strdup(c->m.runs[pr->run].id);
	if (!o->path || !o->run)
		return WEFT_ENOMEM;
	int err = WEFT_OK;
	if (own != V_SAME)
		err = add_cause(&o->causes, &o->ncauses,
				own == V_GONE      ? WEFT_STALE_OUTPUT_GONE
				: own == V_CHANGED ? WEFT_STALE_OUTPUT_CHANGED
						   : WEFT_STALE_OUTPUT_UNKNOWN,
				pr->path, NULL);
	for (size_t i = 0; !err && i < c->run_ncauses[pr->run]; i++) {
		const weft_stale_cause *x = &c->run_causes[pr->run][i];
		err = add_cause(&o->causes, &o->ncauses, x->why, x->path,
				x->run);
	}
	uint8_t *seen = err ? NULL : calloc(c->m.nruns, 1);
	if (!err && !seen)
		err = WEFT_ENOMEM;
	if (!err)
		err = chain_add(c, pr->run, seen, o);
	free(seen);
	return err;
}

/* Whether row p is an output that can be checked: the run left a version
 * there (not removed, not renamed away). One with neither a hash nor an
 * identity that is gone now never was one to keep (hashing found nothing). */
static bool checkable(struct stale_ctx *c, size_t p)
{
	const struct cmp_row *pr = &c->m.rows[p];
	if (!pr->written || pr->deleted || pr->renamed)
		return false;
	if (!pr->has_hash && !pr->final.known) {
		struct disk *d = look(c, pr->path);
		return d && !d->gone;
	}
	return true;
}

static bool under(const char *path, const char *root)
{
	size_t n = strlen(root);
	if (n == 1 && root[0] == '/')
		return true;
	return strncmp(path, root, n) == 0 && path[n] == '/';
}

/* Mark the output at path, and the outputs upstream of it, wanted. */
static void want_upstream(struct stale_ctx *c, size_t p, uint8_t *want)
{
	if (want[p])
		return;
	want[p] = 1;
	const struct cmp_model *m = &c->m;
	size_t r = m->rows[p].run;
	for (size_t k = m->run_first[r]; k < m->run_first[r + 1]; k++) {
		const struct cmp_row *x = &m->rows[m->by_run[k]];
		if (!is_input(x))
			continue;
		size_t up = upstream_of(m, r, x);
		if (up != CMP_NONE)
			want_upstream(c, up, want);
	}
}

int weft_store_stale(weft_store *s, const char *root, const char *const *paths,
		     size_t npaths, weft_stale_result *out)
{
	memset(out, 0, sizeof(*out));
	struct stale_ctx c = {.s = s};
	int err = cmp_model_load(s, &c.m);
	if (err)
		return err;
	size_t nr = c.m.nruns ? c.m.nruns : 1;
	c.disk = calloc(c.m.nrows ? c.m.nrows : 1, sizeof(*c.disk));
	c.run_state = calloc(nr, 1);
	c.run_causes = calloc(nr, sizeof(*c.run_causes));
	c.run_ncauses = calloc(nr, sizeof(*c.run_ncauses));
	uint8_t *want = calloc(c.m.nrows ? c.m.nrows : 1, 1);
	if (!c.disk || !c.run_state || !c.run_causes || !c.run_ncauses || !want)
		err = WEFT_ENOMEM;
	for (size_t i = 0; !err && i < npaths; i++) {
		size_t p = cmp_producer(&c.m, paths[i]);
		if (p != CMP_NONE && checkable(&c, p)) {
			want_upstream(&c, p, want);
			continue;
		}
		char **more = realloc(out->not_recorded,
				      (out->nnot_recorded + 1) * sizeof(*more));
		if (!more || !(more[out->nnot_recorded] = strdup(paths[i]))) {
			if (more)
				out->not_recorded = more;
			err = WEFT_ENOMEM;
			break;
		}
		out->not_recorded = more;
		out->nnot_recorded++;
	}
	/* Each path's producer, in path order. */
	for (size_t a = 0; !err && a < c.m.nrows;) {
		size_t b = a + 1;
		while (b < c.m.nrows &&
		       strcmp(c.m.rows[b].path, c.m.rows[a].path) == 0)
			b++;
		size_t p = cmp_producer(&c.m, c.m.rows[a].path);
		bool wanted = npaths ? p != CMP_NONE && want[p]
				     : p != CMP_NONE &&
					       (!root ||
						under(c.m.rows[p].path, root));
		if (wanted && checkable(&c, p))
			err = check_output(&c, p, out);
		a = b;
	}
	if (!err)
		err = c.err;
	out->hashed = c.hashed;
	for (size_t r = 0; c.run_causes && r < c.m.nruns; r++) {
		for (size_t i = 0; i < c.run_ncauses[r]; i++) {
			free(c.run_causes[r][i].path);
			free(c.run_causes[r][i].run);
		}
		free(c.run_causes[r]);
	}
	free(c.run_causes);
	free(c.run_ncauses);
	free(c.run_state);
	free(c.disk);
	free(want);
	cmp_model_free(&c.m);
	if (err)
		weft_stale_result_release(out);
	return err;
}

void weft_stale_result_release(weft_stale_result *r)
{
	for (size_t i = 0; i < r->nstale; i++) {
		weft_stale_output *o = &r->stale[i];
		free(o->path);
		free(o->run);
		for (size_t k = 0; k < o->ncauses; k++) {
			free(o->causes[k].path);
			free(o->causes[k].run);
		}
		free(o->causes);
		for (size_t k = 0; k < o->nchain; k++)
			free(o->chain[k]);
		free(o->chain);
	}
	free(r->stale);
	for (size_t i = 0; i < r->nnot_recorded; i++)
		free(r->not_recorded[i]);
	free(r->not_recorded);
	memset(r, 0, sizeof(*r));
}

const char *weft_stale_why_name(int why)
{
	switch (why) {
	case WEFT_STALE_INPUT_CHANGED:
		return "input_changed";
	case WEFT_STALE_INPUT_GONE:
		return "input_removed";
	case WEFT_STALE_INPUT_UNKNOWN:
		return "input_unknown";
	case WEFT_STALE_UPSTREAM:
		return "upstream";
	case WEFT_STALE_OUTPUT_CHANGED:
		return "output_changed";
	case WEFT_STALE_OUTPUT_GONE:
		return "output_removed";
	case WEFT_STALE_OUTPUT_UNKNOWN:
		return "output_unknown";
	}
	return "?";
}
