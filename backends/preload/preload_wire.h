/*
 * preload_wire.h - the bytes libweft_preload.so (lib/) sends to the
 * collector in weft (collector.c): batches of fixed-layout records over a
 * Unix datagram socket. Shared by both sides, so plain C with no weft
 * headers: the library links nothing but libc.
 *
 * One datagram is one batch: a pl_batch header, then records, each
 * PL_ALIGN-aligned: a pl_rec, a pl_stat when PL_B_STAT is set, then nstr
 * NUL-terminated strings. A process numbers its batches from 0 for each
 * image (after fork or exec); the first batch's `how` says how the process
 * came to be, which tells the collector whether a FORK for it is coming
 * from its parent. The collector trusts nothing here: every size, count
 * and string is checked (decode.c), and the sender's pid comes from the
 * kernel (SCM_CREDENTIALS), not from the header.
 */
#ifndef WEFT_PRELOAD_WIRE_H
#define WEFT_PRELOAD_WIRE_H

#include <stdint.h>

#define PL_MAGIC 0x54504657u /* "WFPT" little-endian */
#define PL_VERSION 1
/* Largest batch; well below the default socket send buffer. */
#define PL_BATCH_MAX (60 * 1024)
#define PL_ALIGN 8
/* Strings in one record. */
#define PL_MAX_STR 64

/* Environment the launcher sets: the collector's socket path, and the
 * marker a posix_spawn'd child finds (its parent sends its FORK). */
#define PL_ENV_SOCK "WEFT_PRELOAD_SOCK"
#define PL_ENV_SPAWNED "WEFT_PRELOAD_SPAWNED"

/* How the process of a batch with seq 0 came to be. */
enum pl_how {
	PL_HOW_CONT = 0,    /* not a first batch */
	PL_HOW_EXEC = 1,    /* a new image; creator unknown: the collector
			       makes its FORK from ppid when it has none */
	PL_HOW_FORKED = 2,  /* fork() through the library: the parent sends
			       the FORK; hold until it comes */
	PL_HOW_FORKED_SELF = 3, /* a fork inside libc (daemon, ...): nobody
				   sends a FORK; make it from ppid */
	PL_HOW_SPAWNED = 4, /* posix_spawn through the library: the parent
			       sends the FORK (and the file actions) */
};

struct pl_batch {
	uint32_t magic;
	uint16_t version;
	uint16_t how;  /* enum pl_how, meaningful when seq == 0 */
	int32_t pid;   /* the sender, as it believes (checked) */
	int32_t ppid;  /* its parent at the time of the first batch */
	uint32_t seq;  /* per image, from 0 */
	uint32_t len;  /* bytes of the whole batch, header included */
};

enum pl_kind {
	PL_R_IMAGE = 1, /* strings: exe, cwd, argv... (first of an image) */
	PL_R_OPEN,      /* fd = new fd, fd2 = dirfd, flags, mode, created,
			   [stat], strings: path */
	PL_R_CLOSE,     /* fd, bits: PL_B_READ/PL_B_WRITE seen on it */
	PL_R_IO,        /* fd, bits: reads/writes not yet reported */
	PL_R_DUP,       /* fd = old, fd2 = new, flags: O_CLOEXEC */
	PL_R_SETCLOEXEC, /* fd, flags: O_CLOEXEC or 0 */
	PL_R_RENAME,    /* fd/fd2 dirfds, flags, created, strings: old, new */
	PL_R_LINK,      /* fd (-1: symlink), fd2, strings: old, new */
	PL_R_UNLINK,    /* fd, flags (AT_REMOVEDIR), strings: path */
	PL_R_TRUNCATE,  /* strings: path */
	PL_R_CHDIR,     /* strings: path */
	PL_R_FCHDIR,    /* fd */
	PL_R_FORK,      /* ret = child pid, flags = clone-like flags */
	PL_R_EXEC,      /* an exec the library will not see from inside
			   (static or secure-exec target): strings: exe,
			   argv... */
	PL_R_EXIT,      /* pid = a reaped child, ret = exit code (128+sig) */
	PL_R_END,       /* the sender ends: bits PL_B_CODE when ret holds
			   its exit code */
	PL_R_WARN,      /* strings: a coverage warning */
	PL_R_HELLO,     /* nothing: a first batch with nothing else in it
			   (a fork child about to exec says it was forked) */
	PL_R_KIND_MAX
};

#define PL_B_READ 0x01
#define PL_B_WRITE 0x02
#define PL_B_STAT 0x04 /* a pl_stat follows the pl_rec */
#define PL_B_CODE 0x08 /* END: ret is the exit code */

struct pl_rec {
	uint16_t kind;  /* enum pl_kind */
	uint16_t size;  /* bytes of the record, a multiple of PL_ALIGN */
	int32_t pid;    /* 0: the sender; else the process it is about
			   (a spawned child, a reaped child) */
	int32_t fd, fd2;
	int32_t flags, mode;
	int8_t created; /* enum weft_created_hint values */
	uint8_t bits;   /* PL_B_* */
	uint16_t nstr;  /* strings after the record (and stat) */
	uint32_t pad;
	int64_t ret;
};

struct pl_stat {
	uint32_t mode;
	uint32_t pad;
	uint64_t dev, ino;
	int64_t size, mtime_ns, ctime_ns;
};

#endif /* WEFT_PRELOAD_WIRE_H */
