/* maildir.c — the mailbox as a Maildir (the format Dovecot, Courier and
 * mutt read: cr.yp.to/proto/maildir.html):
 *
 *   mail/<uid>/tmp/NAME   written, fsynced, then renamed to
 *   mail/<uid>/new/NAME   and new/ fsynced; an IMAP server moves it to
 *   mail/<uid>/cur/NAME:2,FLAGS  once seen
 *
 *   NAME = <seconds>.K<message key>.<host>,S=<size>
 *
 * The key (Call-ID and tags, hashed) in the name is how a second delivery
 * of the same call is recognised without reading any message. Folders
 * 0700, files 0600. Also the reading side for `openum mailbox messages`:
 * the header fields openum writes, and the audio attachment. */
#include "delivery/delivery.h"
#include "delivery/delivery_int.h"

#include "core/alloc.h"
#include "core/file.h"
#include "core/str.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { MESSAGE_MAX = 128 << 20, HEADER_MAX = 64 << 10 };

static int mkdir0700(const char *path)
{
	struct stat st;
	if (mkdir(path, 0700) == 0)
		return 0;
	if (errno != EEXIST)
		return errno;
	if (stat(path, &st) != 0)
		return errno;
	return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

int om_maildir_open(const char *data_dir, const char *uid, char *dir, size_t dirlen)
{
	static const char *const subs[] = { "tmp", "new", "cur" };
	char path[PATH_MAX];
	int rc;
	if (snprintf(path, sizeof(path), "%s/mail", data_dir) >= (int)sizeof(path))
		return ENAMETOOLONG;
	if ((rc = mkdir0700(path)))
		return rc;
	if (snprintf(dir, dirlen, "%s/mail/%s", data_dir, uid) >= (int)dirlen)
		return ENAMETOOLONG;
	bool fresh = access(dir, F_OK) != 0;
	if ((rc = mkdir0700(dir)))
		return rc;
	for (size_t i = 0; i < 3; i++) {
		dlv_fmt(path, sizeof(path), "%s/%s", dir, subs[i]);
		if ((rc = mkdir0700(path)))
			return rc;
	}
	if (fresh) { /* the new folders survive a crash */
		om_fsync_dir(dir);
		dlv_fmt(path, sizeof(path), "%s/mail", data_dir);
		om_fsync_dir(path);
	}
	return 0;
}

static bool dir_has(const char *dir, const char *sub, const char *token)
{
	char path[PATH_MAX];
	bool found = false;
	dlv_fmt(path, sizeof(path), "%s/%s", dir, sub);
	DIR *d = opendir(path);
	if (!d)
		return false;
	for (struct dirent *e; !found && (e = readdir(d)) != NULL;)
		found = strstr(e->d_name, token) != NULL;
	closedir(d);
	return found;
}

bool om_maildir_has(const char *dir, const char *key)
{
	char token[40];
	dlv_fmt(token, sizeof(token), ".K%s.", key);
	return dir_has(dir, "new", token) || dir_has(dir, "cur", token);
}

/* Maildir host part: '/' and ':' would break the name. */
static void host_part(const char *host, char *out, size_t len)
{
	size_t o = 0;
	for (const char *p = host && *host ? host : "localhost"; *p && o + 5 < len; p++) {
		if (*p == '/')
			o += (size_t)snprintf(out + o, len - o, "\\057");
		else if (*p == ':')
			o += (size_t)snprintf(out + o, len - o, "\\072");
		else if ((unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f && *p != ',')
			out[o++] = *p;
	}
	out[o] = '\0';
}

int dlv_write_all(int fd, const void *data, size_t len)
{
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, (const char *)data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		off += (size_t)n;
	}
	return 0;
}

/* The key check and the rename into new/ are one step for the workers of
 * this process (one `openum serve` per store): two spools of one call
 * delivered at the same moment give one message. One lock per stripe of
 * keys, so that messages of different calls are written (and synced) side
 * by side while two deliveries of one call still take turns. */
enum { LOCKS = 64 };
static pthread_mutex_t deliver_locks[LOCKS] = { [0 ... LOCKS - 1] = PTHREAD_MUTEX_INITIALIZER };

static pthread_mutex_t *lock_of(const char *key)
{
	unsigned h = 2166136261u;
	for (const char *p = key; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return &deliver_locks[h % LOCKS];
}

static int deliver_locked(const char *dir, const char *key, int64_t time_ms, const char *host,
                          size_t len, om_maildir_write_h write_h, void *arg);

struct mem_msg {
	const void *p;
	size_t len;
};

static int write_mem_h(int fd, void *arg)
{
	struct mem_msg *m = arg;
	return dlv_write_all(fd, m->p, m->len);
}

int om_maildir_deliver(const char *dir, const char *key, int64_t time_ms, const char *host,
                       const void *msg, size_t len)
{
	struct mem_msg m = { msg, len };
	return om_maildir_deliver_with(dir, key, time_ms, host, len, write_mem_h, &m);
}

int om_maildir_deliver_with(const char *dir, const char *key, int64_t time_ms, const char *host,
                            size_t len, om_maildir_write_h write_h, void *arg)
{
	pthread_mutex_t *lock = lock_of(key);
	pthread_mutex_lock(lock);
	int rc = deliver_locked(dir, key, time_ms, host, len, write_h, arg);
	pthread_mutex_unlock(lock);
	return rc;
}

static int deliver_locked(const char *dir, const char *key, int64_t time_ms, const char *host,
                          size_t len, om_maildir_write_h write_h, void *arg)
{
	char name[256], hp[128], tmp[PATH_MAX], dst[PATH_MAX], sub[PATH_MAX];
	struct stat st;
	int fd, rc;
	if (om_maildir_has(dir, key))
		return EEXIST;
	host_part(host, hp, sizeof(hp));
	dlv_fmt(name, sizeof(name), "%lld.K%s.%s,S=%zu", (long long)(time_ms / 1000), key, hp, len);
	dlv_fmt(tmp, sizeof(tmp), "%s/tmp/%s", dir, name);
	dlv_fmt(dst, sizeof(dst), "%s/new/%s", dir, name);
	/* a file left in tmp/ by an attempt that crashed is ours: replace it */
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return errno;
	rc = write_h(fd, arg);
	if (!rc && fsync(fd) != 0)
		rc = errno;
	/* the writer must have written the size the name announces */
	if (!rc && (fstat(fd, &st) != 0 || (uint64_t)st.st_size != (uint64_t)len))
		rc = EIO;
	if (close(fd) != 0 && !rc)
		rc = errno;
	if (!rc && rename(tmp, dst) != 0)
		rc = errno;
	if (rc) {
		unlink(tmp);
		return rc;
	}
	dlv_fmt(sub, sizeof(sub), "%s/new", dir);
	return om_fsync_dir(sub);
}

/* ---------------------------------------------------- reading */

/* The value of header field `name` in a header block (unfolded, at most
 * len-1 bytes); "" when absent. */
static void header_get(const char *h, size_t hlen, const char *name, char *out, size_t len)
{
	size_t nl = strlen(name), o = 0;
	out[0] = '\0';
	for (size_t i = 0; i < hlen;) {
		const char *line = h + i;
		const char *eol = memchr(line, '\n', hlen - i);
		size_t ll = eol ? (size_t)(eol - line) : hlen - i;
		i += ll + 1;
		if (ll > nl && line[nl] == ':' && !strncasecmp(line, name, nl)) {
			const char *v = line + nl + 1;
			size_t vl = ll - nl - 1;
			for (;;) {
				for (size_t k = 0; k < vl && o + 1 < len; k++)
					if (v[k] != '\r')
						out[o++] = v[k];
				/* continuation lines */
				if (i < hlen && (h[i] == ' ' || h[i] == '\t')) {
					const char *nx = memchr(h + i, '\n', hlen - i);
					v = h + i;
					vl = nx ? (size_t)(nx - v) : hlen - i;
					i += vl + 1;
					continue;
				}
				break;
			}
			out[o] = '\0';
			/* trim */
			char *s = out;
			while (*s == ' ' || *s == '\t')
				s++;
			memmove(out, s, strlen(s) + 1);
			for (size_t e = strlen(out);
			     e > 0 && (out[e - 1] == ' ' || out[e - 1] == '\t');)
				out[--e] = '\0';
			return;
		}
	}
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decodes base64, skipping whitespace; stops at '=' or anything else. */
static void unbase64(const char *p, size_t n, struct om_buf *out)
{
	unsigned acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64val((unsigned char)p[i]);
		if (v < 0) {
			if (p[i] == '=')
				break;
			continue;
		}
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			unsigned char c = (unsigned char)(acc >> bits);
			om_buf_add(out, &c, 1);
		}
	}
}

/* RFC 2047 B-words in place (the kind openum writes); other text kept. */
static void decode_words(char *s, size_t size)
{
	struct om_buf b;
	om_buf_init(&b);
	for (const char *p = s; *p;) {
		const char *w = strstr(p, "=?");
		const char *q = w ? strstr(w + 2, "?B?") : NULL;
		if (!q)
			q = w ? strstr(w + 2, "?b?") : NULL;
		const char *end = q ? strstr(q + 3, "?=") : NULL;
		if (!w || !q || !end || strncasecmp(w + 2, "UTF-8", 5)) {
			om_buf_adds(&b, p);
			break;
		}
		/* text before the word, except the folding between two words */
		const char *t = p;
		bool blank = true;
		for (const char *k = t; k < w; k++)
			blank = blank && (*k == ' ' || *k == '\t');
		if (!blank || p == s)
			om_buf_add(&b, t, (size_t)(w - t));
		unbase64(q + 3, (size_t)(end - q - 3), &b);
		p = end + 2;
	}
	if (!om_buf_err(&b) && om_buf_cstr(&b)) {
		dlv_fmt(s, size, "%s", om_buf_cstr(&b));
		/* cut at a character boundary */
		size_t n = strlen(s);
		if (n == size - 1)
			while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
				s[--n] = '\0';
	}
	om_buf_free(&b);
}

/* Text for a terminal or JSON: valid UTF-8 without control characters
 * (C0, DEL, C1: a message from elsewhere in the Maildir, appended over
 * IMAP, may hold escape sequences), invalid bytes as '?', at most len-1
 * bytes, cut at a character boundary. */
static void printable(const char *src, char *out, size_t len)
{
	const unsigned char *p = (const unsigned char *)src;
	size_t o = 0;
	while (*p) {
		unsigned c = *p, n = c < 0x80                 ? 1
		                     : c >= 0xc2 && c <= 0xdf ? 2
		                     : c >= 0xe0 && c <= 0xef ? 3
		                     : c >= 0xf0 && c <= 0xf4 ? 4
		                                              : 0;
		unsigned cp = n == 1 ? c : n == 2 ? c & 0x1f : n == 3 ? c & 0x0f : c & 0x07;
		bool ok = n > 0;
		for (unsigned k = 1; ok && k < n; k++) {
			ok = (p[k] & 0xc0) == 0x80;
			cp = (cp << 6) | (p[k] & 0x3f);
		}
		/* overlong, surrogates, beyond U+10FFFF */
		if (ok && ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		           (n == 4 && (cp < 0x10000 || cp > 0x10ffff))))
			ok = false;
		if (!ok) {
			if (o + 1 >= len)
				break;
			out[o++] = '?';
			p++;
			continue;
		}
		if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) { /* controls: a space for a tab */
			if (cp == '\t' && o + 1 < len)
				out[o++] = ' ';
			p += n;
			continue;
		}
		if (o + n >= len)
			break;
		memcpy(out + o, p, n);
		o += n;
		p += n;
	}
	out[o] = '\0';
}

