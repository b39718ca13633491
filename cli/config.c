/*
 * config.c - weft's settings: the strict TOML-subset parser of the config
 * files, precedence (flags > WEFT_TRACER > project file > user file >
 * defaults), and the line-preserving writer of `weft tracer use`.
 *
 * The subset (docs/config.md): comments, blank lines, [table] headers of
 * bare keys, `key = value` with dotted bare keys, basic "strings" (escapes
 * \" \\ \n \t \uXXXX), decimal integers and true/false. Anything else is an
 * error naming file:line:column and what was expected, never a guess: a
 * config that means something other than what the user wrote would pick a
 * tracer they did not ask for.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include <weft/backends.h>
#include <weft/store.h>

#define KEY_BYTES 128
#define STR_BYTES 512
#define MAX_KEYS 64
#define MAX_TABLES 32
/* A config file is a few lines; anything bigger is not one. */
#define MAX_FILE_BYTES (1024 * 1024)

/* The directory holding the weft Python package: the installed copy
 * (WEFT_PYTHON_SHIM_REL_DIR from the weft executable's directory, e.g.
 * bin/../share/weft/python) when there is one, else this build's
 * python-shim/. Relative to the executable, so an installed tree works
 * wherever it was put (DESTDIR, an unpacked package). */
static void default_python_path(char *out, size_t outsz)
{
#ifdef WEFT_PYTHON_SHIM_REL_DIR
	char exe[PATH_MAX], cand[PATH_MAX + 64], real[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0)
		exe[n] = '\0';
	char *slash = n > 0 ? strrchr(exe, '/') : NULL;
	if (slash) {
		*slash = '\0';
		snprintf(cand, sizeof(cand),
			 "%s/" WEFT_PYTHON_SHIM_REL_DIR "/weft/__init__.py",
			 exe);
		if (access(cand, R_OK) == 0 && realpath(cand, real)) {
			*strrchr(real, '/') = '\0'; /* .../weft */
			*strrchr(real, '/') = '\0'; /* its parent */
			snprintf(out, outsz, "%s", real);
			return;
		}
	}
#endif
	snprintf(out, outsz, "%s", WEFT_PYTHON_SHIM_DIR);
}

void config_defaults(weft_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->mode, sizeof(c->mode), "%s", CONFIG_MODE_AUTO);
	c->fallback_enabled = true;
	c->preflight_timeout_ms = CONFIG_TIMEOUT_DEFAULT_MS;
	snprintf(c->ray_weft_binary, sizeof(c->ray_weft_binary), "weft");
	default_python_path(c->ray_python_path, sizeof(c->ray_python_path));
	snprintf(c->ray_actor_granularity, sizeof(c->ray_actor_granularity),
		 "call");
}

_Static_assert(CONFIG_MAX_ENV_VALUES <= WEFT_WRAP_MAX_ENV_VALUES,
	       "record.env_values fits the tracer's");

void config_tracer_opts(const weft_config *c,
			const char *env_names[WEFT_WRAP_MAX_ENV_VALUES],
			weft_wrap_tracer_opts *o)
{
	for (size_t i = 0; i < c->nenv_values; i++)
		env_names[i] = c->env_values[i];
	*o = (weft_wrap_tracer_opts){
		.mode = c->mode,
		.mode_from = config_source_name(c->mode_from),
		.fallback_enabled = c->fallback_enabled,
		.preflight_timeout_ms = c->preflight_timeout_ms,
		.env_values = env_names,
		.nenv_values = c->nenv_values,
	};
}

const char *config_source_name(enum config_source s)
{
	switch (s) {
	case CONFIG_DEFAULT:
		return "default";
	case CONFIG_USER_FILE:
		return "user file";
	case CONFIG_PROJECT_FILE:
		return "project file";
	case CONFIG_ENV:
		return "env WEFT_TRACER";
	case CONFIG_FLAG:
		return "flag";
	}
	return "?";
}

bool config_mode_valid(const char *mode)
{
	return strcmp(mode, CONFIG_MODE_AUTO) == 0 ||
	       weft_backend_find(mode) != NULL;
}

void config_modes(char *buf, size_t bufsz)
{
	snprintf(buf, bufsz, "%s", CONFIG_MODE_AUTO);
	for (size_t i = 0; weft_backends[i]; i++) {
		size_t n = strlen(buf);
		snprintf(buf + n, bufsz - n, ", %s", weft_backends[i]->name);
	}
}

/* ---- The parser ---- */

enum value_kind { V_STRING, V_INT, V_BOOL, V_STRINGS };

