/*
 * location.c - where a file lives, named so that every node of a job names
 * it alike (DESIGN.md "Store and DAG: lineage by file version").
 *
 * A path alone is no location: /tmp/x on two machines are two files, and
 * one NFS export mounted at /mnt/a on one node and /shared on another is
 * one. So a file record's location is its filesystem and its path below
 * that filesystem's root:
 *   - on a filesystem that several machines mount (NFS, Lustre, GPFS,
 *     BeeGFS, CephFS, ...): "<fstype> <mount source>";
 *   - on any other: "local <boot id> <major>:<minor>": the running kernel
 *     and the device, not the host name, because containers and
 *     namespaces on one machine share its local filesystems while a
 *     private tmpfs is a device of its own.
 * The path below the root is the mount's root (a bind mount of a
 * subdirectory) joined with the path below the mount point, so two mounts
 * of one filesystem give one location.
 *
 * The mount table is the one this process sees (/proc/self/mountinfo): a
 * wrapper runs in its workload's mount namespace, as its parent. It is
 * read once per run and again when a file's device is not in it (a mount
 * made during the run).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "store_internal.h"

/* Filesystem types whose files other machines see under the same source.
 * fuse.* types are matched by their subtype. */
static const char *const shared_fstypes[] = {
	"nfs",    "nfs4",      "lustre",   "gpfs",  "beegfs", "ceph",
	"cephfs", "glusterfs", "cifs",     "smb3",  "afs",    "ocfs2",
	"gfs2",   "panfs",     "orangefs", "pvfs2", "sshfs",  "wekafs",
};

bool store_fstype_shared(const char *fstype)
{
	if (!strncmp(fstype, "fuse.", 5))
		fstype += 5;
	for (size_t i = 0; i < sizeof(shared_fstypes) / sizeof(*shared_fstypes);
	     i++)
		if (!strcmp(fstype, shared_fstypes[i]))
			return true;
	return false;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *o = s;
	for (char *p = s; *p;) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' &&
		    p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
			*o++ = (char)((p[1] - '0') << 6 | (p[2] - '0') << 3 |
				      (p[3] - '0'));
			p += 4;
		} else {
			*o++ = *p++;
		}
	}
	*o = '\0';
}

void store_mounts_free(struct store_mounts *m)
{
	static const size_t mount_strings[] = {
		offsetof(struct store_mount, point),
		offsetof(struct store_mount, root),
		offsetof(struct store_mount, fstype),
		offsetof(struct store_mount, source), STORE_MEMBERS_END};
	store_free_members(m->ents, m->n, sizeof(*m->ents), mount_strings);
	m->ents = NULL;
	m->n = 0;
}

/* One mountinfo line: "id parent maj:min root point opts [tags] - type
 * source superopts". */
static int parse_line(char *line, struct store_mount *out)
{
	char *f[5];
	char *save = NULL, *tok = strtok_r(line, " ", &save);
	unsigned major, minor;
	for (int i = 0; i < 5; i++) {
		if (!tok)
			return WEFT_EINVAL;
		f[i] = tok;
		tok = strtok_r(NULL, " ", &save);
	}
	while (tok && strcmp(tok, "-") != 0)
		tok = strtok_r(NULL, " ", &save); /* optional tags */
	char *type = tok ? strtok_r(NULL, " ", &save) : NULL;
	char *source = type ? strtok_r(NULL, " ", &save) : NULL;
	if (!source || sscanf(f[2], "%u:%u", &major, &minor) != 2)
		return WEFT_EINVAL;
	unescape(f[3]);
	unescape(f[4]);
	unescape(source);
	out->dev = makedev(major, minor);
	out->root = strdup(f[3]);
	out->point = strdup(f[4]);
	out->fstype = strdup(type);
	out->source = strdup(source);
	if (!out->root || !out->point || !out->fstype || !out->source) {
		free(out->root);
		free(out->point);
		free(out->fstype);
		free(out->source);
		return WEFT_ENOMEM;
	}
	return WEFT_OK;
}

int store_mounts_parse(const char *text, struct store_mounts *m)
{
	store_mounts_free(m);
	size_t cap = 0;
	int err = WEFT_OK;
	for (const char *p = text; *p && !err;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char *line = strndup(p, len);
		p += len + (nl != NULL);
		if (!line)
			return WEFT_ENOMEM;
		struct store_mount e;
		int rc = parse_line(line, &e);
		free(line);
		if (rc == WEFT_EINVAL)
			continue; /* a line we cannot read names no file */
		if (rc)
			err = rc;
		else if ((err = store_grow((void **)&m->ents, &cap, m->n,
					   sizeof(*m->ents))) == WEFT_OK)
			m->ents[m->n++] = e;
	}
	return err;
}

