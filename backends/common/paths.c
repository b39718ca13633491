/*
 * paths.c - lexical path normalization and the classifier's interned path
 * table.
 *
 * Every path a run names is normalized once and interned: the table maps
 * the bytes to a small id, and the per-path state (read, written, ...) lives
 * in the entry, so an event costs one normalization and one hash probe and
 * open files carry a 4-byte id instead of a string. Ancestors are interned
 * too; that makes "is this path ignored" an O(1) inheritance from the parent
 * and lets a rename tell a directory (it has children) from a file.
 *
 * Paths are byte strings: any byte but NUL, no UTF-8 assumption.
 */
#include <stdlib.h>
#include <string.h>

#include "classifier_internal.h"

/* Strings live in blocks that are freed together, so interning a path is
 * one bump of a pointer rather than one malloc. */
struct arena_block {
	struct arena_block *next;
	size_t used, cap;
	char data[];
};

#define ARENA_BLOCK_BYTES (64 * 1024)

static char *arena_copy(struct path_table *t, const char *s, size_t len)
{
	struct arena_block *b = t->arena;
	if (!b || b->cap - b->used < len + 1) {
		size_t cap = len + 1 > ARENA_BLOCK_BYTES ? len + 1
							 : ARENA_BLOCK_BYTES;
		b = malloc(sizeof(*b) + cap);
		if (!b)
			return NULL;
		b->used = 0;
		b->cap = cap;
		b->next = t->arena;
		t->arena = b;
	}
	char *p = b->data + b->used;
	memcpy(p, s, len);
	p[len] = '\0';
	b->used += len + 1;
	return p;
}

/* ---- Normalization ----
 *
 * Components are walked from the right: a ".." cancels the next name to its
 * left, which is exactly the textual left-to-right rule, and ".." left over
 * at the start falls off at "/". Walking twice (measure, then write from
 * the end) needs no scratch buffer, and an intermediate result longer than
 * the output can not make a short final result fail. */

struct norm_state {
	size_t skip;  /* ".." still to cancel a name to the left */
	size_t total; /* bytes of the result so far: "/" + name each */
	char *out;    /* second walk only: written right to left from pos */
	size_t pos;
};

static void norm_walk(struct norm_state *st, const char *s, size_t len)
{
	size_t end = len;
	while (end > 0) {
		while (end > 0 && s[end - 1] == '/')
			end--;
		size_t start = end;
		while (start > 0 && s[start - 1] != '/')
			start--;
		size_t n = end - start;
		const char *comp = s + start;
		end = start;
		if (n == 0 || (n == 1 && comp[0] == '.'))
			continue;
		if (n == 2 && comp[0] == '.' && comp[1] == '.') {
			st->skip++;
			continue;
		}
		if (st->skip) {
			st->skip--;
			continue;
		}
		st->total += n + 1;
		if (st->out) {
			st->pos -= n;
			memcpy(st->out + st->pos, comp, n);
			st->out[--st->pos] = '/';
		}
	}
}

/* Already normalized: no empty, "." or ".." component, no trailing "/"
 * (an absolute s may be just "/"). Most paths programs pass are, and
 * checking with memchr is several times cheaper than rebuilding them. */
static bool path_is_clean(const char *s, size_t len)
{
	size_t i = s[0] == '/' ? 1 : 0;
	if (len == i)
		return len == 1;
	if (s[len - 1] == '/')
		return false;
	for (;;) {
		if (s[i] == '/')
			return false;
		if (s[i] == '.' &&
		    (i + 1 == len || s[i + 1] == '/' ||
		     (s[i + 1] == '.' && (i + 2 == len || s[i + 2] == '/'))))
			return false;
		const char *slash = memchr(s + i, '/', len - i);
		if (!slash)
			return true;
		i = (size_t)(slash - s) + 1;
	}
}

