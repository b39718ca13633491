/*
 * jsonv.c - the strict JSON reader and writer of jsonv.h: a recursive
 * descent parser over a bounded input, tracking line and column for its
 * messages.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "jsonv.h"

typedef struct parser {
	const char *p, *end, *start;
	char *err;
	size_t errsz;
	int depth;
} parser;

static void where(const parser *ps, const char *at, size_t *line, size_t *col)
{
	*line = 1;
	*col = 1;
	for (const char *q = ps->start; q < at && q < ps->end; q++) {
		if (*q == '\n') {
			(*line)++;
			*col = 1;
		} else if (((unsigned char)*q & 0xc0) != 0x80) {
			(*col)++;
		}
	}
}

static jv *fail(parser *ps, const char *what)
{
	if (ps->err[0])
		return NULL; /* the innermost message wins */
	size_t line, col;
	where(ps, ps->p, &line, &col);
	if (ps->p >= ps->end)
		snprintf(ps->err, ps->errsz,
			 "line %zu, column %zu: %s, found the end of the "
			 "document",
			 line, col, what);
	else if ((unsigned char)*ps->p >= 0x20 && (unsigned char)*ps->p < 0x7f)
		snprintf(ps->err, ps->errsz,
			 "line %zu, column %zu: %s, found '%c'", line, col,
			 what, *ps->p);
	else
		snprintf(ps->err, ps->errsz,
			 "line %zu, column %zu: %s, found byte 0x%02x", line,
			 col, what, (unsigned char)*ps->p);
	return NULL;
}

static void skip_ws(parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' ||
				   *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

jv *jv_new(enum jv_kind kind)
{
	jv *v = calloc(1, sizeof(*v));
	if (v)
		v->kind = kind;
	return v;
}

jv *jv_new_string(const char *s)
{
	jv *v = jv_new(JV_STRING);
	if (v && !(v->s = strdup(s))) {
		free(v);
		return NULL;
	}
	return v;
}

void jv_free(jv *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++) {
		jv_free(v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->s);
	free(v);
}

/* Append (key may be NULL for arrays); takes val and key. */
static int push(jv *c, char *key, jv *val)
{
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 4;
		jv **items = realloc(c->items, cap * sizeof(*items));
		if (!items)
			goto oom;
		c->items = items;
		if (c->kind == JV_OBJECT) {
			char **keys = realloc(c->keys, cap * sizeof(*keys));
			if (!keys)
				goto oom;
			c->keys = keys;
		}
		c->cap = cap;
	}
	c->items[c->n] = val;
	if (c->kind == JV_OBJECT)
		c->keys[c->n] = key;
	c->n++;
	return 0;
oom:
	jv_free(val);
	free(key);
	return -1;
}

jv *jv_get(const jv *obj, const char *key)
{
	if (!obj || obj->kind != JV_OBJECT)
		return NULL;
	for (size_t i = 0; i < obj->n; i++)
		if (strcmp(obj->keys[i], key) == 0)
			return obj->items[i];
	return NULL;
}

int jv_set(jv *obj, const char *key, jv *val)
{
	if (!val)
		return -1;
	for (size_t i = 0; i < obj->n; i++)
		if (strcmp(obj->keys[i], key) == 0) {
			jv_free(obj->items[i]);
			obj->items[i] = val;
			return 0;
		}
	char *k = strdup(key);
	if (!k) {
		jv_free(val);
		return -1;
	}
	return push(obj, k, val);
}

