/*
 * json_out.c - writing JSON text for the documents weft prints and exports
 * (the DAG, W3C PROV-JSON, RO-Crate metadata): strings from paths and
 * argv, which are byte strings, and times.
 *
 * JSON needs Unicode, so invalid UTF-8 bytes are written as lone
 * surrogates U+DC80+byte (Python's surrogateescape), which round-trips
 * exactly; valid UTF-8 passes through.
 */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <weft/store.h>

static size_t utf8_valid_len(const unsigned char *s);

size_t weft_utf8_len(const unsigned char *s, size_t avail)
{
	static const unsigned char lead_len[4] = {2, 2, 3, 4};
	unsigned c = s[0];
	size_t n = c < 0x80 ? 1 : c >= 0xc0 ? lead_len[(c >> 4) & 3] : 0;
	if (c >= 0xf8)
		n = 0;
	if (n == 0 || n > avail)
		return 0;
	/* Whole sequences only: the terminated check below then stops at
	 * the end of what is there. */
	unsigned char tmp[5] = {0};
	memcpy(tmp, s, n);
	return utf8_valid_len(tmp) == n ? n : 0;
}

/* Length of the valid UTF-8 sequence at s, or 0 when s does not start one
 * (overlong forms, surrogates and values above U+10FFFF are invalid). */
static size_t utf8_valid_len(const unsigned char *s)
{
	unsigned c = s[0];
	if (c < 0x80)
		return 1;
	size_t n;
	uint32_t cp, min;
	if ((c & 0xe0) == 0xc0) {
		n = 2, cp = c & 0x1f, min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3, cp = c & 0x0f, min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		n = 4, cp = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0; /* also stops at the NUL terminator */
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void weft_json_string(FILE *out, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	fputc('"', out);
	while (*s) {
		/* A run of printable ASCII that needs no escape, in one write:
		 * most of a DAG's bytes (paths, ids, hashes). */
		const unsigned char *run = s;
		while (*s >= 0x20 && *s < 0x7f && *s != '"' && *s != '\\')
			s++;
		if (s > run) {
			fwrite(run, 1, (size_t)(s - run), out);
			continue;
		}
		size_t n = utf8_valid_len(s);
		if (n == 0) {
			fprintf(out, "\\udc%02x", *s);
			s++;
			continue;
		}
		if (n > 1) {
			fwrite(s, 1, n, out);
			s += n;
			continue;
		}
		unsigned char c = *s++;
		switch (c) {
		case '"':
			fputs("\\\"", out);
			break;
		case '\\':
			fputs("\\\\", out);
			break;
		case '\n':
			fputs("\\n", out);
			break;
		case '\r':
			fputs("\\r", out);
			break;
		case '\t':
			fputs("\\t", out);
			break;
		case '\b':
			fputs("\\b", out);
			break;
		case '\f':
			fputs("\\f", out);
			break;
		default:
			if (c < 0x20 || c == 0x7f)
				fprintf(out, "\\u%04x", c);
			else
				fputc(c, out);
		}
	}
	fputc('"', out);
}
