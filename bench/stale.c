/*
 * stale.c - what `weft stale` costs on a project of many recorded
 * outputs: R runs, each reading a shared input and one of its own and
 * writing O outputs (10,000 by default), stored as weft run stores them;
 * then weft_store_stale over the project, unchanged (no file may be
 * hashed: one stat per file) and after one shared input changed (every
 * output stale, that one file hashed).
 *
 * usage: stale [RUNS [OUTPUTS_PER_RUN]]   (defaults 1000 and 10)
 * Prints the figures of one run: store time, and for each check the
 * seconds, outputs checked, stale, files hashed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <weft/base.h>
#include <weft/store.h>

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static weft_file_rec *file(weft_report *r, const char *path, bool write)
{
	weft_file_rec *f = weft_report_add_file(r);
	f->path = strdup(path);
	f->read = !write;
	f->written = write;
	struct stat st;
	if (!write && stat(path, &st) == 0) {
		f->has_first_stat = true;
		f->first_dev = st.st_dev;
		f->first_ino = st.st_ino;
		f->first_size = st.st_size;
		f->first_mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 +
				    st.st_mtim.tv_nsec;
		f->first_ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 +
				    st.st_ctim.tv_nsec;
	}
	return f;
}

static int by_path(const void *a, const void *b)
{
	return strcmp(((const weft_file_rec *)a)->path,
		      ((const weft_file_rec *)b)->path);
}

static void check(weft_store *s, const char *root, const char *what)
{
	weft_stale_result res;
	double t0 = weft_mono_s();
	int err = weft_store_stale(s, root, NULL, 0, &res);
	double t1 = weft_mono_s();
	if (err) {
		fprintf(stderr, "stale: %s\n", weft_strerror(err));
		exit(1);
	}
	printf("stale %-10s seconds=%.3f checked=%zu stale=%zu hashed=%llu\n",
	       what, t1 - t0, res.checked, res.nstale,
	       (unsigned long long)res.hashed);
	weft_stale_result_release(&res);
}

int main(int argc, char **argv)
{
	int runs = argc > 1 ? atoi(argv[1]) : 1000;
	int outs = argc > 2 ? atoi(argv[2]) : 10;
	if (runs <= 0 || outs <= 0) {
		fprintf(stderr, "usage: stale [RUNS [OUTPUTS_PER_RUN]]\n");
		return 2;
	}
	char root[] = "/tmp/weft-bench-stale-XXXXXX";
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	char db[256], path[512];
	snprintf(db, sizeof(db), "%s/weft.db", root);
	weft_store *s;
	if (weft_store_open(db, &s) != WEFT_OK) {
		fprintf(stderr, "cannot open %s\n", db);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/shared.txt", root);
	put(path, "shared input\n");
	double t0 = weft_mono_s();
	for (int i = 0; i < runs; i++) {
		weft_report r;
		weft_report_init(&r);
		snprintf(r.run_id, sizeof(r.run_id), "run-%06d", i);
		snprintf(r.backend, sizeof(r.backend), "bench");
		snprintf(r.node, sizeof(r.node), "bench");
		r.started_ns = 1000 + 10 * (int64_t)i;
		r.ended_ns = r.started_ns + 5;
		weft_process_rec *p = weft_report_add_process(&r);
		p->pid = 1;
		file(&r, path, false);
		char own[512];
		snprintf(own, sizeof(own), "%s/in-%06d.txt", root, i);
		put(own, own);
		file(&r, own, false);
		for (int k = 0; k < outs; k++) {
			char out[512];
			snprintf(out, sizeof(out), "%s/out-%06d-%03d.txt", root,
				 i, k);
			put(out, out);
			file(&r, out, true);
		}
		qsort(r.files, r.nfiles, sizeof(*r.files), by_path);
		if (weft_report_hash_files(s, &r) != WEFT_OK ||
		    weft_store_put_run(s, &r) != WEFT_OK) {
			fprintf(stderr, "cannot store run %d\n", i);
			return 1;
		}
		weft_report_release(&r);
	}
	double t1 = weft_mono_s();
	printf("stored runs=%d outputs=%d seconds=%.3f\n", runs, runs * outs,
	       t1 - t0);
	check(s, root, "unchanged");
	check(s, root, "again");
	put(path, "shared input, changed\n");
	check(s, root, "changed");
	weft_store_close(s);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		return 1;
	return 0;
}