/* Where things are in the document, for config_write_mode. */
struct layout {
	bool has_mode;
	size_t mode_start, mode_end; /* the value's bytes */
	bool has_tracer_table;
	size_t tracer_body; /* offset just after the [tracer] header line */
	size_t first_table; /* offset of the first header line, or len */
};

struct parser {
	const char *name, *text;
	size_t len, pos, line_start;
	int line;
	FILE *err;
	weft_config *cfg;
	enum config_source src;
	char table[KEY_BYTES]; /* current table, "" at the root */
	struct {
		char key[KEY_BYTES];
		int line;
	} keys[MAX_KEYS], tables[MAX_TABLES];
	size_t nkeys, ntables;
	struct layout lay;
	/* The strings of the last array value (V_STRINGS). */
	char arr[CONFIG_MAX_ENV_VALUES][CONFIG_ENV_NAME_BYTES];
	size_t narr;
};

static int col(const struct parser *p, size_t pos)
{
	return (int)(pos - p->line_start) + 1;
}

static int fail_at(struct parser *p, size_t pos, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail_at(struct parser *p, size_t pos, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(p->err, "weft: %s:%d:%d: ", p->name, p->line, col(p, pos));
	vfprintf(p->err, fmt, ap);
	fputc('\n', p->err);
	va_end(ap);
	return -1;
}

static int peek(const struct parser *p, size_t off)
{
	return p->pos + off < p->len ? (unsigned char)p->text[p->pos + off]
				     : -1;
}

static void skip_ws(struct parser *p)
{
	while (peek(p, 0) == ' ' || peek(p, 0) == '\t')
		p->pos++;
}

static bool at_eol(const struct parser *p)
{
	return peek(p, 0) == -1 || peek(p, 0) == '\n' ||
	       (peek(p, 0) == '\r' && peek(p, 1) == '\n');
}

static bool is_bare(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
}

/* After the content of a line: blanks, an optional comment, the end. */
static int end_line(struct parser *p)
{
	skip_ws(p);
	if (peek(p, 0) == '#') {
		while (!at_eol(p)) {
			int ch = peek(p, 0);
			if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
				return fail_at(p, p->pos,
					       "control character 0x%02x in "
					       "a comment; expected text",
					       ch);
			p->pos++;
		}
	}
	if (!at_eol(p))
		return fail_at(p, p->pos,
			       "expected a comment (#) or the end of the "
			       "line, found '%c'",
			       peek(p, 0));
	if (peek(p, 0) == '\r')
		p->pos++;
	if (peek(p, 0) == '\n')
		p->pos++;
	p->line++;
	p->line_start = p->pos;
	return 0;
}

/* A dotted key of bare keys: a.b.c (blanks allowed around the dots). */
static int parse_key(struct parser *p, char *out)
{
	size_t n = 0;
	for (;;) {
		int ch = peek(p, 0);
		if (ch == '"' || ch == '\'')
			return fail_at(p, p->pos,
				       "quoted keys are not supported; "
				       "expected a bare key (letters, digits, "
				       "_ and -)");
		if (!is_bare(ch))
			return fail_at(p, p->pos,
				       "expected a key (letters, digits, _ "
				       "and -)");
		while (is_bare(peek(p, 0))) {
			if (n + 1 >= KEY_BYTES)
				return fail_at(p, p->pos,
					       "key too long (at most %d "
					       "bytes)",
					       KEY_BYTES - 1);
			out[n++] = (char)peek(p, 0);
			p->pos++;
		}
		skip_ws(p);
		if (peek(p, 0) != '.')
			break;
		if (n + 1 >= KEY_BYTES)
			return fail_at(p, p->pos,
				       "key too long (at most %d "
				       "bytes)",
				       KEY_BYTES - 1);
		out[n++] = '.';
		p->pos++;
		skip_ws(p);
	}
	out[n] = '\0';
	return 0;
}

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static int put_byte(struct parser *p, char *out, size_t *n, int ch)
{
	if (*n + 1 >= STR_BYTES)
		return fail_at(p, p->pos, "string too long (at most %d bytes)",
			       STR_BYTES - 1);
	out[(*n)++] = (char)ch;
	return 0;
}

/* A basic string; p->pos is on the opening quote. */
static int parse_string(struct parser *p, char *out)
{
	if (peek(p, 1) == '"' && peek(p, 2) == '"')
		return fail_at(p, p->pos,
			       "multi-line strings are not supported; "
			       "expected a \"string\" on one line");
	p->pos++;
	size_t n = 0;
	for (;;) {
		int ch = peek(p, 0);
		if (ch == '"') {
			p->pos++;
			break;
		}
		if (at_eol(p))
			return fail_at(p, p->pos,
				       "expected a closing \" before the end "
				       "of the line");
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return fail_at(p, p->pos,
				       "control character 0x%02x in a string; "
				       "expected an escape such as \\n",
				       ch);
		if (ch != '\\') {
			if (put_byte(p, out, &n, ch) != 0)
				return -1;
			p->pos++;
			continue;
		}
		size_t esc = p->pos;
		int e = peek(p, 1);
		p->pos += 2;
		int lit = e == '"'    ? '"'
			  : e == '\\' ? '\\'
			  : e == 'n'  ? '\n'
			  : e == 't'  ? '\t'
				      : 0;
		if (lit) {
			if (put_byte(p, out, &n, lit) != 0)
				return -1;
			continue;
		}
		if (e != 'u')
			return fail_at(p, esc,
				       "unsupported escape; expected \\\", "
				       "\\\\, \\n, \\t or \\uXXXX");
		uint32_t cp = 0;
		for (int i = 0; i < 4; i++) {
			int h = hexval(peek(p, 0));
			if (h < 0)
				return fail_at(p, esc,
					       "expected 4 hex digits after "
					       "\\u");
			cp = cp << 4 | (uint32_t)h;
			p->pos++;
		}
		if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff))
			return fail_at(p, esc,
				       "\\u%04X is not allowed in a string; "
				       "expected a Unicode scalar value other "
				       "than U+0000",
				       cp);
		/* UTF-8 of a code point below U+10000: 1 to 3 bytes. */
		int rc = 0;
		if (cp < 0x80) {
			rc = put_byte(p, out, &n, (int)cp);
		} else if (cp < 0x800) {
			rc = put_byte(p, out, &n, 0xc0 | (int)(cp >> 6));
			rc = rc ? rc : put_byte(p, out, &n, 0x80 | (cp & 0x3f));
		} else {
			rc = put_byte(p, out, &n, 0xe0 | (int)(cp >> 12));
			rc = rc ? rc
				: put_byte(p, out, &n,
					   0x80 | ((cp >> 6) & 0x3f));
			rc = rc ? rc : put_byte(p, out, &n, 0x80 | (cp & 0x3f));
		}
		if (rc)
			return -1;
	}
	out[n] = '\0';
	return 0;
}

