/* engine.c — deliveries off the control loop.
 *
 * The control thread owns the engine. A spool to deliver is a job; at
 * most RUNNING_MAX jobs run at once on libuv's thread pool
 * (uv_queue_work: file I/O and audio encoding never block the loop), the
 * rest wait. Results come back on the loop, where events are raised
 * (1170 every delivery, 1171 a recovered one, 1172 a failed attempt —
 * rate-limited per spool by the event module —, 1175 unusable metadata)
 * and the caller's callback runs. A failed job stays queued and is tried
 * again after RETRY_MIN, doubling up to RETRY_MAX; a reload tries at once.
 *
 *   submit / recover ──► queued ──(timer)──► running ──► done: event, callback, freed
 *                           ▲                   │
 *                           └── failed: back-off┘
 *
 * A timer every few seconds checks the free space of the spool's file
 * system (1173 when it drops below min_free_mb, 1174 when it is back)
 * and, hourly, removes delivered spools older than recordings_keep_days,
 * stale temporary files and Maildir tmp/ leftovers. */
#include "delivery/delivery.h"
#include "delivery/delivery_int.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/events.h"
#include "core/log.h"
#include "core/str.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

enum {
	RUNNING_MAX = 2,
	SPACE_CHECK_MS = 5000,
	PRUNE_EVERY_MS = 3600 * 1000,
	STALE_MS = 36 * 3600 * 1000, /* Maildir: tmp/ files older than 36 h */
};

struct job {
	struct job *next;
	struct om_delivery *d;
	char id[OM_SPOOL_ID_MAX + 1];
	om_delivery_done_h done;
	void *arg;
	unsigned attempts;
	int64_t next_ms;
	bool running, reported;
	uv_work_t work;
	/* the worker's copy of the settings, and its result */
	char data_dir[PATH_MAX], fqdn[256];
	struct om_delivery_opts opts;
	int rc;
	struct om_delivery_result res;
};

struct om_delivery {
	uv_loop_t *loop;
	char data_dir[PATH_MAX], fqdn[256];
	struct om_delivery_cfg cfg; /* strings point into the copies above */
	struct job *jobs;
	size_t running;
	uv_timer_t timer; /* the next job due */
	uv_timer_t space; /* free space, pruning */
	int open_handles;
	bool closing;
	void (*closed_h)(void *arg);
	void *closed_arg;
	unsigned long delivered, recovered, failed_attempts;
	bool room, room_known;
	uint64_t free_mb;
	int64_t last_prune_ms;
};

static void dispatch(struct om_delivery *d);

static void copy_cfg(struct om_delivery *d, const struct om_delivery_cfg *cfg)
{
	dlv_fmt(d->data_dir, sizeof(d->data_dir), "%s", cfg->data_dir);
	dlv_fmt(d->fqdn, sizeof(d->fqdn), "%s", cfg->fqdn ? cfg->fqdn : "");
	d->cfg = *cfg;
	d->cfg.data_dir = d->data_dir;
	d->cfg.fqdn = d->fqdn;
	if (!d->cfg.retry_min_s)
		d->cfg.retry_min_s = 30;
	if (d->cfg.retry_max_s < d->cfg.retry_min_s)
		d->cfg.retry_max_s = d->cfg.retry_min_s > 3600 ? d->cfg.retry_min_s : 3600;
}

/* ---------------------------------------------------- jobs */

static void work_cb(uv_work_t *w)
{
	struct job *j = w->data;
	j->rc = om_delivery_deliver(&j->opts, j->id, &j->res);
}

static void unlink_job(struct om_delivery *d, struct job *j)
{
	for (struct job **p = &d->jobs; *p; p = &(*p)->next)
		if (*p == j) {
			*p = j->next;
			return;
		}
}

static void maybe_closed(struct om_delivery *d)
{
	if (!d->closing || d->running || d->open_handles)
		return;
	void (*h)(void *) = d->closed_h;
	void *arg = d->closed_arg;
	om_free(d);
	if (h)
		h(arg);
}