static int hex4(const char *p, uint32_t *out)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static size_t put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* A string at ps->p (the opening quote); its decoded bytes. */
static char *parse_string(parser *ps)
{
	ps->p++;
	/* Decoded text is never longer than its escaped form. */
	const char *q = ps->p;
	while (q < ps->end && *q != '"')
		q += *q == '\\' && q + 1 < ps->end ? 2 : 1;
	char *out = malloc((size_t)(q - ps->p) + 1), *o = out;
	if (!out) {
		fail(ps, "out of memory reading a string");
		return NULL;
	}
	while (ps->p < ps->end && *ps->p != '"') {
		unsigned char c = (unsigned char)*ps->p;
		if (c < 0x20) {
			fail(ps, "expected a character of the string (control "
				 "characters must be escaped)");
			goto bad;
		}
		if (c != '\\') {
			*o++ = (char)c;
			ps->p++;
			continue;
		}
		if (ps->p + 1 >= ps->end) {
			ps->p++;
			fail(ps, "expected an escape after '\\'");
			goto bad;
		}
		char e = ps->p[1];
		const char *simple = strchr("\"\\/bfnrt", e);
		if (e && simple) {
			static const char to[] = "\"\\/\b\f\n\r\t";
			*o++ = to[simple - "\"\\/bfnrt"];
			ps->p += 2;
			continue;
		}
		uint32_t cp, lo;
		if (e != 'u' || ps->end - ps->p < 6 || hex4(ps->p + 2, &cp)) {
			ps->p++;
			fail(ps, "expected one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t "
				 "\\uXXXX");
			goto bad;
		}
		if (cp >= 0xd800 && cp <= 0xdbff && ps->end - ps->p >= 12 &&
		    ps->p[6] == '\\' && ps->p[7] == 'u' &&
		    hex4(ps->p + 8, &lo) == 0 && lo >= 0xdc00 && lo <= 0xdfff) {
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			ps->p += 6;
		} else if (cp >= 0xd800 && cp <= 0xdfff) {
			fail(ps, "expected a valid \\u escape (an unpaired "
				 "surrogate is not a character)");
			goto bad;
		}
		if (cp == 0) {
			fail(ps, "expected a character other than \\u0000");
			goto bad;
		}
		o += put_utf8(o, cp);
		ps->p += 6;
	}
	if (ps->p >= ps->end) {
		fail(ps, "expected '\"' closing the string");
		goto bad;
	}
	ps->p++;
	*o = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

static jv *parse_value(parser *ps);

static jv *parse_container(parser *ps, bool object)
{
	if (++ps->depth > JV_MAX_DEPTH)
		return fail(ps, "expected at most 64 levels of nesting");
	jv *c = jv_new(object ? JV_OBJECT : JV_ARRAY);
	if (!c)
		return fail(ps, "out of memory");
	char close = object ? '}' : ']';
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		ps->depth--;
		return c;
	}
	for (;;) {
		char *key = NULL;
		skip_ws(ps);
		if (object) {
			if (ps->p >= ps->end || *ps->p != '"') {
				fail(ps, "expected a member name in double "
					 "quotes");
				goto bad;
			}
			const char *at = ps->p;
			if (!(key = parse_string(ps)))
				goto bad;
			if (jv_get(c, key)) {
				ps->p = at;
				fail(ps, "expected each member name once (a "
					 "duplicate)");
				free(key);
				goto bad;
			}
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != ':') {
				fail(ps, "expected ':' after the member name");
				free(key);
				goto bad;
			}
			ps->p++;
		}
		jv *v = parse_value(ps);
		if (!v) {
			free(key);
			goto bad;
		}
		if (push(c, key, v) != 0) {
			fail(ps, "out of memory");
			goto bad;
		}
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == close) {
			ps->p++;
			ps->depth--;
			return c;
		}
		fail(ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
		goto bad;
	}
bad:
	jv_free(c);
	return NULL;
}

