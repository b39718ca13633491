/*
 * atomic_save.c TARGET CONTENT - the editor's atomic save: write CONTENT to
 * TARGET.tmp (created exclusively), fsync, rename it over TARGET. weft must
 * record TARGET written with CONTENT's hash, and TARGET.tmp created and
 * renamed_to TARGET, with no hash (it no longer exists).
 */
#include <fcntl.h>
#include <stdio.h>

#include "progs.h"

int main(int argc, char **argv)
{
	usage_if(argc != 3, "atomic_save TARGET CONTENT");
	char tmp[4096];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", argv[1]) >= (int)sizeof(tmp)) {
		fprintf(stderr, "path too long\n");
		return 2;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd < 0)
		die("open temp");
	write_all(fd, argv[2], strlen(argv[2]));
	if (fsync(fd) != 0)
		die("fsync");
	if (close(fd) != 0)
		die("close");
	if (rename(tmp, argv[1]) != 0)
		die("rename");
	return 0;
}
