/*
 * compare_internal.h - the store's file records in memory (records.c),
 * shared by staleness (stale.c) and comparisons (diff.c).
 */
#ifndef WEFT_COMPARE_INTERNAL_H
#define WEFT_COMPARE_INTERNAL_H

#include "store_internal.h"

#define CMP_NONE ((size_t)-1)

/* A stat identity: a version is the same content while this holds. */
struct cmp_ident {
	bool known;
	uint64_t dev, ino;
	int64_t size, mtime_ns, ctime_ns;
};

struct cmp_run {
	int64_t num;
	char *id;
	int64_t started_ns, ended_ns;
	int32_t exit_code;
};

/* One file record (run, path). */
struct cmp_row {
	size_t run; /* index in runs */
	char *path;
	bool read, written, deleted, renamed, updated;
	bool has_hash, has_rhash;
	uint8_t hash[32];  /* the version written (at the end of the run) */
	uint8_t rhash[32]; /* the version read (at the first open) */
	struct cmp_ident first, final;
	int64_t t;     /* when its version was made (last write, else the
			  run's end) */
	int64_t topen; /* the run's first open (else its start) */
};

struct cmp_model {
	struct cmp_run *runs; /* by num */
	size_t nruns, capruns;
	struct cmp_row *rows; /* by path, then time */
	size_t nrows, caprows;
	size_t *by_run;    /* row indices by run, then path */
	size_t *run_first; /* nruns + 1 offsets into by_run */
};

int cmp_model_load(weft_store *s, struct cmp_model *m);
void cmp_model_free(struct cmp_model *m);
size_t cmp_run_by_num(const struct cmp_model *m, int64_t num);
size_t cmp_run_by_id(const struct cmp_model *m, const char *id);
/* The rows of path: [*first, *end). */
bool cmp_path_rows(const struct cmp_model *m, const char *path, size_t *first,
		   size_t *end);
/* The row that made what should be at path now (the last write, removal
 * or rename away), or CMP_NONE. */
size_t cmp_producer(const struct cmp_model *m, const char *path);

#endif /* WEFT_COMPARE_INTERNAL_H */