/* A decimal integer: optional sign, digits, single _ between digits, no
 * leading zero (TOML's rules). */
static int parse_int(struct parser *p, long long *out)
{
	size_t start = p->pos;
	bool neg = false;
	if (peek(p, 0) == '+' || peek(p, 0) == '-') {
		neg = peek(p, 0) == '-';
		p->pos++;
	}
	if (!(peek(p, 0) >= '0' && peek(p, 0) <= '9'))
		return fail_at(p, start,
			       "expected a string, an integer or true/false");
	if (peek(p, 0) == '0' && (is_bare(peek(p, 1)) || peek(p, 1) == '.'))
		return fail_at(p, start,
			       "expected a decimal integer without leading "
			       "zeros (hex, octal, binary and floats are not "
			       "supported)");
	unsigned long long v = 0;
	for (;;) {
		int ch = peek(p, 0);
		if (ch >= '0' && ch <= '9') {
			if (v > (unsigned long long)LLONG_MAX / 10)
				return fail_at(p, start,
					       "integer out of "
					       "range");
			v = v * 10 + (unsigned long long)(ch - '0');
			if (v > (unsigned long long)LLONG_MAX + neg)
				return fail_at(p, start,
					       "integer out of "
					       "range");
			p->pos++;
		} else if (ch == '_' && peek(p, 1) >= '0' &&
			   peek(p, 1) <= '9') {
			p->pos++;
		} else {
			break;
		}
	}
	int ch = peek(p, 0);
	if (ch == '.' || ch == 'e' || ch == 'E' || ch == '-' || ch == ':' ||
	    is_bare(ch))
		return fail_at(p, start,
			       "expected an integer (floats, dates and "
			       "other values are not supported)");
	*out = neg ? (long long)(0 - v) : (long long)v;
	return 0;
}

/* An array of strings on one line: ["A", "B"] (a trailing comma is
 * allowed, as in TOML); at most CONFIG_MAX_ENV_VALUES, each shorter than
 * CONFIG_ENV_NAME_BYTES. str is scratch space. */
