/* dir_pin.c — mailbox PINs (R14): stored only as a salted slow hash, with a
 * pepper kept outside the database.
 *
 *   stored = "scrypt$" log2(N) "$" r "$" p "$" hex(salt) "$" hex(key)
 *   key    = scrypt(HMAC-SHA256(pepper, PIN), salt, N, r, p, 32)   (RFC 7914)
 *
 * The pepper is 32 random bytes in DATA/pepper (0600), created on first
 * need with link() so that two processes creating it at once agree on one.
 * A stolen openum.db alone does not let anyone test PINs offline. */
#include "directory/dir_private.h"

#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"

enum { PEPPER_LEN = 32, SALT_LEN = 16, KEY_LEN = 32, LOG2_N = 14, R = 8, P = 1 };

static int pepper_read(const char *path, unsigned char *out)
{
	char *data = NULL;
	size_t len = 0;
	struct stat st;
	int rc;
	if (stat(path, &st) != 0)
		return errno;
	if (st.st_mode & 077)
		return EPERM; /* readable by others: refuse rather than use */
	rc = om_file_read(path, PEPPER_LEN, &data, &len);
	if (rc)
		return rc;
	if (len != PEPPER_LEN) {
		om_free(data);
		return EINVAL;
	}
	memcpy(out, data, PEPPER_LEN);
	OPENSSL_cleanse(data, len);
	om_free(data);
	return 0;
}

static int pepper_get(const char *data_dir, unsigned char *out)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	unsigned char fresh[PEPPER_LEN];
	int fd, rc;
	if (!data_dir)
		return EINVAL;
	snprintf(path, sizeof(path), "%s/pepper", data_dir);
	rc = pepper_read(path, out);
	if (rc != ENOENT)
		return rc;
	if (RAND_bytes(fresh, sizeof(fresh)) != 1)
		return EIO;
	snprintf(tmp, sizeof(tmp), "%s/.pepper.XXXXXX", data_dir);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return errno;
	rc = 0;
	if (fchmod(fd, 0600) != 0 || write(fd, fresh, sizeof(fresh)) != (ssize_t)sizeof(fresh) ||
	    fsync(fd) != 0)
		rc = errno ? errno : EIO;
	close(fd);
	OPENSSL_cleanse(fresh, sizeof(fresh));
	if (rc == 0 && link(tmp, path) != 0 && errno != EEXIST)
		rc = errno;
	unlink(tmp);
	if (rc)
		return rc;
	om_fsync_dir(data_dir);
	return pepper_read(path, out);
}

static int derive(const unsigned char *pepper, const char *pin, const unsigned char *salt,
                  size_t saltlen, unsigned log2n, unsigned r, unsigned p, unsigned char *key)
{
	unsigned char mac[32];
	size_t maclen = 0;
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *ctx = NULL;
	uint64_t n = (uint64_t)1 << log2n;
	uint32_t rr = r, pp = p;
	int rc = EIO;
	if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, pepper, PEPPER_LEN,
	               (const unsigned char *)pin, strlen(pin), mac, sizeof(mac), &maclen))
		goto out;
	kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
	ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	if (!ctx)
		goto out;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, mac, maclen),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, saltlen),
		OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
		OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &rr),
		OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &pp),
		OSSL_PARAM_construct_end(),
	};
	if (EVP_KDF_derive(ctx, key, KEY_LEN, params) == 1)
		rc = 0;
out:
	OPENSSL_cleanse(mac, sizeof(mac));
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return rc;
}

static void hex(char *out, const unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static int unhex(const char *s, size_t slen, unsigned char *out, size_t n)
{
	if (slen != 2 * n)
		return EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return EINVAL;
		out[i] = (unsigned char)v;
	}
	return 0;
}

int om_dir_pin_hash(const char *data_dir, const char *pin, char *out, size_t outlen)
{
	unsigned char pepper[PEPPER_LEN], salt[SALT_LEN], key[KEY_LEN];
	char saltx[2 * SALT_LEN + 1], keyx[2 * KEY_LEN + 1];
	int rc = pepper_get(data_dir, pepper);
	if (rc)
		return rc;
	if (RAND_bytes(salt, sizeof(salt)) != 1) {
		rc = EIO;
		goto out;
	}
	if ((rc = derive(pepper, pin, salt, sizeof(salt), LOG2_N, R, P, key)))
		goto out;
	hex(saltx, salt, sizeof(salt));
	hex(keyx, key, sizeof(key));
	if (snprintf(out, outlen, "scrypt$%d$%d$%d$%s$%s", LOG2_N, R, P, saltx, keyx) >=
	    (int)outlen)
		rc = EINVAL;
out:
	OPENSSL_cleanse(pepper, sizeof(pepper));
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

int om_dir_pin_verify(const char *data_dir, const char *pin, const char *stored)
{
	unsigned char pepper[PEPPER_LEN], salt[SALT_LEN], want[KEY_LEN], got[KEY_LEN];
	unsigned log2n, r, p;
	int pos = 0, rc;
	if (sscanf(stored, "scrypt$%u$%u$%u$%n", &log2n, &r, &p, &pos) != 3 || pos == 0 ||
	    log2n < 10 || log2n > 20 || r < 1 || r > 16 || p < 1 || p > 4)
		return EINVAL;
	const char *s = stored + pos, *dollar = strchr(s, '$');
	if (!dollar || unhex(s, (size_t)(dollar - s), salt, sizeof(salt)) ||
	    unhex(dollar + 1, strlen(dollar + 1), want, sizeof(want)))
		return EINVAL;
	if ((rc = pepper_get(data_dir, pepper)))
		return rc;
	rc = derive(pepper, pin, salt, sizeof(salt), log2n, r, p, got);
	if (rc == 0)
		rc = CRYPTO_memcmp(got, want, sizeof(got)) == 0 ? 0 : EACCES;
	OPENSSL_cleanse(pepper, sizeof(pepper));
	OPENSSL_cleanse(got, sizeof(got));
	return rc;
}