/* A text header field as people read it: unfolded, encoded-words
 * decoded, printable. */
static void text_field(const char *h, size_t hlen, const char *name, char *out, size_t len)
{
	char v[1024];
	header_get(h, hlen, name, v, sizeof(v));
	decode_words(v, sizeof(v));
	printable(v, out, len);
}

static int64_t parse_date(const char *v)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *p = strchr(v, ',');
	p = p ? p + 1 : v;
	char *end = strptime(p, " %d %b %Y %H:%M:%S", &tm);
	if (!end)
		return 0;
	int sign = 1, hh = 0, mm = 0;
	while (*end == ' ')
		end++;
	if ((*end == '+' || *end == '-') && strlen(end) >= 5) {
		sign = *end == '-' ? -1 : 1;
		hh = (end[1] - '0') * 10 + (end[2] - '0');
		mm = (end[3] - '0') * 10 + (end[4] - '0');
	}
	return ((int64_t)timegm(&tm) - sign * (hh * 3600 + mm * 60)) * 1000;
}

static int read_entry(const char *dir, const char *sub, const char *name, struct om_maildir_msg *m)
{
	char path[PATH_MAX], v[600];
	int fd;
	ssize_t n;
	char *h;
	memset(m, 0, sizeof(m[0]));
	if (snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name) >= (int)sizeof(path))
		return ENAMETOOLONG;
	dlv_fmt(m->file, sizeof(m->file), "%s", path);
	const char *k = strstr(name, ".K");
	if (k && strlen(k) > 34 && k[34] == '.')
		dlv_fmt(m->id, sizeof(m->id), "%.32s", k + 2);
	else
		dlv_fmt(m->id, sizeof(m->id), "%.*s", (int)strcspn(name, ":,"), name);
	const char *flags = strstr(name, ":2,");
	m->is_new = !strcmp(sub, "new") || !flags || !strchr(flags + 3, 'S');
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return errno;
	h = om_malloc(HEADER_MAX + 1);
	if (!h) {
		close(fd);
		return ENOMEM;
	}
	n = read(fd, h, HEADER_MAX);
	close(fd);
	if (n < 0) {
		om_free(h);
		return errno;
	}
	h[n] = '\0';
	/* the header block ends at the first empty line */
	char *blank = strstr(h, "\n\n");
	size_t hlen = blank ? (size_t)(blank - h + 1) : (size_t)n;
	header_get(h, hlen, "X-Openum-Time", v, sizeof(v));
	m->time_ms = strtoll(v, NULL, 10);
	if (!m->time_ms) {
		header_get(h, hlen, "Date", v, sizeof(v));
		m->time_ms = parse_date(v);
	}
	header_get(h, hlen, "X-Openum-Duration", v, sizeof(v));
	m->duration_s = (unsigned)strtoul(v, NULL, 10);
	header_get(h, hlen, "X-Openum-Recovered", v, sizeof(v));
	m->recovered = !strcasecmp(v, "yes");
	text_field(h, hlen, "X-Openum-Caller", m->caller, sizeof(m->caller));
	text_field(h, hlen, "X-Openum-Caller-Name", m->caller_name, sizeof(m->caller_name));
	text_field(h, hlen, "X-Openum-Audio", m->format, sizeof(m->format));
	if (!m->caller[0]) /* not one of openum's: the From header */
		text_field(h, hlen, "From", m->caller, sizeof(m->caller));
	om_free(h);
	return 0;
}