/* The whole of a small /proc file, NUL-terminated. */
static char *read_text(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	size_t cap = 16384, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		n += fread(buf + n, 1, cap - n - 1, f);
		if (n < cap - 1)
			break;
		char *b = realloc(buf, cap * 2);
		if (!b) {
			free(buf);
			buf = NULL;
			break;
		}
		buf = b;
		cap *= 2;
	}
	if (buf)
		buf[n] = '\0';
	fclose(f);
	return buf;
}

int store_mounts_load(struct store_mounts *m)
{
	if (!m->boot_id[0]) {
		char *b = read_text("/proc/sys/kernel/random/boot_id");
		if (b) {
			size_t n = strcspn(b, "\n");
			if (n >= sizeof(m->boot_id))
				n = sizeof(m->boot_id) - 1;
			memcpy(m->boot_id, b, n);
			m->boot_id[n] = '\0';
			free(b);
		}
		if (!m->boot_id[0])
			snprintf(m->boot_id, sizeof(m->boot_id), "unknown");
	}
	char *text = read_text("/proc/self/mountinfo");
	if (!text)
		return WEFT_EIO;
	int err = store_mounts_parse(text, m);
	free(text);
	m->loaded = true;
	return err;
}

/* Whether point is path or one of its ancestors. */
static size_t prefix_len(const char *point, const char *path)
{
	size_t n = strlen(point);
	if (n == 1 && point[0] == '/')
		return 1;
	if (strncmp(point, path, n) != 0 || (path[n] && path[n] != '/'))
		return 0;
	return n;
}

/* The mount a path is on: the deepest mount point above it, among the
 * mounts of its device when the device is known (and has one). */
static const struct store_mount *mount_of(const struct store_mounts *m,
					  const char *path, bool has_dev,
					  uint64_t dev)
{
	const struct store_mount *best = NULL, *any_dev = NULL;
	size_t best_len = 0;
	for (size_t i = 0; i < m->n; i++) {
		const struct store_mount *e = &m->ents[i];
		if (has_dev && e->dev != dev)
			continue;
		if (!any_dev)
			any_dev = e;
		size_t n = prefix_len(e->point, path);
		if (n && n >= best_len) { /* later mounts hide earlier ones */
			best = e;
			best_len = n;
		}
	}
	return best ? best : any_dev;
}

int store_locate(struct store_mounts *m, const char *path, bool has_dev,
		 uint64_t dev, char **fs, char **fs_path)
{
	*fs = *fs_path = NULL;
	if (!m->loaded && store_mounts_load(m) == WEFT_ENOMEM)
		return WEFT_ENOMEM;
	const struct store_mount *e = mount_of(m, path, has_dev, dev);
	if (!e && has_dev && !m->reloaded) {
		/* A mount made during the run: read the table once more. */
		m->reloaded = true;
		if (store_mounts_load(m) == WEFT_ENOMEM)
			return WEFT_ENOMEM;
		e = mount_of(m, path, has_dev, dev);
	}
	size_t below = e ? prefix_len(e->point, path) : 0;
	const char *rest = e && below ? path + (below == 1 ? 0 : below) : path;
	const char *root =
		e && below && strcmp(e->root, "/") != 0 ? e->root : "";
	/* root + rest, "/" when both are empty. */
	size_t rlen = strlen(root), tlen = strlen(rest);
	if (rlen + tlen > WEFT_MAX_PATH_BYTES)
		return WEFT_OK; /* no location rather than a wrong one */
	char *p = malloc(rlen + tlen + 2);
	if (!p)
		return WEFT_ENOMEM;
	snprintf(p, rlen + tlen + 2, "%s%s", root, tlen || rlen ? rest : "/");
	if (!p[0] || !weft_path_ok(p)) {
		free(p);
		return WEFT_OK;
	}
	char *f;
	if (e && store_fstype_shared(e->fstype)) {
		size_t sl = strlen(e->source);
		while (sl > 1 && e->source[sl - 1] == '/')
			sl--; /* "server:/export/" is "server:/export" */
		f = malloc(strlen(e->fstype) + sl + 2);
		if (f)
			sprintf(f, "%s %.*s", e->fstype, (int)sl, e->source);
	} else {
		uint64_t d = e ? e->dev : dev;
		f = malloc(sizeof(m->boot_id) + 64);
		if (f)
			sprintf(f, "local %s %u:%u", m->boot_id, major(d),
				minor(d));
	}
	if (!f) {
		free(p);
		return WEFT_ENOMEM;
	}
	*fs = f;
	*fs_path = p;
	return WEFT_OK;
}