static jv *parse_number(parser *ps)
{
	const char *s = ps->p, *q = s;
	if (q < ps->end && *q == '-')
		q++;
	if (q < ps->end && *q == '0') {
		q++;
	} else if (q < ps->end && *q >= '1' && *q <= '9') {
		while (q < ps->end && *q >= '0' && *q <= '9')
			q++;
	} else {
		ps->p = q;
		return fail(ps, "expected a digit");
	}
	if (q < ps->end && *q == '.') {
		q++;
		if (q >= ps->end || *q < '0' || *q > '9') {
			ps->p = q;
			return fail(ps, "expected a digit after '.'");
		}
		while (q < ps->end && *q >= '0' && *q <= '9')
			q++;
	}
	if (q < ps->end && (*q == 'e' || *q == 'E')) {
		q++;
		if (q < ps->end && (*q == '+' || *q == '-'))
			q++;
		if (q >= ps->end || *q < '0' || *q > '9') {
			ps->p = q;
			return fail(ps, "expected a digit in the exponent");
		}
		while (q < ps->end && *q >= '0' && *q <= '9')
			q++;
	}
	jv *v = jv_new(JV_NUMBER);
	if (!v || !(v->s = strndup(s, (size_t)(q - s)))) {
		free(v);
		return fail(ps, "out of memory");
	}
	ps->p = q;
	return v;
}

static jv *parse_word(parser *ps, const char *word, enum jv_kind kind, bool b)
{
	size_t n = strlen(word);
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return fail(ps, "expected a value (an object, array, string, "
				"number, true, false or null)");
	ps->p += n;
	jv *v = jv_new(kind);
	if (!v)
		return fail(ps, "out of memory");
	v->b = b;
	return v;
}

static jv *parse_value(parser *ps)
{
	skip_ws(ps);
	if (ps->p >= ps->end)
		return fail(ps, "expected a value");
	switch (*ps->p) {
	case '{':
		return parse_container(ps, true);
	case '[':
		return parse_container(ps, false);
	case '"': {
		char *s = parse_string(ps);
		jv *v = s ? jv_new(JV_STRING) : NULL;
		if (!v) {
			free(s);
			return s ? fail(ps, "out of memory") : NULL;
		}
		v->s = s;
		return v;
	}
	case 't':
		return parse_word(ps, "true", JV_BOOL, true);
	case 'f':
		return parse_word(ps, "false", JV_BOOL, false);
	case 'n':
		return parse_word(ps, "null", JV_NULL, false);
	default:
		if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
			return parse_number(ps);
		return fail(ps, "expected a value (an object, array, string, "
				"number, true, false or null)");
	}
}

jv *jv_parse(const char *text, size_t len, char *err, size_t errsz)
{
	err[0] = '\0';
	if (len > JV_MAX_BYTES) {
		snprintf(err, errsz, "the document is %zu bytes, more than the "
				     "limit of %u",
			 len, JV_MAX_BYTES);
		return NULL;
	}
	/* Strings must be valid UTF-8: check once, up front. */
	for (size_t i = 0; i < len;) {
		size_t n = json_utf8_len((const unsigned char *)text + i,
					 len - i);
		if (!n) {
			parser at = {text + i, text + len, text, err, errsz, 0};
			fail(&at, "expected UTF-8 text");
			return NULL;
		}
		i += n;
	}
	parser ps = {text, text + len, text, err, errsz, 0};
	jv *v = parse_value(&ps);
	if (!v)
		return NULL;
	skip_ws(&ps);
	if (ps.p != ps.end) {
		fail(&ps, "expected the end of the document");
		jv_free(v);
		return NULL;
	}
	return v;
}

void jv_write(FILE *out, const jv *v)
{
	switch (v->kind) {
	case JV_NULL:
		fputs("null", out);
		return;
	case JV_BOOL:
		fputs(v->b ? "true" : "false", out);
		return;
	case JV_NUMBER:
		fputs(v->s, out);
		return;
	case JV_STRING:
		json_string(out, v->s);
		return;
	case JV_ARRAY:
	case JV_OBJECT:
		fputc(v->kind == JV_ARRAY ? '[' : '{', out);
		for (size_t i = 0; i < v->n; i++) {
			if (i)
				fputs(", ", out);
			if (v->kind == JV_OBJECT) {
				json_string(out, v->keys[i]);
				fputs(": ", out);
			}
			jv_write(out, v->items[i]);
		}
		fputc(v->kind == JV_ARRAY ? ']' : '}', out);
		return;
	}
}

char *jv_to_string(const jv *v)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	jv_write(f, v);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
