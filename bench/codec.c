/*
 * bench/codec.c - what encoding and decoding a run's fragment costs per
 * file record, against msgpack-c parsing the same bytes.
 *
 *   codec [--files N] [--rounds R]
 *
 * The fragment is that of `cp -r` of N files (default 4,000): 2N file
 * records (each source read, each copy created and written), with the
 * fields a local run's records have (hashes, stat identities, location,
 * one process touching each). Every round encodes it (weft_fragment_encode),
 * decodes it (weft_fragment_decode: every key and type checked, strings
 * copied) and parses it with msgpack-c's generic unpacker (msgpack_unpack:
 * a tree of objects in a zone, nothing checked or copied): the floor of
 * reading msgpack with this library. Prints per-record medians of the
 * thread's CPU time and decode / unpack, the ratio measured in this run.
 */
#include <msgpack.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <weft/wire.h>

static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void fill_record(weft_file_rec *fr, size_t i, bool copy)
{
	char path[128];
	snprintf(path, sizeof(path),
		 "/work/project/data/%s/sub%02zu/f%05zu.csv",
		 copy ? "copy" : "src", i % 37, i);
	fr->path = strdup(path);
	fr->loc_fs = strdup("local 2058ca85-b97b-4022-84dd-b1b0b9844236 254:0");
	fr->loc_path = strdup(path);
	fr->has_size = true;
	fr->size = 4096 + (int64_t)i;
	fr->has_hash = true;
	for (int b = 0; b < 32; b++)
		fr->hash[b] = (uint8_t)(i * 13 + (size_t)b);
	fr->first_open_ns = 1765000000000000000 + (int64_t)i * 1000;
	if (copy) {
		fr->written = fr->created = true;
		fr->has_final_stat = true;
		fr->final_dev = 0xfe00;
		fr->final_ino = 1000000 + i;
		fr->final_mtime_ns = fr->final_ctime_ns = fr->first_open_ns + 7;
		fr->last_write_ns = fr->first_open_ns + 5;
	} else {
		fr->read = true;
		fr->has_first_stat = true;
		fr->first_dev = 0xfe00;
		fr->first_ino = 2000000 + i;
		fr->first_size = fr->size;
		fr->first_mtime_ns = fr->first_ctime_ns = 1764000000000000000;
		fr->has_read_hash = true;
		memcpy(fr->read_hash, fr->hash, 32);
	}
	fr->touches = calloc(1, sizeof(*fr->touches));
	fr->ntouches = 1;
	fr->touches[0].flags = copy ? WEFT_TOUCH_WRITTEN | WEFT_TOUCH_CREATED
				    : WEFT_TOUCH_READ;
	fr->touches[0].first_open_ns = fr->first_open_ns;
	fr->touches[0].last_write_ns = fr->last_write_ns;
}

static void make_fragment(weft_fragment *f, size_t nfiles)
{
	weft_fragment_init(f);
	memcpy(f->job, "6f1c0d52-8f3a-4d55-9a43-3d2a1b0c9e77", 36);
	f->seq = 1;
	snprintf(f->task.id, sizeof(f->task.id), "pid4242@node");
	snprintf(f->task.name, sizeof(f->task.name),
		 "cp -r data/src data/copy");
	f->nparts = 1;
	weft_report *r = &f->report;
	snprintf(r->run_id, sizeof(r->run_id),
		 "0d9b2a7e-1c3f-4e55-8a21-77aa00bb11cc");
	snprintf(r->backend, sizeof(r->backend), "preload");
	snprintf(r->node, sizeof(r->node), "node");
	r->started_ns = 1765000000000000000;
	r->ended_ns = r->started_ns + 1000000000;
	weft_process_rec *p = weft_report_add_process(r);
	p->pid = 4242;
	p->argc = 3;
	p->argv = calloc(4, sizeof(char *));
	p->argv[0] = strdup("cp");
	p->argv[1] = strdup("-r");
	p->argv[2] = strdup("data/src");
	p->cwd = strdup("/work/project");
	p->exited = true;
	for (size_t i = 0; i < nfiles; i++) {
		fill_record(weft_report_add_file(r), i, false);
		fill_record(weft_report_add_file(r), i, true);
	}
}

/* The fragment and the report in its "body" (a bin: the report's own
 * msgpack), each parsed by msgpack-c into a tree. */
