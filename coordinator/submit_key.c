/*
 * submit_key.c - the coordinator's submit key: the secret whose holders
 * may create jobs (weft_job_create_mac). A coordinator makes it once, in
 * a file only its owner can read (by default coordinator.key beside its
 * store), and keeps using it across restarts; `weft submit` reads the
 * same file to prove it, and whoever should submit to a shared
 * coordinator gets a copy the way they would get an SSH key.
 *
 * Why a file and not an option: a secret on a command line is readable
 * by every user in ps (issue 14 item 5); a file with mode 0600 is not.
 * A key file anybody else could read or write is refused, like ssh
 * refuses such a private key: it would hand job creation to them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include <weft/coordinator.h>

/* 64 hex digits and a newline; anything longer is not a key file. */
#define KEY_TEXT_BYTES (2 * WEFT_SUBMIT_KEY_BYTES)
#define KEY_FILE_MAX_BYTES (KEY_TEXT_BYTES + 2)

void weft_submit_key_default_path(const char *store_path, char *out,
				  size_t outsz)
{
	const char *slash = strrchr(store_path, '/');
	if (!slash)
		snprintf(out, outsz, "%s", WEFT_SUBMIT_KEY_FILE_NAME);
	else
		snprintf(out, outsz, "%.*s/%s", (int)(slash - store_path),
			 store_path, WEFT_SUBMIT_KEY_FILE_NAME);
}

static int key_parse(const char *path, const char *text, size_t n,
		     uint8_t key[WEFT_SUBMIT_KEY_BYTES], char *err,
		     size_t errsz)
{
	if (n > 0 && text[n - 1] == '\n')
		n--;
	size_t got = 0;
	if (n != KEY_TEXT_BYTES ||
	    sodium_hex2bin(key, WEFT_SUBMIT_KEY_BYTES, text, n, NULL, &got,
			   NULL) != 0 ||
	    got != WEFT_SUBMIT_KEY_BYTES) {
		snprintf(err, errsz,
			 "submit key file %s: not a weft submit key (expected "
			 "%d hex digits)",
			 path, KEY_TEXT_BYTES);
		return WEFT_EINVAL;
	}
	return WEFT_OK;
}

static int key_read(const char *path, uint8_t key[WEFT_SUBMIT_KEY_BYTES],
		    char *err, size_t errsz)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errsz, "submit key file %s: %s", path,
			 strerror(e));
		return e == ENOENT ? WEFT_ENOTFOUND : WEFT_EIO;
	}
	struct stat sb;
	int rc = WEFT_OK;
	if (fstat(fd, &sb) != 0) {
		snprintf(err, errsz, "submit key file %s: %s", path,
			 strerror(errno));
		rc = WEFT_EIO;
	} else if (!S_ISREG(sb.st_mode)) {
		snprintf(err, errsz, "submit key file %s: not a regular file",
			 path);
		rc = WEFT_EINVAL;
	} else if (sb.st_uid != geteuid()) {
		snprintf(err, errsz,
			 "submit key file %s: owned by uid %u, not by you "
			 "(uid %u)",
			 path, (unsigned)sb.st_uid, (unsigned)geteuid());
		rc = WEFT_EINVAL;
	} else if (sb.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, errsz,
			 "submit key file %s: mode %04o lets others read or "
			 "change it (chmod 600 %s)",
			 path, (unsigned)(sb.st_mode & 07777), path);
		rc = WEFT_EINVAL;
	}
	char text[KEY_FILE_MAX_BYTES + 1];
	ssize_t n = 0;
	if (rc == WEFT_OK) {
		n = read(fd, text, sizeof(text));
		if (n < 0) {
			snprintf(err, errsz, "submit key file %s: %s", path,
				 strerror(errno));
			rc = WEFT_EIO;
		}
	}
	close(fd);
	if (rc == WEFT_OK)
		rc = key_parse(path, text, (size_t)n, key, err, errsz);
	sodium_memzero(text, sizeof(text));
	return rc;
}

/* A new key file at path, made whole under a temporary name and linked
 * into place: a reader never sees half a key, and of two coordinators
 * making it at once the second uses the first one's (EEXIST). */
static int key_create(const char *path, char *err, size_t errsz)
{
	char tmp[WEFT_MAX_PATH_BYTES + 32];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >=
	    (int)sizeof(tmp)) {
		snprintf(err, errsz, "submit key file %s: path too long", path);
		return WEFT_EINVAL;
	}
	uint8_t key[WEFT_SUBMIT_KEY_BYTES];
	char text[KEY_TEXT_BYTES + 2];
	weft_submit_key_new(key);
	sodium_bin2hex(text, sizeof(text), key, sizeof(key));
	sodium_memzero(key, sizeof(key));
	text[KEY_TEXT_BYTES] = '\n';
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int rc = fd < 0 ? -1 : 0;
	if (rc == 0 &&
	    (write(fd, text, KEY_TEXT_BYTES + 1) != KEY_TEXT_BYTES + 1 ||
	     fsync(fd) != 0))
		rc = -1;
	int e = errno;
	if (fd >= 0)
		close(fd);
	sodium_memzero(text, sizeof(text));
	if (rc == 0 && link(tmp, path) != 0 && errno != EEXIST) {
		e = errno;
		rc = -1;
	}
	if (fd >= 0)
		unlink(tmp);
	if (rc != 0) {
		snprintf(err, errsz, "cannot create the submit key file %s: %s",
			 path, strerror(e));
		return WEFT_EIO;
	}
	return WEFT_OK;
}

int weft_submit_key_load(const char *path, bool create,
			 uint8_t key[WEFT_SUBMIT_KEY_BYTES], char *err,
			 size_t errsz)
{
	if (weft_crypto_init())
		return WEFT_EIO;
	int rc = key_read(path, key, err, errsz);
	if (rc == WEFT_ENOTFOUND && create) {
		rc = key_create(path, err, errsz);
		if (rc == WEFT_OK)
			rc = key_read(path, key, err, errsz);
	}
	return rc;
}