static int cmp_time(const void *a, const void *b)
{
	const struct om_maildir_msg *x = a, *y = b;
	if (x->time_ms != y->time_ms)
		return x->time_ms < y->time_ms ? -1 : 1;
	return strcmp(x->id, y->id);
}

int om_maildir_list(const char *dir, struct om_maildir_msg **out, size_t *nout)
{
	static const char *const subs[] = { "new", "cur" };
	struct om_maildir_msg *v = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	for (size_t s = 0; s < 2 && !rc; s++) {
		char path[PATH_MAX];
		dlv_fmt(path, sizeof(path), "%s/%s", dir, subs[s]);
		DIR *d = opendir(path);
		if (!d) {
			if (errno == ENOENT)
				continue;
			rc = errno;
			break;
		}
		for (struct dirent *e; (e = readdir(d)) != NULL;) {
			if (e->d_name[0] == '.')
				continue;
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 16;
				struct om_maildir_msg *nv = om_realloc(v, nc * sizeof(*v));
				if (!nv) {
					rc = ENOMEM;
					break;
				}
				v = nv;
				cap = nc;
			}
			int r = read_entry(dir, subs[s], e->d_name, &v[n]);
			if (r == ENOMEM) {
				rc = r;
				break;
			}
			if (r == 0)
				n++; /* a file that vanished meanwhile is skipped */
		}
		closedir(d);
	}
	if (rc) {
		om_free(v);
		return rc;
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_time);
	*out = v;
	*nout = n;
	return 0;
}