static void report(struct om_delivery *d, struct job *j)
{
	const struct om_delivery_result *r = &j->res;
	const struct om_spool_meta *m = &r->meta;
	char dur[24], msgid[300];
	dlv_fmt(dur, sizeof(dur), "%zu", (r->samples + 4000) / 8000);
	dlv_fmt(msgid, sizeof(msgid), "<%s.voicemail@%s>", r->key, j->fqdn);
	if (r->skipped) {
		om_log(OM_LOG_INFO, "test call recording not delivered (test = true)", "spool",
		       j->id, NULL);
		return;
	}
	if (r->duplicate && !m->mailbox_uid[0]) /* already marked delivered */
		return;
	const char *caller = m->anonymous || !m->caller[0] ? "anonymous" : m->caller;
	if (r->recovered) {
		d->recovered++;
		om_event(
		    OM_EV_MSG_RECOVERED, j->id,
		    "message recovered after an interruption: delivered with what was recorded",
		    "spool", j->id, "mailbox", m->mailbox_uid, "extension", m->extension,
		    "dialplan", m->dialplan, "caller", caller, "duration_s", dur, "message_id",
		    msgid, "end_marker", m->end_unusable ? "unusable" : "none", NULL);
	}
	d->delivered++;
	om_event(OM_EV_MSG_DELIVERED, m->mailbox_uid, "message delivered", "spool", j->id,
	         "mailbox", m->mailbox_uid, "extension", m->extension, "dialplan", m->dialplan,
	         "caller", caller, "duration_s", dur, "format",
	         om_audio_format_name(j->opts.format), "message_id", msgid, "recovered",
	         r->recovered ? "yes" : "no", "already_there", r->duplicate ? "yes" : "no", NULL);
}

static void after_work_cb(uv_work_t *w, int status)
{
	struct job *j = w->data;
	struct om_delivery *d = j->d;
	j->running = false;
	d->running--;
	if (status == UV_ECANCELED)
		j->rc = ECANCELED;
	if (j->rc == 0 || j->rc == EINVAL || j->rc == ENOENT) {
		/* done with this job: out of the queue before the callback, which
		 * may close the engine */
		unlink_job(d, j);
		if (j->rc == 0)
			report(d, j);
		else if (j->rc == EINVAL)
			/* unusable metadata: retrying cannot help; the files stay for
			 * the administrator (and the next start reports them again) */
			om_event(
			    OM_EV_SPOOL_UNUSABLE, j->id,
			    "spool kept: its metadata cannot be used, so it cannot be delivered",
			    "spool", j->id, "error", j->res.error, NULL);
		else
			om_log(OM_LOG_WARNING, "spool to deliver not found", "spool", j->id, NULL);
		if (j->done)
			j->done(j->id, j->rc, &j->res, j->arg);
		om_free(j);
	} else if (j->rc != ECANCELED) {
		uint64_t back = (uint64_t)d->cfg.retry_min_s;
		for (unsigned k = 0; k < j->attempts && back < d->cfg.retry_max_s; k++)
			back *= 2;
		if (back > d->cfg.retry_max_s)
			back = d->cfg.retry_max_s;
		j->attempts++;
		j->next_ms = om_now_ms() + (int64_t)back * 1000;
		d->failed_attempts++;
		char att[16], retry[24];
		dlv_fmt(att, sizeof(att), "%u", j->attempts);
		dlv_fmt(retry, sizeof(retry), "%llu", (unsigned long long)back);
		om_event(OM_EV_MSG_UNDELIVERABLE, j->id,
		         "message could not be delivered yet: kept in the spool, retried", "spool",
		         j->id, "mailbox", j->res.meta.mailbox_uid, "error", j->res.error,
		         "attempts", att, "retry_in_s", retry, NULL);
		if (j->done && !j->reported) {
			j->reported = true;
			j->done(j->id, j->rc, &j->res, j->arg); /* j may be freed by a close */
		}
	}
	if (d->closing) {
		/* jobs not started stay in the spool for the next start */
		while (d->jobs && !d->running) {
			struct job *k = d->jobs;
			d->jobs = k->next;
			om_free(k);
		}
		maybe_closed(d);
		return;
	}
	dispatch(d);
}