int path_normalize_len(const char *base, size_t blen, const char *path,
		       size_t plen, char *out, size_t outsz, uint32_t *len)
{
	bool rel = plen == 0 || path[0] != '/';
	if (rel && (!base || blen == 0 || base[0] != '/'))
		return WEFT_EINVAL;
	if (plen && path_is_clean(path, plen) &&
	    (!rel || path_is_clean(base, blen))) {
		/* Fast path: the result is path, or base "/" path. */
		size_t pre = !rel ? 0 : blen == 1 ? 1 : blen + 1;
		size_t total = pre + plen;
		if (total > WEFT_MAX_PATH_BYTES || total >= outsz)
			return WEFT_ETOOBIG;
		if (rel) {
			memcpy(out, base, blen);
			out[pre - 1] = '/';
		}
		memcpy(out + pre, path, plen);
		out[total] = '\0';
		*len = (uint32_t)total;
		return WEFT_OK;
	}
	struct norm_state st = {0};
	norm_walk(&st, path, plen);
	if (rel)
		norm_walk(&st, base, blen);
	size_t total = st.total ? st.total : 1;
	if (total > WEFT_MAX_PATH_BYTES || total >= outsz)
		return WEFT_ETOOBIG;
	out[total] = '\0';
	if (st.total == 0) {
		out[0] = '/';
	} else {
		struct norm_state w = {.out = out, .pos = total};
		norm_walk(&w, path, plen);
		if (rel)
			norm_walk(&w, base, blen);
	}
	*len = (uint32_t)total;
	return WEFT_OK;
}

int weft_path_normalize(const char *base, const char *path, char *out,
			size_t outsz)
{
	if (!path || !out)
		return WEFT_EINVAL;
	uint32_t len;
	return path_normalize_len(base, base ? strlen(base) : 0, path,
				  strlen(path), out, outsz, &len);
}

/* ---- The table ---- */

static uint32_t path_hash(const char *s, size_t len)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ len;
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, s, 8);
		h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
		h ^= h >> 31;
		s += 8;
		len -= 8;
	}
	uint64_t w = 0;
	memcpy(&w, s, len);
	h = (h ^ w) * 0x94d049bb133111ebull;
	h ^= h >> 29;
	return (uint32_t)(h ^ (h >> 32));
}

static path_id path_find(const struct path_table *t, const char *s,
			 uint32_t len, uint32_t h)
{
	uint32_t mask = t->nslots - 1;
	for (uint32_t i = h & mask;; i = (i + 1) & mask) {
		uint32_t v = t->slots[i];
		if (!v)
			return PATH_NONE;
		const struct path_ent *e = &t->ents[v - 1];
		if (e->hash == h && e->len == len && memcmp(e->s, s, len) == 0)
			return v - 1;
	}
}

static int path_rehash(struct path_table *t, uint32_t nslots)
{
	uint32_t *slots = calloc(nslots, sizeof(*slots));
	if (!slots)
		return WEFT_ENOMEM;
	uint32_t mask = nslots - 1;
	for (uint32_t id = 0; id < t->n; id++) {
		uint32_t i = t->ents[id].hash & mask;
		while (slots[i])
			i = (i + 1) & mask;
		slots[i] = id + 1;
	}
	free(t->slots);
	t->slots = slots;
	t->nslots = nslots;
	return WEFT_OK;
}

/* Insert a path known to be absent whose parent is interned. */
int table_grow(void **arr, uint32_t *cap, uint32_t n, uint32_t first, size_t sz)
{
	if (n < *cap)
		return WEFT_OK;
	uint32_t ncap = *cap ? *cap * 2 : first;
	void *p = realloc(*arr, ncap * sz);
	if (!p)
		return WEFT_ENOMEM;
	*arr = p;
	*cap = ncap;
	return WEFT_OK;
}