/* The parameter `param` of a header value (quoted or token). */
static void param_get(const char *v, const char *param, char *out, size_t len)
{
	size_t pl = strlen(param);
	out[0] = '\0';
	for (const char *p = v; (p = strchr(p, ';')) != NULL;) {
		p++;
		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (strncasecmp(p, param, pl) || p[pl] != '=')
			continue;
		p += pl + 1;
		size_t o = 0;
		if (*p == '"') {
			for (p++; *p && *p != '"' && o + 1 < len; p++) {
				if (*p == '\\' && p[1])
					p++;
				out[o++] = *p;
			}
		} else {
			for (; *p && *p != ';' && *p != ' ' && *p != '\t' && o + 1 < len; p++)
				out[o++] = *p;
		}
		out[o] = '\0';
		return;
	}
}

/* Finds the audio part of a MIME entity [p, p+n) (recursing into
 * multiparts). 1 found, 0 not, -1 malformed. */
static int find_audio(const char *p, size_t n, int depth, struct om_buf *audio, char ext[8])
{
	char ct[600], cte[64], bnd[80], fname[200];
	const char *blank = NULL;
	for (size_t i = 0; i + 1 < n; i++)
		if (p[i] == '\n' &&
		    (p[i + 1] == '\n' || (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n'))) {
			blank = p + i + 1;
			break;
		}
	if (!blank || depth > 4)
		return -1;
	size_t hlen = (size_t)(blank - p);
	const char *body = blank + (*blank == '\r' ? 2 : 1);
	size_t blen = n - (size_t)(body - p);
	header_get(p, hlen, "Content-Type", ct, sizeof(ct));
	header_get(p, hlen, "Content-Transfer-Encoding", cte, sizeof(cte));
	if (!strncasecmp(ct, "audio/", 6)) {
		if (strcasecmp(cte, "base64"))
			return -1;
		unbase64(body, blen, audio);
		header_get(p, hlen, "Content-Disposition", fname, sizeof(fname));
		char fn[200];
		param_get(fname, "filename", fn, sizeof(fn));
		const char *dot = strrchr(fn, '.');
		if (dot && strlen(dot + 1) < 8 &&
		    strspn(dot + 1, "abcdefghijklmnopqrstuvwxyz0123456789") == strlen(dot + 1) &&
		    dot[1])
			dlv_fmt(ext, 8, "%s", dot + 1);
		else
			dlv_fmt(ext, 8, "%s",
			        !strncasecmp(ct, "audio/mpeg", 10) ? "mp3"
			        : !strncasecmp(ct, "audio/ogg", 9) ? "ogg"
			                                           : "wav");
		return 1;
	}
	if (strncasecmp(ct, "multipart/", 10))
		return 0;
	param_get(ct, "boundary", bnd, sizeof(bnd));
	if (!bnd[0])
		return -1;
	char delim[90];
	int dl = snprintf(delim, sizeof(delim), "--%s", bnd);
	const char *cur = NULL;
	for (size_t i = 0; i + (size_t)dl <= blen;) {
		const char *line = body + i;
		const char *eol = memchr(line, '\n', blen - i);
		size_t ll = eol ? (size_t)(eol - line) : blen - i;
		if (ll >= (size_t)dl && !memcmp(line, delim, (size_t)dl)) {
			if (cur) {
				int r =
				    find_audio(cur, (size_t)(line - cur), depth + 1, audio, ext);
				if (r)
					return r;
			}
			if (ll >= (size_t)dl + 2 && line[dl] == '-' && line[dl + 1] == '-')
				return 0;
			cur = eol ? eol + 1 : body + blen;
		}
		i += ll + 1;
	}
	return 0;
}

int om_message_audio(const char *msg, size_t len, struct om_buf *audio, char ext[8])
{
	int r = find_audio(msg, len, 0, audio, ext);
	if (om_buf_err(audio))
		return ENOMEM;
	return r > 0 ? 0 : r == 0 ? ENOENT : EINVAL;
}

int om_maildir_audio(const char *file, struct om_buf *audio, char ext[8])
{
	char *data = NULL;
	size_t len = 0;
	int rc = om_file_read(file, MESSAGE_MAX, &data, &len);
	if (rc)
		return rc;
	rc = om_message_audio(data, len, audio, ext);
	om_free(data);
	return rc;
}
