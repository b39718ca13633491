/*
 * test_preload_stub.c - a stand-in for libweft_preload.so in the Slurm
 * tests (tests/slurm_spank.py): preloaded into a task, it proves that it was
 * loaded there by creating $WEFT_SPANK_TEST_MARKS/<WEFT_TASK>. It traces
 * nothing and changes nothing else.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((constructor)) static void mark_loaded(void)
{
	const char *dir = getenv("WEFT_SPANK_TEST_MARKS");
	const char *task = getenv("WEFT_TASK");
	char path[4096];
	if (!dir || !task)
		return;
	int n = snprintf(path, sizeof(path), "%s/%s", dir, task);
	if (n <= 0 || (size_t)n >= sizeof(path))
		return;
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
}
