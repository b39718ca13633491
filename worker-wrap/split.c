/*
 * split.c - cut one traced run into fragment parts that each stay under
 * the coordinator's size limit, so that a run with a million files ships
 * as many small signed fragments instead of one message nobody accepts.
 * Records keep their order; a part never splits a record, so a record
 * larger than the budget travels alone.
 */
#include <stdlib.h>
#include <string.h>

#include <weft/wrap.h>

/* The encoded size of record k of r (its processes, then its files),
 * measured with the real encoders so the estimate cannot drift from the
 * format. */
static int record_size(const weft_report *r, size_t k, size_t *n)
{
	weft_buf b;
	weft_buf_init(&b);
	int err = k < r->nprocesses
			  ? weft_process_rec_encode(&r->processes[k], &b)
			  : weft_file_rec_encode(&r->files[k - r->nprocesses],
						 &b);
	*n = b.len;
	weft_buf_free(&b);
	return err;
}

static int push(weft_wrap_part **v, size_t *n, size_t *cap,
		const weft_wrap_part *p)
{
	if (*n == *cap) {
		size_t c = *cap ? 2 * *cap : 4;
		weft_wrap_part *g = realloc(*v, c * sizeof(**v));
		if (!g)
			return WEFT_ENOMEM;
		*v = g;
		*cap = c;
	}
	(*v)[(*n)++] = *p;
	return WEFT_OK;
}

int weft_wrap_split(const weft_report *r, size_t budget, weft_wrap_part **parts,
		    size_t *nparts)
{
	*parts = NULL;
	*nparts = 0;
	size_t cap = 0, used = 0;
	weft_wrap_part cur = {.warnings = true};
	for (size_t i = 0; i < r->nwarnings; i++)
		used += strlen(r->warnings[i]) + 5;
	if (used > WEFT_WRAP_PART_BYTES_DEFAULT)
		return WEFT_ETOOBIG;
	size_t total = r->nprocesses + r->nfiles;
	int err = WEFT_OK;
	for (size_t k = 0; k < total && !err; k++) {
		bool is_proc = k < r->nprocesses;
		size_t idx = is_proc ? k : k - r->nprocesses, n = 0;
		err = record_size(r, k, &n);
		if (err)
			break;
		/* A record over the budget (a process with a long argv)
		 * gets a part of its own: the budget is a wish, the wire's
		 * limit the law. */
		if (n > WEFT_WRAP_PART_BYTES_DEFAULT) {
			err = WEFT_ETOOBIG;
			break;
		}
		if (used && used + n > budget) {
			err = push(parts, nparts, &cap, &cur);
			cur = (weft_wrap_part){
				.proc_begin = cur.proc_end,
				.proc_end = cur.proc_end,
				.file_begin = cur.file_end,
				.file_end = cur.file_end,
			};
			used = 0;
		}
		used += n;
		if (is_proc)
			cur.proc_end = idx + 1;
		else
			cur.file_end = idx + 1;
	}
	if (!err)
		err = push(parts, nparts, &cap, &cur);
	if (err) {
		free(*parts);
		*parts = NULL;
		*nparts = 0;
	}
	return err;
}