static int parse_string_array(struct parser *p, enum value_kind *kind,
			      char *str)
{
	*kind = V_STRINGS;
	p->narr = 0;
	p->pos++;
	for (;;) {
		skip_ws(p);
		if (peek(p, 0) == ']') {
			p->pos++;
			return 0;
		}
		if (peek(p, 0) != '"')
			return fail_at(p, p->pos,
				       "expected a \"string\" or ] in an array "
				       "on one line (arrays hold strings "
				       "only)");
		size_t at = p->pos;
		if (parse_string(p, str) != 0)
			return -1;
		if (p->narr == CONFIG_MAX_ENV_VALUES)
			return fail_at(p, at, "too many strings (at most %d)",
				       CONFIG_MAX_ENV_VALUES);
		if (strlen(str) >= CONFIG_ENV_NAME_BYTES)
			return fail_at(p, at,
				       "string too long (at most %d bytes)",
				       CONFIG_ENV_NAME_BYTES - 1);
		snprintf(p->arr[p->narr++], CONFIG_ENV_NAME_BYTES, "%s", str);
		skip_ws(p);
		if (peek(p, 0) == ',') {
			p->pos++;
			continue;
		}
		if (peek(p, 0) != ']')
			return fail_at(p, p->pos,
				       "expected , or ] in an array on one "
				       "line");
	}
}

static int parse_value(struct parser *p, enum value_kind *kind, char *str,
		       long long *num)
{
	int ch = peek(p, 0);
	if (ch == '"') {
		*kind = V_STRING;
		return parse_string(p, str);
	}
	if (ch == '+' || ch == '-' || (ch >= '0' && ch <= '9')) {
		*kind = V_INT;
		return parse_int(p, num);
	}
	static const char *const words[] = {"true", "false"};
	for (int i = 0; i < 2; i++) {
		size_t n = strlen(words[i]);
		if (p->len - p->pos >= n &&
		    memcmp(p->text + p->pos, words[i], n) == 0 &&
		    !is_bare(peek(p, n))) {
			*kind = V_BOOL;
			*num = i == 0;
			p->pos += n;
			return 0;
		}
	}
	if (ch == '\'')
		return fail_at(p, p->pos,
			       "literal 'strings' are not supported; expected "
			       "a \"string\", an integer or true/false");
	if (ch == '[')
		return parse_string_array(p, kind, str);
	if (ch == '{')
		return fail_at(p, p->pos,
			       "inline tables are not supported; expected a "
			       "string, an integer, true/false or an array "
			       "of strings");
	return fail_at(p, p->pos,
		       "expected a string, an integer or true/false");
}

static const char *kind_name(enum value_kind k)
{
	return k == V_STRING    ? "a string"
	       : k == V_INT     ? "an integer"
	       : k == V_STRINGS ? "an array"
				: "a boolean";
}

/* The openlineage.* keys: 0 when applied, -1 after saying what is wrong,
 * 1 for a key this weft does not know. */
static int config_openlineage(struct parser *p, const char *key,
			      enum value_kind kind, const char *str,
			      size_t vpos)
{
	weft_config *c = p->cfg;
	const char *k = key + 12;
	bool url = !strcmp(k, "url"), ns = !strcmp(k, "namespace");
	char *dst = url                          ? c->ol_url
		    : !strcmp(k, "api_key_file") ? c->ol_api_key_file
		    : !strcmp(k, "file")         ? c->ol_file
		    : ns                         ? c->ol_namespace
						 : NULL;
	if (!dst)
		return 1;
	size_t dstsz = ns ? sizeof(c->ol_namespace) : sizeof(c->ol_url);
	const char *want = url  ? "an http:// or https:// URL"
			   : ns ? "1 to 255 printable ASCII characters "
				  "without spaces"
				: "an absolute path";
	bool ok = kind == V_STRING && strlen(str) < dstsz;
	if (ok && url)
		ok = !strncmp(str, "http://", 7) ||
		     !strncmp(str, "https://", 8);
	else if (ok && ns)
		ok = weft_ol_namespace_check(str) == WEFT_OK;
	else if (ok)
		ok = str[0] == '/';
	for (const char *q = str; ok && url && *q; q++)
		ok = *q > 0x20 && *q < 0x7f;
	if (!ok)
		return fail_at(p, vpos, "%s: expected %s of at most %zu bytes",
			       key, want, dstsz - 1);
	snprintf(dst, dstsz, "%s", str);
	return 0;
}

