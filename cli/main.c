/*
 * main.c - the weft command: global options and dispatch to subcommands.
 */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("weft %s\n", WEFT_VERSION);
		return 0;
	}
	fprintf(stderr, "weft: usage: weft COMMAND [ARGS...]\n");
	return 2;
}