static void start_job(struct om_delivery *d, struct job *j)
{
	dlv_fmt(j->data_dir, sizeof(j->data_dir), "%s", d->data_dir);
	dlv_fmt(j->fqdn, sizeof(j->fqdn), "%s", d->fqdn);
	j->opts = (struct om_delivery_opts){ .data_dir = j->data_dir,
		                             .fqdn = j->fqdn,
		                             .format = d->cfg.format,
		                             .keep_spool = d->cfg.keep_spool };
	j->work.data = j;
	if (uv_queue_work(d->loop, &j->work, work_cb, after_work_cb) == 0) {
		j->running = true;
		d->running++;
	} else {
		j->next_ms = om_now_ms() + 1000;
	}
}

static void on_timer(uv_timer_t *t)
{
	dispatch(t->data);
}

/* Starts what is due, then sleeps until the next job is. */
static void dispatch(struct om_delivery *d)
{
	int64_t now = om_now_ms(), next = -1;
	if (d->closing)
		return;
	for (struct job *j = d->jobs; j; j = j->next) {
		if (j->running)
			continue;
		if (j->next_ms <= now) {
			if (d->running < RUNNING_MAX)
				start_job(d, j);
			if (j->running || j->next_ms <= now)
				continue; /* due: it starts when a running one ends */
		}
		if (next < 0 || j->next_ms < next)
			next = j->next_ms;
	}
	if (next >= 0)
		uv_timer_start(&d->timer, on_timer, next > now ? (uint64_t)(next - now) : 0, 0);
	else
		uv_timer_stop(&d->timer);
}

static struct job *find_job(struct om_delivery *d, const char *id)
{
	for (struct job *j = d->jobs; j; j = j->next)
		if (!strcmp(j->id, id))
			return j;
	return NULL;
}

static int queue(struct om_delivery *d, const char *id, om_delivery_done_h done, void *arg)
{
	struct job *j = find_job(d, id), **tail;
	if (j) { /* already queued (the start's scan found it, or a second submit) */
		if (!j->done) {
			j->done = done;
			j->arg = arg;
		}
		if (!j->running)
			j->next_ms = 0;
		return 0;
	}
	j = om_calloc(1, sizeof(*j));
	if (!j)
		return ENOMEM;
	j->d = d;
	dlv_fmt(j->id, sizeof(j->id), "%s", id);
	j->done = done;
	j->arg = arg;
	for (tail = &d->jobs; *tail; tail = &(*tail)->next)
		;
	*tail = j;
	return 0;
}

int om_delivery_submit(struct om_delivery *d, const char *id, om_delivery_done_h done, void *arg)
{
	int rc;
	if (d->closing)
		return ESHUTDOWN;
	if (!om_spool_id_valid(id))
		return EINVAL;
	if ((rc = queue(d, id, done, arg)))
		return rc;
	dispatch(d);
	return 0;
}

/* ---------------------------------------------------- space and pruning */

static void check_space(struct om_delivery *d)
{
	char dir[PATH_MAX];
	struct statvfs vs;
	dlv_fmt(dir, sizeof(dir), "%s/spool", d->data_dir);
	if (statvfs(dir, &vs) != 0 && statvfs(d->data_dir, &vs) != 0)
		return; /* keep the last answer */
	uint64_t free_mb = (uint64_t)vs.f_bavail * vs.f_frsize / (1024 * 1024);
	bool room = free_mb >= d->cfg.min_free_mb;
	char fm[24], min[24];
	dlv_fmt(fm, sizeof(fm), "%llu", (unsigned long long)free_mb);
	dlv_fmt(min, sizeof(min), "%llu", (unsigned long long)d->cfg.min_free_mb);
	if (d->room_known && room != d->room) {
		if (!room)
			om_event(
			    OM_EV_SPOOL_SPACE_LOW, "server",
			    "spool file system below min_free_mb: new calls are refused, calls "
			    "in progress keep recording",
			    "spool", dir, "free_mb", fm, "min_free_mb", min, NULL);
		else
			om_event(OM_EV_SPOOL_SPACE_OK, "server",
			         "spool file system has room again: new calls are accepted",
			         "spool", dir, "free_mb", fm, "min_free_mb", min, NULL);
	} else if (!d->room_known && !room) {
		om_event(OM_EV_SPOOL_SPACE_LOW, "server",
		         "spool file system below min_free_mb: new calls are refused, calls in "
		         "progress keep recording",
		         "spool", dir, "free_mb", fm, "min_free_mb", min, NULL);
	}
	d->room = room;
	d->room_known = true;
	d->free_mb = free_mb;
}