/* Check and apply one setting; vpos is where its value starts. */
static int apply(struct parser *p, const char *key, enum value_kind kind,
		 const char *str, long long num, size_t vpos)
{
	weft_config *c = p->cfg;
	int olrc;
	if (strcmp(key, "tracer.mode") == 0) {
		char modes[256];
		config_modes(modes, sizeof(modes));
		if (kind != V_STRING)
			return fail_at(p, vpos,
				       "tracer.mode: expected a string (one "
				       "of %s), found %s",
				       modes, kind_name(kind));
		if (!config_mode_valid(str))
			return fail_at(p, vpos,
				       "tracer.mode: unknown tracer \"%s\"; "
				       "expected one of %s",
				       str, modes);
		snprintf(c->mode, sizeof(c->mode), "%s", str);
		c->mode_from = p->src;
		p->lay.has_mode = true;
		p->lay.mode_start = vpos;
		p->lay.mode_end = p->pos;
	} else if (strcmp(key, "tracer.fallback_enabled") == 0) {
		if (kind != V_BOOL)
			return fail_at(p, vpos,
				       "tracer.fallback_enabled: expected true "
				       "or false, found %s",
				       kind_name(kind));
		c->fallback_enabled = num != 0;
		c->fallback_from = p->src;
	} else if (strcmp(key, "tracer.preflight_timeout_ms") == 0) {
		if (kind != V_INT)
			return fail_at(p, vpos,
				       "tracer.preflight_timeout_ms: expected "
				       "an integer, found %s",
				       kind_name(kind));
		if (num < CONFIG_TIMEOUT_MIN_MS || num > CONFIG_TIMEOUT_MAX_MS)
			return fail_at(p, vpos,
				       "tracer.preflight_timeout_ms: %lld is "
				       "out of range; expected an integer "
				       "from %d to %d",
				       num, CONFIG_TIMEOUT_MIN_MS,
				       CONFIG_TIMEOUT_MAX_MS);
		c->preflight_timeout_ms = (int)num;
		c->timeout_from = p->src;
	} else if (strcmp(key, "ebpf.ringbuf_bytes") == 0) {
		if (kind != V_INT || num < 4096 || num > (1ll << 30) ||
		    (num & (num - 1)) != 0)
			return fail_at(p, vpos,
				       "ebpf.ringbuf_bytes: expected a power "
				       "of two from 4096 to 1073741824");
		c->ebpf_ringbuf_bytes = num;
	} else if (strcmp(key, "ebpf.agent_idle_timeout_ms") == 0) {
		if (kind != V_INT || num < 0 || num > (1ll << 31) - 1)
			return fail_at(p, vpos,
				       "ebpf.agent_idle_timeout_ms: expected "
				       "an integer from 0 (never) to "
				       "2147483647");
		c->agent_idle_timeout_ms = num;
		c->agent_idle_set = true;
	} else if (strcmp(key, "coordinator.max_connections") == 0 ||
		   strcmp(key, "coordinator.idle_timeout_ms") == 0) {
		bool conns = key[12] == 'm';
		long long max = conns ? CONFIG_COORD_MAX_CONNECTIONS
				      : CONFIG_COORD_MAX_IDLE_MS;
		if (kind != V_INT || num < 1 || num > max)
			return fail_at(p, vpos,
				       "%s: expected an integer from 1 to %lld",
				       key, max);
		*(conns ? &c->coord_max_connections
			: &c->coord_idle_timeout_ms) = (int)num;
	} else if (strcmp(key, "ray.weft_binary") == 0 ||
		   strcmp(key, "ray.python_path") == 0) {
		bool bin = key[4] == 'w';
		char *dst = bin ? c->ray_weft_binary : c->ray_python_path;
		size_t dstsz = bin ? sizeof(c->ray_weft_binary)
				   : sizeof(c->ray_python_path);
		if (kind != V_STRING || !str[0] || strlen(str) >= dstsz)
			return fail_at(p, vpos,
				       "%s: expected a non-empty string of at "
				       "most %zu bytes, found %s",
				       key, dstsz - 1,
				       kind == V_STRING ? "another string"
							: kind_name(kind));
		snprintf(dst, dstsz, "%s", str);
	} else if (strcmp(key, "coordinator.submit_key_file") == 0) {
		if (kind != V_STRING || str[0] != '/' ||
		    strlen(str) >= sizeof(c->coord_submit_key_file))
			return fail_at(p, vpos,
				       "%s: expected an absolute path of at "
				       "most %zu bytes",
				       key,
				       sizeof(c->coord_submit_key_file) - 1);
		snprintf(c->coord_submit_key_file,
			 sizeof(c->coord_submit_key_file), "%s", str);
	} else if (strncmp(key, "openlineage.", 12) == 0 &&
		   (olrc = config_openlineage(p, key, kind, str, vpos)) != 1) {
		return olrc;
	} else if (strcmp(key, "ray.actor_granularity") == 0) {
		if (kind != V_STRING ||
		    (strcmp(str, "call") != 0 && strcmp(str, "actor") != 0))
			return fail_at(p, vpos,
				       "ray.actor_granularity: expected "
				       "\"call\" or \"actor\", found %s",
				       kind == V_STRING ? "another string"
							: kind_name(kind));
		snprintf(c->ray_actor_granularity,
			 sizeof(c->ray_actor_granularity), "%s", str);
	} else if (strcmp(key, "record.env_values") == 0) {
		if (kind != V_STRINGS)
			return fail_at(p, vpos,
				       "record.env_values: expected an array "
				       "of variable names, found %s",
				       kind_name(kind));
		for (size_t i = 0; i < p->narr; i++)
			if (!p->arr[i][0] || strchr(p->arr[i], '='))
				return fail_at(p, vpos,
					       "record.env_values: \"%s\" is "
					       "not a variable name (expected "
					       "a non-empty name without '=')",
					       p->arr[i]);
		/* The file that sets it last (the project's) decides the
		 * whole list. */
		memcpy(c->env_values, p->arr, sizeof(p->arr));
		c->nenv_values = p->narr;
	} else {
		/* A newer weft's key, or a typo: either way not fatal, but
		 * said, so a typo does not silently keep the default. */
		fprintf(p->err,
			"weft: warning: %s:%d: unknown key '%s' "
			"(ignored)\n",
			p->name, p->line, key);
	}
	return 0;
}

