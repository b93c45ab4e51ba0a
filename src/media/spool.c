/* spool.c — the spool writer thread: the only place recorded audio touches
 * the disk (R11 "nothing lost").
 *
 * For each recording: SPOOL/<id>.json is written atomically first (temporary
 * file, fsync, rename, fsync of the folder; 0600), then SPOOL/<id>.raw is
 * created (O_EXCL, 0600; the folder synced so the name survives a crash)
 * and audio chunks are written at their place on the timeline (pwrite:
 * signed 16-bit little-endian, 8 kHz, mono). Each file gets fdatasync at
 * least every spool_sync_ms while it changes, and once more at the end.
 *
 * A write error (ENOSPC on a full disk, EIO) stops that recording only:
 * what was written stays (a torn last sample is cut off), the media thread
 * sees the `failed` flag at its next tick and ends the recording, and the
 * control thread gets RECORD_STOPPED with the error. Other recordings go
 * on. The writer may block on the disk; the media threads never wait for
 * it (they only push to its queue). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/file.h"
#include "core/log.h"
#include "media/media_int.h"

struct spool {
	uv_thread_t tid;
	bool started;
	uv_loop_t loop;
	uv_async_t async;
	uv_timer_t timer;
	struct om_mq q;
	char *dir;
	unsigned sync_ms;
	om_media_write_h wh;
	void *warg;
	struct om_mq *events;
	uv_async_t *events_async;
	struct spool_rec *open;
	struct evnode done;
	atomic_size_t queued; /* W_DATA bytes pushed and not yet written */
};

static void to_control(struct spool *sp, struct evnode *n)
{
	om_mq_push(sp->events, &n->node);
	uv_async_send(sp->events_async);
}

static int64_t now_ms(struct spool *sp)
{
	return (int64_t)uv_now(&sp->loop);
}

static void fail(struct spool_rec *r, int err)
{
	if (!r->error)
		r->error = err;
	atomic_store_explicit(&r->failed, 1, memory_order_release);
}

static void rec_sync(struct spool *sp, struct spool_rec *r)
{
	if (r->fd >= 0 && r->dirty) {
		if (fdatasync(r->fd) != 0)
			fail(r, errno);
		r->dirty = false;
	}
	r->last_sync = now_ms(sp);
}

