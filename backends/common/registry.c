/*
 * registry.c - the backends built into this weft, in auto order. Nothing
 * outside backends/ names a backend except through this table.
 */
#include <string.h>

#include <weft/backends.h>

extern const weft_backend weft_backend_ebpf; /* backends/ebpf */
extern const weft_backend weft_backend_preload; /* backends/preload */
extern const weft_backend weft_backend_ptrace; /* backends/ptrace */

const weft_backend *const weft_backends[] = {
	&weft_backend_ebpf,
	&weft_backend_preload,
	&weft_backend_ptrace,
	NULL,
};

const weft_backend *weft_backend_find(const char *name)
{
	for (size_t i = 0; weft_backends[i]; i++)
		if (strcmp(weft_backends[i]->name, name) == 0)
			return weft_backends[i];
	return NULL;
}
