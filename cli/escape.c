/*
 * escape.c - the two ways weft writes a string that came from outside
 * (paths, commands, task and node names set by writers, user and host
 * names from a job record) where a terminal or Graphviz will read it:
 * escaped text for people, and DOT string literals.
 *
 * Why one place: a node name is chosen by whoever holds a job's token,
 * a path by whoever names files; printed raw, an escape sequence in one
 * rewrites the terminal of whoever runs `weft status`, and a quote or a
 * control byte breaks (or changes) a DOT graph. Every text and DOT
 * output passes such strings through here, with the same rules, so that
 * the same bytes always print the same way.
 *
 * Rules: valid UTF-8 passes; control bytes (C0 and DEL) and bytes that
 * are not valid UTF-8 become \xHH (\n and \t as such); a backslash is
 * doubled, so the escaped form can be read back without doubt.
 */
#include <string.h>

#include "cli.h"

/* The escape of byte c into buf, or NULL when it passes as is. valid: c
 * is a whole UTF-8 sequence of its own (ASCII); quote: a byte to write as
 * \c too (a DOT literal's quote), or 0. */
static const char *byte_escape(unsigned char c, bool valid, char quote,
			       char buf[5])
{
	static const char hex[] = "0123456789abcdef";
	buf[0] = '\\';
	if (c == '\\' || (quote && c == (unsigned char)quote)) {
		buf[1] = (char)c;
		buf[2] = '\0';
		return buf;
	}
	if (valid && c >= 0x20 && c != 0x7f)
		return NULL;
	if (c == '\n')
		return "\\n";
	if (c == '\t')
		return "\\t";
	buf[1] = 'x';
	buf[2] = hex[c >> 4];
	buf[3] = hex[c & 15];
	buf[4] = '\0';
	return buf;
}

/* Walk s, handing every piece of output to put: runs of bytes that pass
 * (whole UTF-8 sequences), and escapes. */
typedef void (*put_fn)(void *ctx, const char *p, size_t n);

static void escape_walk(const char *str, char quote, put_fn put, void *ctx)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t left = strlen(str);
	while (left) {
		size_t n = json_utf8_len(s, left);
		char buf[5];
		const char *esc =
			n > 1 ? NULL : byte_escape(*s, n == 1, quote, buf);
		if (esc)
			put(ctx, esc, strlen(esc));
		else
			put(ctx, (const char *)s, n);
		s += n ? n : 1;
		left -= n ? n : 1;
	}
}

static void put_file(void *ctx, const char *p, size_t n)
{
	fwrite(p, 1, n, ctx);
}

void text_escaped(FILE *out, const char *s)
{
	escape_walk(s, 0, put_file, out);
}

void dot_string(FILE *out, const char *s)
{
	fputc('"', out);
	escape_walk(s, '"', put_file, out);
	fputc('"', out);
}

struct buf_out {
	char *p;
	size_t cap, len;
};

static void put_buf(void *ctx, const char *p, size_t n)
{
	struct buf_out *b = ctx;
	for (size_t i = 0; i < n; i++, b->len++)
		if (b->len + 1 < b->cap)
			b->p[b->len] = p[i];
}

size_t text_escape(char *out, size_t cap, const char *s)
{
	struct buf_out b = {out, cap, 0};
	escape_walk(s, 0, put_buf, &b);
	if (cap)
		out[b.len < cap ? b.len : cap - 1] = '\0';
	return b.len;
}
