/*
 * no_loader.c - a program linked for a dynamic loader that does not exist
 * (/weft-e2e/no/such/ld.so): execve fails with ENOENT although the file is
 * there, and weft must name the loader (conformance.py,
 * cli_missing_interpreter). It never runs.
 */
int main(void)
{
	return 0;
}