static int path_insert(struct path_table *t, const char *s, uint32_t len,
		       uint32_t h, path_id parent, path_id *id)
{
	if (t->n == UINT32_MAX - 1)
		return WEFT_ENOMEM;
	if ((uint64_t)(t->n + 1) * 2 > t->nslots) {
		int err = path_rehash(t, t->nslots * 2);
		if (err)
			return err;
	}
	if (table_grow((void **)&t->ents, &t->cap, t->n, 1024,
		       sizeof(*t->ents)) != WEFT_OK)
		return WEFT_ENOMEM;
	const char *copy = arena_copy(t, s, len);
	if (!copy)
		return WEFT_ENOMEM;
	path_id nid = t->n++;
	struct path_ent *e = &t->ents[nid];
	memset(e, 0, sizeof(*e));
	e->s = copy;
	e->len = len;
	e->hash = h;
	e->parent = parent;
	e->renamed_to = PATH_NONE;
	e->touches = TOUCH_NONE;
	e->writer = SRC_BEFORE;
	if (parent != PATH_NONE) {
		e->flags = t->ents[parent].flags & PATH_IGNORED;
		t->ents[parent].flags |= PATH_HASCHILD;
	}
	uint32_t mask = t->nslots - 1;
	uint32_t i = h & mask;
	while (t->slots[i])
		i = (i + 1) & mask;
	t->slots[i] = nid + 1;
	*id = nid;
	return WEFT_OK;
}

/* Length of the parent of s[0..len), an absolute path other than "/". */
static uint32_t parent_len(const char *s, uint32_t len)
{
	while (len > 0 && s[len - 1] != '/')
		len--;
	return len > 1 ? len - 1 : 1;
}

int path_intern(struct path_table *t, const char *s, uint32_t len, path_id *id)
{
	uint32_t h = path_hash(s, len);
	path_id found = path_find(t, s, len, h);
	if (found != PATH_NONE) {
		*id = found;
		return WEFT_OK;
	}
	/* New path: find the deepest ancestor already known ("/" always
	 * is), then insert each missing level below it, so no recursion
	 * however deep the path. */
	uint32_t alen = len;
	path_id parent = PATH_NONE;
	while (alen > 1) {
		alen = parent_len(s, alen);
		parent = path_find(t, s, alen, path_hash(s, alen));
		if (parent != PATH_NONE)
			break;
	}
	uint32_t pos = alen;
	for (;;) {
		uint32_t start = pos == 1 ? 1 : pos + 1;
		uint32_t end = start;
		while (end < len && s[end] != '/')
			end++;
		uint32_t eh = end == len ? h : path_hash(s, end);
		int err = path_insert(t, s, end, eh, parent, &parent);
		if (err)
			return err;
		if (end == len)
			break;
		pos = end;
	}
	*id = parent;
	return WEFT_OK;
}

void path_set_ignored(struct path_table *t, path_id id, bool ignored)
{
	struct path_ent *root = &t->ents[id];
	/* Usually called before any event, when this loop is short; paths
	 * interned later inherit the bit from their parent. */
	for (path_id i = 0; i < t->n; i++) {
		struct path_ent *e = &t->ents[i];
		if (i == id || (e->len > root->len &&
				memcmp(e->s, root->s, root->len) == 0 &&
				(root->len == 1 || e->s[root->len] == '/'))) {
			if (ignored)
				e->flags |= PATH_IGNORED;
			else
				e->flags &= ~PATH_IGNORED;
		}
	}
}

int path_table_init(struct path_table *t)
{
	memset(t, 0, sizeof(*t));
	t->nslots = 2048;
	t->slots = calloc(t->nslots, sizeof(*t->slots));
	if (!t->slots)
		return WEFT_ENOMEM;
	path_id root;
	/* "/" is the one path without a parent; path_intern relies on it
	 * being present. */
	return path_insert(t, "/", 1, path_hash("/", 1), PATH_NONE, &root);
}

void path_table_free(struct path_table *t)
{
	struct arena_block *b = t->arena;
	while (b) {
		struct arena_block *next = b->next;
		free(b);
		b = next;
	}
	free(t->ents);
	free(t->slots);
	memset(t, 0, sizeof(*t));
}
