/*
 * hash_throughput.c - weft's content hashing against coreutils' b2sum on
 * one large file, and the hash cache's second pass, measured in one run.
 *
 * usage: hash_throughput FILE [ROUNDS]
 * Prints MB/s for weft_hash_file (no cache) and for `b2sum -l 256 FILE`,
 * their ratio (target >= 0.9), and whether a second hash through a store's
 * cache read the file (it must not).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <weft/base.h>
#include <weft/store.h>

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double b2sum_once(const char *path)
{
	double t0 = weft_mono_s();
	pid_t pid = fork();
	if (pid == 0) {
		if (!freopen("/dev/null", "w", stdout))
			_exit(127);
		execlp("b2sum", "b2sum", "-l", "256", path, (char *)NULL);
		_exit(127);
	}
	int status;
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "b2sum failed\n");
		exit(1);
	}
	return weft_mono_s() - t0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE [ROUNDS]\n", argv[0]);
		return 2;
	}
	const char *path = argv[1];
	int rounds = argc > 2 ? atoi(argv[2]) : 3;
	if (rounds < 1 || rounds > 50)
		rounds = 3;
	struct stat st;
	if (stat(path, &st) != 0) {
		perror(path);
		return 1;
	}
	double mb = st.st_size / 1e6;
	double tw[50], tb[50];
	uint8_t hash[32];
	for (int i = 0; i < rounds; i++) { /* alternate the two */
		double t0 = weft_mono_s();
		int err = weft_hash_file(NULL, path, hash, NULL, NULL);
		tw[i] = weft_mono_s() - t0;
		if (err != WEFT_OK) {
			fprintf(stderr, "weft_hash_file: %s\n",
				weft_strerror(err));
			return 1;
		}
		tb[i] = b2sum_once(path);
	}
	qsort(tw, rounds, sizeof(double), cmp_double);
	qsort(tb, rounds, sizeof(double), cmp_double);
	double w = mb / tw[rounds / 2], b = mb / tb[rounds / 2];
	printf("file %s, %.0f MB, median of %d\n", path, mb, rounds);
	printf("  weft_hash_file  %8.1f MB/s\n", w);
	printf("  b2sum -l 256    %8.1f MB/s\n", b);
	printf("  weft / b2sum  = %.2f  (target >= 0.9)\n", w / b);

	char dir[] = "/tmp/weft-hashbench-XXXXXX";
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	char db[64];
	snprintf(db, sizeof(db), "%s/weft.db", dir);
	weft_store *s = NULL;
	if (weft_store_open(db, &s) != WEFT_OK) {
		fprintf(stderr, "cannot open %s\n", db);
		return 1;
	}
	bool hit1 = false, hit2 = false;
	double t0 = weft_mono_s();
	weft_hash_file(s, path, hash, NULL, &hit1);
	double t1 = weft_mono_s();
	weft_hash_file(s, path, hash, NULL, &hit2);
	double t2 = weft_mono_s();
	printf("  with cache: first %.3f s (%s), second %.6f s (%s)\n", t1 - t0,
	       hit1 ? "cache hit" : "read the file", t2 - t1,
	       hit2 ? "cache hit, file not read" : "READ THE FILE");
	weft_store_close(s);
	unlink(db);
	char wal[80];
	snprintf(wal, sizeof(wal), "%s-wal", db);
	unlink(wal);
	snprintf(wal, sizeof(wal), "%s-shm", db);
	unlink(wal);
	rmdir(dir);
	return hit2 ? 0 : 1;
}