static int table_header(struct parser *p)
{
	size_t start = p->pos;
	if (!p->lay.has_tracer_table && p->ntables == 0)
		p->lay.first_table = p->line_start;
	if (peek(p, 1) == '[')
		return fail_at(p, start,
			       "arrays of tables ([[...]]) are not supported; "
			       "expected [table]");
	p->pos++;
	skip_ws(p);
	char name[KEY_BYTES];
	if (parse_key(p, name) != 0)
		return -1;
	if (peek(p, 0) != ']')
		return fail_at(p, p->pos,
			       "expected ] to close the table "
			       "header");
	p->pos++;
	for (size_t i = 0; i < p->ntables; i++)
		if (strcmp(p->tables[i].key, name) == 0)
			return fail_at(p, start,
				       "table [%s] is already defined at line "
				       "%d; expected each table once",
				       name, p->tables[i].line);
	if (p->ntables >= MAX_TABLES)
		return fail_at(p, start, "too many tables (at most %d)",
			       MAX_TABLES);
	snprintf(p->tables[p->ntables].key, KEY_BYTES, "%s", name);
	p->tables[p->ntables++].line = p->line;
	snprintf(p->table, sizeof(p->table), "%s", name);
	if (end_line(p) != 0)
		return -1;
	if (strcmp(name, "tracer") == 0) {
		p->lay.has_tracer_table = true;
		p->lay.tracer_body = p->pos;
	}
	return 0;
}

static int assignment(struct parser *p)
{
	size_t kpos = p->pos;
	char key[KEY_BYTES], full[2 * KEY_BYTES + 1];
	if (parse_key(p, key) != 0)
		return -1;
	if (peek(p, 0) != '=')
		return fail_at(p, p->pos, "expected = after the key '%s'", key);
	p->pos++;
	skip_ws(p);
	snprintf(full, sizeof(full), "%s%s%s", p->table, p->table[0] ? "." : "",
		 key);
	for (size_t i = 0; i < p->nkeys; i++)
		if (strcmp(p->keys[i].key, full) == 0)
			return fail_at(p, kpos,
				       "key '%s' is already set at line %d; "
				       "expected each key once",
				       full, p->keys[i].line);
	if (p->nkeys >= MAX_KEYS || strlen(full) >= KEY_BYTES)
		return fail_at(p, kpos, "too many or too long keys");
	memcpy(p->keys[p->nkeys].key, full, strlen(full) + 1); /* fits */
	p->keys[p->nkeys++].line = p->line;

	size_t vpos = p->pos;
	enum value_kind kind = V_STRING;
	char str[STR_BYTES] = "";
	long long num = 0;
	if (parse_value(p, &kind, str, &num) != 0)
		return -1;
	if (apply(p, full, kind, str, num, vpos) != 0)
		return -1;
	return end_line(p);
}

static int parse(struct parser *p)
{
	p->line = 1;
	p->lay.first_table = p->len;
	if (memchr(p->text, '\0', p->len)) {
		size_t nul =
			(size_t)((const char *)memchr(p->text, '\0', p->len) -
				 p->text);
		/* Find the line of the NUL for the message. */
		for (size_t i = 0; i < nul; i++)
			if (p->text[i] == '\n') {
				p->line++;
				p->line_start = i + 1;
			}
		return fail_at(p, nul, "NUL byte; expected a text file");
	}
	while (p->pos < p->len) {
		skip_ws(p);
		int ch = peek(p, 0);
		int rc;
		if (at_eol(p) || ch == '#')
			rc = end_line(p);
		else if (ch == '[')
			rc = table_header(p);
		else
			rc = assignment(p);
		if (rc != 0)
			return -1;
	}
	return 0;
}