static void do_open(struct spool *sp, struct spool_rec *r)
{
	r->last_sync = now_ms(sp);
	r->next = sp->open;
	sp->open = r;
	int err = om_file_write_atomic(r->json_path, r->meta, r->meta_len, 0600);
	if (err) {
		fail(r, err);
		return;
	}
	r->fd = open(r->raw_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (r->fd < 0) {
		fail(r, errno);
		return;
	}
	if ((err = om_fsync_dir(sp->dir)) != 0)
		fail(r, err);
}

static void do_write(struct spool *sp, struct wmsg *m)
{
	struct spool_rec *r = m->rec;
	if (r->fd < 0 || atomic_load_explicit(&r->failed, memory_order_relaxed) || m->n == 0)
		return;
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	for (uint32_t i = 0; i < m->n; i++)
		m->pcm[i] = (int16_t)__builtin_bswap16((uint16_t)m->pcm[i]);
#endif
	const char *p = (const char *)m->pcm;
	size_t len = (size_t)m->n * 2, done = 0;
	off_t off = (off_t)(m->pos * 2);
	while (done < len) {
		ssize_t w = sp->wh
		                ? sp->wh(r->fd, p + done, len - done, off + (off_t)done, sp->warg)
		                : pwrite(r->fd, p + done, len - done, off + (off_t)done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int err = w < 0 ? errno : ENOSPC;
			uint64_t end = (uint64_t)off + done;
			if (end > r->size) {
				/* Keep whole samples only. */
				if (end & 1) {
					end--;
					(void)ftruncate(r->fd, (off_t)end);
				}
				r->size = end;
			}
			r->dirty = true;
			rec_sync(sp, r);
			fail(r, err);
			return;
		}
		done += (size_t)w;
	}
	if ((uint64_t)off + len > r->size)
		r->size = (uint64_t)off + len;
	r->dirty = true;
	if (now_ms(sp) - r->last_sync >= (int64_t)sp->sync_ms)
		rec_sync(sp, r);
}

static void rec_free(struct spool_rec *r)
{
	om_free(r->json_path);
	om_free(r->raw_path);
	om_free(r->meta);
	om_free(r->open_msg);
	om_free(r->close_msg);
	om_free(r);
}

static void do_close(struct spool *sp, struct spool_rec *r)
{
	for (struct spool_rec **pp = &sp->open; *pp; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	}
	if (r->fd >= 0) {
		if (r->dirty && fdatasync(r->fd) != 0 && !r->error)
			r->error = errno;
		if (close(r->fd) != 0 && !r->error)
			r->error = errno;
		r->fd = -1;
	}
	struct evnode *n = r->stopped;
	n->ev.u.record.bytes = r->size;
	n->ev.u.record.audio_ms = r->audio_ms;
	n->ev.u.record.voiced_ms = r->voiced_ms;
	n->ev.u.record.error = r->error ? r->error : r->media_error;
	if (n->ev.u.record.error)
		om_log(OM_LOG_WARNING, "recording ended with an error", "file", r->raw_path,
		       "error", strerror(n->ev.u.record.error), NULL);
	r->stopped = NULL;
	rec_free(r);
	to_control(sp, n);
}

static void writer_closed(uv_handle_t *h)
{
	(void)h;
}

static void on_msgs(uv_async_t *h)
{
	struct spool *sp = h->data;
	struct om_mq_node *n = om_mq_take(&sp->q);
	while (n) {
		struct wmsg *m = (struct wmsg *)n;
		n = n->next;
		switch (m->type) {
		case W_OPEN:
			do_open(sp, m->rec);
			break;
		case W_DATA:
			do_write(sp, m);
			atomic_fetch_sub_explicit(&sp->queued, (size_t)m->n * 2,
			                          memory_order_relaxed);
			om_free(m);
			break;
		case W_CLOSE:
			do_close(sp, m->rec); /* frees m with the recording */
			break;
		case W_FORWARD:
			to_control(sp, m->fwd); /* m lives in the session */
			break;
		case W_QUIT:
			uv_close((uv_handle_t *)&sp->async, writer_closed);
			uv_close((uv_handle_t *)&sp->timer, writer_closed);
			break;
		}
	}
}

static void on_timer(uv_timer_t *h)
{
	struct spool *sp = h->data;
	int64_t now = now_ms(sp);
	for (struct spool_rec *r = sp->open; r; r = r->next)
		if (r->dirty && now - r->last_sync >= (int64_t)sp->sync_ms)
			rec_sync(sp, r);
}

static void writer_main(void *arg)
{
	struct spool *sp = arg;
	pthread_setname_np(pthread_self(), "om-spool");
	uv_run(&sp->loop, UV_RUN_DEFAULT);
	(void)uv_loop_close(&sp->loop);
	/* Recordings still open (their sessions could not say goodbye) are
	 * synced and closed; none should be left. */
	while (sp->open) {
		struct spool_rec *r = sp->open;
		sp->open = r->next;
		if (r->fd >= 0) {
			(void)fdatasync(r->fd);
			close(r->fd);
		}
		om_free(r->stopped);
		rec_free(r);
	}
	sp->done.kind = EVK_WRITER_DONE;
	to_control(sp, &sp->done);
}

int om_media_spool_new(const char *dir, unsigned sync_ms, om_media_write_h wh, void *warg,
                       struct om_mq *events, uv_async_t *events_async, struct spool **out)
{
	struct spool *sp = om_calloc(1, sizeof(*sp));
	if (!sp)
		return ENOMEM;
	if (!(sp->dir = om_strdup(dir))) {
		om_free(sp);
		return ENOMEM;
	}
	sp->sync_ms = sync_ms;
	sp->wh = wh;
	sp->warg = warg;
	sp->events = events;
	sp->events_async = events_async;
	int err = uv_loop_init(&sp->loop);
	if (err)
		goto fail;
	uv_async_init(&sp->loop, &sp->async, on_msgs);
	sp->async.data = sp;
	uv_timer_init(&sp->loop, &sp->timer);
	sp->timer.data = sp;
	unsigned period = sync_ms / 4 ? sync_ms / 4 : 1;
	if (period > 1000)
		period = 1000;
	uv_timer_start(&sp->timer, on_timer, period, period);
	if ((err = uv_thread_create(&sp->tid, writer_main, sp)) != 0) {
		uv_close((uv_handle_t *)&sp->async, NULL);
		uv_close((uv_handle_t *)&sp->timer, NULL);
		uv_run(&sp->loop, UV_RUN_DEFAULT);
		uv_loop_close(&sp->loop);
		goto fail;
	}
	sp->started = true;
	*out = sp;
	return 0;
fail:
	om_free(sp->dir);
	om_free(sp);
	return -err;
}

size_t om_media_spool_queued(struct spool *sp)
{
	return atomic_load_explicit(&sp->queued, memory_order_relaxed);
}

void om_media_spool_send(struct spool *sp, struct wmsg *m)
{
	if (m->type == W_DATA)
		atomic_fetch_add_explicit(&sp->queued, (size_t)m->n * 2, memory_order_relaxed);
	om_mq_push(&sp->q, &m->node);
	uv_async_send(&sp->async);
}

void om_media_spool_free(struct spool *sp)
{
	if (!sp)
		return;
	if (sp->started)
		uv_thread_join(&sp->tid);
	om_free(sp->dir);
	om_free(sp);
}
