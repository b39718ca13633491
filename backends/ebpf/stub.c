/*
 * stub.c - the eBPF backend of a weft built where it could not be (no
 * kernel BTF, no clang BPF target, no bpftool or libbpf at configure
 * time): it stays in the registry so that `weft tracer check ebpf` and
 * auto say why it is missing instead of not knowing the name. Built
 * instead of the other files of this folder, never with them.
 */
#include <stdio.h>

#include <weft/backends.h>

#ifndef WEFT_EBPF_MISSING
#define WEFT_EBPF_MISSING "not built"
#endif

static int stub_preflight(weft_preflight *p, const char *command,
			  int timeout_ms)
{
	(void)timeout_ms;
	weft_preflight_begin(p, "ebpf", command);
	weft_preflight_check(p, "built", false,
			     "this weft was built without the eBPF backend: "
			     "%s",
			     WEFT_EBPF_MISSING);
	snprintf(p->summary, sizeof(p->summary),
		 "ebpf unavailable: built without it (%s)", WEFT_EBPF_MISSING);
	return 0;
}

static int stub_run(weft_launch *l, weft_report *w)
{
	(void)l;
	weft_report_warn(w, "ebpf: not built: %s", WEFT_EBPF_MISSING);
	return WEFT_EUNSUPPORTED;
}

int weft_agent_serve(const weft_agent_options *o, FILE *err)
{
	(void)o;
	fprintf(err,
		"weft agent: this weft was built without the eBPF "
		"backend (%s)\n",
		WEFT_EBPF_MISSING);
	return WEFT_EUNSUPPORTED;
}

static int stub_collect_open(weft_launch *l, weft_report *w,
			     const weft_collect_opts *o, weft_collect **out,
			     char *ready, size_t readysz, char *err,
			     size_t errsz)
{
	(void)l;
	(void)w;
	(void)o;
	(void)ready;
	(void)readysz;
	*out = NULL;
	snprintf(err, errsz, "this weft was built without the eBPF backend: %s",
		 WEFT_EBPF_MISSING);
	return WEFT_EUNSUPPORTED;
}

static int stub_collect_end(weft_collect *c, int code)
{
	(void)c;
	return code;
}

static void stub_collect_close(weft_collect *c)
{
	(void)c;
}

const weft_backend weft_backend_ebpf = {
	.name = "ebpf",
	.preflight = stub_preflight,
	.run = stub_run,
	/* Collection is refused with the reason, as `--tracer ebpf` was. */
	.collect_open = stub_collect_open,
	.collect_end = stub_collect_end,
	.collect_close = stub_collect_close,
	.collect_needs_agent = true,
};