static int parse_with_layout(weft_config *c, enum config_source src,
			     const char *name, const char *text, size_t len,
			     FILE *err, struct layout *lay)
{
	struct parser *p = calloc(1, sizeof(*p));
	if (!p) {
		fprintf(err, "weft: out of memory reading %s\n", name);
		return -1;
	}
	p->name = name;
	p->text = text;
	p->len = len;
	p->err = err;
	p->cfg = c;
	p->src = src;
	int rc = parse(p);
	if (lay)
		*lay = p->lay;
	free(p);
	return rc;
}

int config_parse(weft_config *c, enum config_source src, const char *name,
		 const char *text, size_t len, FILE *err)
{
	return parse_with_layout(c, src, name, text, len, err, NULL);
}

/* Read the whole file into *out (NUL terminated, owned by the caller).
 * Returns 0, 1 when it does not exist, -1 after printing the error. */
static int read_file(const char *path, char **out, size_t *len, FILE *err)
{
	*out = NULL;
	*len = 0;
	FILE *f = fopen(path, "rb");
	if (!f) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 1;
		fprintf(err, "weft: cannot read %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	char *buf = malloc(MAX_FILE_BYTES + 1);
	if (!buf) {
		fclose(f);
		fprintf(err, "weft: out of memory reading %s\n", path);
		return -1;
	}
	size_t n = fread(buf, 1, MAX_FILE_BYTES + 1, f);
	int rd_err = ferror(f);
	fclose(f);
	if (rd_err || n > MAX_FILE_BYTES) {
		fprintf(err, "weft: cannot read %s: %s\n", path,
			rd_err ? "read error" : "larger than 1 MiB");
		free(buf);
		return -1;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

int config_load_file(weft_config *c, enum config_source src, const char *path,
		     FILE *err)
{
	char *text;
	size_t len;
	int rc = read_file(path, &text, &len, err);
	if (rc != 0)
		return rc > 0 ? 0 : -1;
	rc = config_parse(c, src, path, text, len, err);
	free(text);
	return rc;
}

/* One layer's file: its path kept in kept (for `weft tracer show`), its
 * settings over c's. An unset or empty path is no layer. */
static int resolve_file(weft_config *c, enum config_source src,
			char kept[CONFIG_PATH_BYTES], const char *path,
			FILE *err)
{
	if (!path || !*path)
		return 0;
	snprintf(kept, CONFIG_PATH_BYTES, "%s", path);
	return config_load_file(c, src, path, err);
}

/* The tracer named by the environment or the flag (what: how the message
 * names it, up to the value), over the files'. */
static int resolve_mode(weft_config *c, enum config_source from,
			const char *what, const char *mode, FILE *err)
{
	if (!config_mode_valid(mode)) {
		char modes[256];
		config_modes(modes, sizeof(modes));
		fprintf(err,
			"weft: %s\"%s\": unknown tracer; expected one of %s\n",
			what, mode, modes);
		return -1;
	}
	snprintf(c->mode, sizeof(c->mode), "%s", mode);
	c->mode_from = from;
	return 0;
}

int config_resolve(weft_config *c, const char *user_file,
		   const char *project_file, const char *env_tracer,
		   const char *flag_mode, bool no_fallback, FILE *err)
{
	config_defaults(c);
	if (resolve_file(c, CONFIG_USER_FILE, c->user_file, user_file,
			 err) != 0 ||
	    resolve_file(c, CONFIG_PROJECT_FILE, c->project_file,
			 project_file, err) != 0)
		return -1;
	/* Empty counts as unset, as shells make `WEFT_TRACER= cmd` easy. */
	if (env_tracer && *env_tracer &&
	    resolve_mode(c, CONFIG_ENV, "environment variable WEFT_TRACER=",
			 env_tracer, err) != 0)
		return -1;
	if (flag_mode &&
	    resolve_mode(c, CONFIG_FLAG, "--tracer ", flag_mode, err) != 0)
		return -1;
	if (no_fallback) {
		c->fallback_enabled = false;
		c->fallback_from = CONFIG_FLAG;
	}
	return 0;
}

void config_paths(char user[CONFIG_PATH_BYTES], char project[CONFIG_PATH_BYTES])
{
	user[0] = project[0] = '\0';
	const char *home = getenv("HOME");
	if (home && home[0] == '/')
		snprintf(user, CONFIG_PATH_BYTES,
			 "%s%s" WEFT_DIR_NAME "/config.toml", home,
			 strcmp(home, "/") == 0 ? "" : "/");
	char cwd[WEFT_MAX_PATH_BYTES + 1], dir[WEFT_MAX_PATH_BYTES + 16];
	if (!getcwd(cwd, sizeof(cwd)) ||
	    weft_store_find_dir(cwd, dir, sizeof(dir)) != WEFT_OK)
		return;
	snprintf(project, CONFIG_PATH_BYTES, "%s/config.toml", dir);
	/* Inside $HOME without a project of its own, the nearest .weft is
	 * the user's: read it once, as the user file. */
	if (strcmp(project, user) == 0)
		project[0] = '\0';
}

int config_load(weft_config *c, const char *flag_mode, bool no_fallback,
		FILE *err)
{
	char user[CONFIG_PATH_BYTES], project[CONFIG_PATH_BYTES];
	config_paths(user, project);
	int rc = config_resolve(c, user, project, getenv("WEFT_TRACER"),
				flag_mode, no_fallback, err);
	/* The eBPF backend and the agent it starts read these. */
	char v[32];
	if (rc == 0 && c->ebpf_ringbuf_bytes) {
		snprintf(v, sizeof(v), "%lld", c->ebpf_ringbuf_bytes);
		setenv("WEFT_EBPF_RINGBUF_BYTES", v, 0);
	}
	if (rc == 0 && c->agent_idle_set) {
		snprintf(v, sizeof(v), "%lld", c->agent_idle_timeout_ms);
		setenv("WEFT_AGENT_IDLE_MS", v, 0);
	}
	return rc;
}

/* ---- `weft tracer use` ---- */

static int write_all(FILE *f, const char *s, size_t n)
{
	return n && fwrite(s, 1, n, f) != n ? -1 : 0;
}

int config_write_mode(const char *path, const char *mode, FILE *err)
{
	char modes[256];
	config_modes(modes, sizeof(modes));
	if (!config_mode_valid(mode)) {
		fprintf(err,
			"weft: unknown tracer \"%s\"; expected one of %s\n",
			mode, modes);
		return -1;
	}
	char *text;
	size_t len;
	int rc = read_file(path, &text, &len, err);
	if (rc < 0)
		return -1;
	if (rc > 0) {
		/* No file yet: its directory may be missing too (~/.weft). */
		char dir[CONFIG_PATH_BYTES];
		snprintf(dir, sizeof(dir), "%s", path);
		char *slash = strrchr(dir, '/');
		if (slash && slash != dir) {
			*slash = '\0';
			if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
				fprintf(err, "weft: cannot create %s: %s\n",
					dir, strerror(errno));
				return -1;
			}
		}
	}
	struct layout lay;
	weft_config scratch;
	config_defaults(&scratch);
	if (parse_with_layout(&scratch, CONFIG_DEFAULT, path, text ? text : "",
			      len, err, &lay) != 0) {
		fprintf(err, "weft: %s left unchanged; fix it first\n", path);
		free(text);
		return -1;
	}

	char tmp[CONFIG_PATH_BYTES + 16];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f) {
		fprintf(err, "weft: cannot write %s: %s\n", tmp,
			strerror(errno));
		free(text);
		return -1;
	}
	const char *t = text ? text : "";
	char quoted[WEFT_MAX_NAME_BYTES + 2];
	snprintf(quoted, sizeof(quoted), "\"%s\"", mode);
	char line[WEFT_MAX_NAME_BYTES + 32];
	int w = 0;
	if (lay.has_mode) {
		/* Only the value changes: the key's spelling, blanks and a
		 * trailing comment stay. */
		w |= write_all(f, t, lay.mode_start);
		w |= write_all(f, quoted, strlen(quoted));
		w |= write_all(f, t + lay.mode_end, len - lay.mode_end);
	} else {
		size_t at;
		if (lay.has_tracer_table) {
			at = lay.tracer_body;
			snprintf(line, sizeof(line), "mode = %s\n", quoted);
		} else {
			/* Before the first table, a dotted key is at the
			 * root, where tracer.mode means what it says. */
			at = lay.first_table;
			snprintf(line, sizeof(line), "tracer.mode = %s\n",
				 quoted);
		}
		w |= write_all(f, t, at);
		/* A last line without its newline: end it first. */
		if (at > 0 && t[at - 1] != '\n')
			w |= write_all(f, "\n", 1);
		w |= write_all(f, line, strlen(line));
		w |= write_all(f, t + at, len - at);
	}
	free(text);
	if (fclose(f) != 0 || w != 0) {
		fprintf(err, "weft: cannot write %s: %s\n", tmp,
			strerror(errno));
		unlink(tmp);
		return -1;
	}
	/* rename: a crash never leaves a half-written config. */
	if (rename(tmp, path) != 0) {
		fprintf(err, "weft: cannot replace %s: %s\n", path,
			strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}