bool om_delivery_room(struct om_delivery *d)
{
	check_space(d);
	return d->room;
}

static bool older_than(const char *path, int64_t age_ms, int64_t now)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return false;
	return (int64_t)st.st_mtime * 1000 < now - age_ms;
}

static bool has_suffix(const char *s, const char *suf, size_t *stem)
{
	size_t n = strlen(s), k = strlen(suf);
	if (n <= k || strcmp(s + n - k, suf))
		return false;
	*stem = n - k;
	return true;
}

static void remove_group(const char *dir, const char *id)
{
	static const char *const exts[] = { "json", "raw", "end", "done" };
	char path[PATH_MAX];
	for (size_t i = 0; i < 4; i++) {
		dlv_fmt(path, sizeof(path), "%s/%s.%s", dir, id, exts[i]);
		unlink(path);
	}
}

/* Delivered spools past their keeping time (at once with keep_spool = 0),
 * left-overs without metadata, stale temporary files. */
static void prune(struct om_delivery *d)
{
	char dir[PATH_MAX], path[PATH_MAX], id[OM_SPOOL_ID_MAX + 1];
	int64_t now = om_now_ms(), keep = (int64_t)d->cfg.keep_days * 86400 * 1000;
	unsigned long removed = 0;
	dlv_fmt(dir, sizeof(dir), "%s/spool", d->data_dir);
	DIR *sd = opendir(dir);
	if (sd) {
		for (struct dirent *e; (e = readdir(sd)) != NULL;) {
			size_t stem;
			if (e->d_name[0] == '.')
				continue;
			dlv_fmt(path, sizeof(path), "%s/%s", dir, e->d_name);
			if (has_suffix(e->d_name, ".done", &stem) && stem <= OM_SPOOL_ID_MAX) {
				dlv_fmt(id, sizeof(id), "%.*s", (int)stem, e->d_name);
				if (!om_spool_id_valid(id) || find_job(d, id))
					continue;
				if (!d->cfg.keep_spool || older_than(path, keep, now)) {
					remove_group(dir, id);
					removed++;
				}
			} else if ((has_suffix(e->d_name, ".raw", &stem) ||
			            has_suffix(e->d_name, ".end", &stem)) &&
			           stem <= OM_SPOOL_ID_MAX) {
				/* audio or an end marker whose metadata is gone */
				char meta[PATH_MAX];
				dlv_fmt(meta, sizeof(meta), "%s/%.*s.json", dir, (int)stem,
				        e->d_name);
				if (access(meta, F_OK) != 0 &&
				    older_than(path, 86400 * 1000LL, now) && unlink(path) == 0)
					removed++;
			} else if (strstr(e->d_name, ".tmp.") && older_than(path, STALE_MS, now)) {
				unlink(path);
			}
		}
		closedir(sd);
	}
	/* Maildir tmp/: what a crashed write left */
	dlv_fmt(dir, sizeof(dir), "%s/mail", d->data_dir);
	DIR *md = opendir(dir);
	if (md) {
		for (struct dirent *e; (e = readdir(md)) != NULL;) {
			if (e->d_name[0] == '.')
				continue;
			char tmp[PATH_MAX];
			dlv_fmt(tmp, sizeof(tmp), "%s/%s/tmp", dir, e->d_name);
			DIR *td = opendir(tmp);
			if (!td)
				continue;
			for (struct dirent *f; (f = readdir(td)) != NULL;) {
				if (f->d_name[0] == '.')
					continue;
				dlv_fmt(path, sizeof(path), "%s/%s", tmp, f->d_name);
				if (older_than(path, STALE_MS, now))
					unlink(path);
			}
			closedir(td);
		}
		closedir(md);
	}
	if (removed) {
		char n[24];
		dlv_fmt(n, sizeof(n), "%lu", removed);
		om_log(OM_LOG_INFO, "delivered spools removed", "count", n, NULL);
	}
	d->last_prune_ms = now;
}

static void on_space(uv_timer_t *t)
{
	struct om_delivery *d = t->data;
	check_space(d);
	if (om_now_ms() - d->last_prune_ms >= PRUNE_EVERY_MS)
		prune(d);
}

/* ---------------------------------------------------- life cycle */