static bool unpack_all(msgpack_unpacked *u, msgpack_unpacked *ub,
		       const uint8_t *data, size_t len)
{
	size_t off = 0;
	if (msgpack_unpack_next(u, (const char *)data, len, &off) !=
		    MSGPACK_UNPACK_SUCCESS ||
	    u->data.type != MSGPACK_OBJECT_MAP)
		return false;
	const msgpack_object_map *m = &u->data.via.map;
	for (uint32_t i = 0; i < m->size; i++) {
		const msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == 4 &&
		    !memcmp(k->via.str.ptr, "body", 4) &&
		    v->type == MSGPACK_OBJECT_BIN) {
			off = 0;
			return msgpack_unpack_next(ub, v->via.bin.ptr,
						   v->via.bin.size, &off) ==
			       MSGPACK_UNPACK_SUCCESS;
		}
	}
	return false;
}

int main(int argc, char **argv)
{
	size_t nfiles = 4000;
	int rounds = 15;
	for (int i = 1; i < argc; i++) {
		bool files = !strcmp(argv[i], "--files");
		const char *opt = argv[i];
		char *end = NULL;
		long v = 0;
		if ((files || !strcmp(opt, "--rounds")) && i + 1 < argc)
			v = strtol(argv[++i], &end, 10);
		if (!end || *end || v < 1 || v > 1000000) {
			fprintf(stderr,
				"codec: %s%s%s: expected --files N or --rounds "
				"R, a number from 1 to 1000000\n"
				"usage: codec [--files N] [--rounds R]\n",
				opt, end ? " " : "", end ? argv[i] : "");
			return 2;
		}
		if (files)
			nfiles = (size_t)v;
		else
			rounds = (int)v;
	}
	weft_fragment *f = malloc(sizeof(*f));
	make_fragment(f, nfiles);
	size_t nrec = f->report.nfiles;
	weft_buf buf;
	weft_buf_init(&buf);
	double *enc = calloc((size_t)rounds, sizeof(double));
	double *dec = calloc((size_t)rounds, sizeof(double));
	double *unp = calloc((size_t)rounds, sizeof(double));
	for (int r = 0; r < rounds; r++) {
		buf.len = 0;
		double t0 = cpu_s();
		int rc = weft_fragment_encode(f, &buf);
		if (rc) {
			fprintf(stderr,
				"codec: encoding %zu file records: %s (a "
				"fragment holds at most 4 MiB: --files up to "
				"about 5,000)\n",
				nrec, weft_strerror(rc));
			return 1;
		}
		double t1 = cpu_s();
		weft_fragment *g = malloc(sizeof(*g));
		if (weft_fragment_decode(buf.data, buf.len, g)) {
			fprintf(stderr, "codec: decode failed\n");
			return 1;
		}
		double t2 = cpu_s();
		weft_fragment_release(g);
		free(g);
		msgpack_unpacked u, ub;
		msgpack_unpacked_init(&u);
		msgpack_unpacked_init(&ub);
		double t3 = cpu_s();
		if (!unpack_all(&u, &ub, buf.data, buf.len)) {
			fprintf(stderr, "codec: msgpack-c cannot unpack it\n");
			return 1;
		}
		double t4 = cpu_s();
		msgpack_unpacked_destroy(&u);
		msgpack_unpacked_destroy(&ub);
		enc[r] = (t1 - t0) * 1e9 / (double)nrec;
		dec[r] = (t2 - t1) * 1e9 / (double)nrec;
		unp[r] = (t4 - t3) * 1e9 / (double)nrec;
	}
	double e = median(enc, rounds), d = median(dec, rounds),
	       u = median(unp, rounds);
	printf("# %zu file records, %zu bytes (%.0f a record), median of %d "
	       "rounds, thread CPU\n",
	       nrec, buf.len, (double)buf.len / (double)nrec, rounds);
	printf("encode (weft_fragment_encode)      %7.0f ns a record\n", e);
	printf("decode (weft_fragment_decode)      %7.0f ns a record\n", d);
	printf("msgpack-c unpack (the same bytes)  %7.0f ns a record\n", u);
	printf("decode / unpack                    %7.2fx\n", d / u);
	weft_buf_free(&buf);
	weft_fragment_release(f);
	free(f);
	free(enc);
	free(dec);
	free(unp);
	return 0;
}