int om_delivery_new(uv_loop_t *loop, const struct om_delivery_cfg *cfg, struct om_delivery **out,
                    char *err, size_t errlen)
{
	int rc = om_audio_format_check(cfg->format, err, errlen);
	if (rc)
		return rc;
	struct om_delivery *d = om_calloc(1, sizeof(*d));
	if (!d) {
		dlv_fmt(err, errlen, "out of memory");
		return ENOMEM;
	}
	d->loop = loop;
	copy_cfg(d, cfg);
	uv_timer_init(loop, &d->timer);
	uv_timer_init(loop, &d->space);
	d->timer.data = d->space.data = d;
	d->open_handles = 2;
	check_space(d);
	d->last_prune_ms = om_now_ms();
	uv_timer_start(&d->space, on_space, SPACE_CHECK_MS, SPACE_CHECK_MS);
	*out = d;
	return 0;
}

int om_delivery_configure(struct om_delivery *d, const struct om_delivery_cfg *cfg, char *err,
                          size_t errlen)
{
	int rc = om_audio_format_check(cfg->format, err, errlen);
	if (rc)
		return rc;
	copy_cfg(d, cfg);
	check_space(d);
	for (struct job *j = d->jobs; j; j = j->next)
		if (!j->running)
			j->next_ms = 0; /* the administrator may have fixed what failed */
	dispatch(d);
	return 0;
}

size_t om_delivery_recover(struct om_delivery *d)
{
	char dir[PATH_MAX], path[PATH_MAX], id[OM_SPOOL_ID_MAX + 1];
	size_t n = 0;
	prune(d);
	dlv_fmt(dir, sizeof(dir), "%s/spool", d->data_dir);
	DIR *sd = opendir(dir);
	if (!sd)
		return 0;
	for (struct dirent *e; (e = readdir(sd)) != NULL;) {
		size_t stem;
		if (e->d_name[0] == '.' || !has_suffix(e->d_name, ".json", &stem))
			continue;
		if (stem > OM_SPOOL_ID_MAX) {
			om_log(OM_LOG_WARNING, "spool file with an overlong name left alone",
			       "file", e->d_name, NULL);
			continue;
		}
		dlv_fmt(id, sizeof(id), "%.*s", (int)stem, e->d_name);
		if (!om_spool_id_valid(id)) {
			om_log(OM_LOG_WARNING,
			       "spool file with a name openum does not write left alone", "file",
			       e->d_name, NULL);
			continue;
		}
		dlv_fmt(path, sizeof(path), "%s/%s.done", dir, id);
		if (access(path, F_OK) == 0)
			continue;
		if (queue(d, id, NULL, NULL) == 0)
			n++;
	}
	closedir(sd);
	if (n) {
		char num[24];
		dlv_fmt(num, sizeof(num), "%zu", n);
		om_log(OM_LOG_INFO, "undelivered spools found at start", "count", num, NULL);
	}
	dispatch(d);
	return n;
}

void om_delivery_stats(struct om_delivery *d, struct om_delivery_stats *st)
{
	memset(st, 0, sizeof(*st));
	for (struct job *j = d->jobs; j; j = j->next) {
		if (j->running)
			st->running++;
		else if (j->attempts)
			st->retrying++;
		else
			st->queued++;
	}
	st->delivered = d->delivered;
	st->recovered = d->recovered;
	st->failed_attempts = d->failed_attempts;
	st->free_mb = d->free_mb;
	st->room = d->room;
}

static void on_handle_closed(uv_handle_t *h)
{
	struct om_delivery *d = h->data;
	d->open_handles--;
	maybe_closed(d);
}

void om_delivery_close(struct om_delivery *d, void (*closed_h)(void *arg), void *arg)
{
	if (!d || d->closing)
		return;
	d->closing = true;
	d->closed_h = closed_h;
	d->closed_arg = arg;
	/* queued jobs stay in the spool for the next start */
	for (struct job **p = &d->jobs; *p;) {
		struct job *j = *p;
		if (j->running) {
			p = &j->next;
			continue;
		}
		*p = j->next;
		om_free(j);
	}
	uv_close((uv_handle_t *)&d->timer, on_handle_closed);
	uv_close((uv_handle_t *)&d->space, on_handle_closed);
}
