/* server.c — the server process. One libuv loop (the control thread of
 * DESIGN.md); listeners and call handling hang off it in later modules.
 *
 * Reload is validate-then-swap: the new configuration (and, with the
 * directory, the new snapshot) is built aside; on any error the old one
 * stays, event 1181 says why, and the CLI is told.
 *
 * A secured start (R9) takes the certificate the cert module's manager
 * selects, pins or generates (R7; events 1114/1115/1122/1123/1125) and
 * builds the TLS context from it and the trusted store. Every reload of a
 * secured server re-applies the manager and builds a new context aside:
 * new handshakes use it, open connections keep their session and are
 * re-checked against the new trust (R8 beyond). */
#include "app/server.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/ctl.h"
#include "core/events.h"
#include "core/log.h"
#include "core/str.h"
#include "app/metrics.h"
#include "app/resolve.h"
#include "app/sipd.h"
#include "delivery/delivery.h"
#include "cert/cert.h"
#include "tls/tls.h"
#include "directory/db.h"
#include "directory/directory.h"
#include "directory/eventlog.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>
#include <uv.h>

struct server {
	const struct om_server_opts *opts;
	uv_loop_t loop;
	uv_signal_t sig_term, sig_int, sig_hup;
	uv_timer_t tick;
	uv_timer_t watchdog; /* systemd WatchdogSec: WATCHDOG=1 every half period */
	struct om_ctl_server *ctl;
	struct om_db *db;
	struct om_config *cfg;
	struct om_dir_snapshot *dir; /* the directory as the server uses it */
	struct om_sipd *sipd;
	struct om_delivery *delivery; /* spools → Maildir, off the loop */
	uv_timer_t dns_timer;         /* re-resolve gateway FQDNs when their TTL runs out */
	struct om_resolver *resolver; /* gateway FQDNs, on the loop */
	struct om_cert_mgr *certs;    /* secured: the certificate in use */
	struct om_tls_ctx *tls;       /* secured: the context for new handshakes */
	struct om_metrics *metrics;   /* Prometheus (metrics_listen) and status */
	int64_t last_watch_ms;
	bool secured;
	const char *mode_why;
	int64_t started_ms;
	int64_t last_prune_ms;
	unsigned long reloads, reloads_rejected;
	unsigned long generation;
	bool draining;      /* stopping: handles closing */
	bool drain_started; /* SIGTERM: calls finish first (drain_timeout) */
	const char *drain_why;
	uv_timer_t drain_poll; /* the deliveries of the drained calls */
	int64_t drain_deadline;
	char ctl_path[4096];
};

bool om_server_decide_secured(int n_plans, int n_secured_plans, bool start_secured,
                              const char **why)
{
	if (n_secured_plans > 0) {
		*why = "an associated dial plan is SIPSecured or Secured";
		return true;
	}
	if (n_plans > 0) {
		*why = "every associated dial plan is Unsecured";
		return false;
	}
	*why = start_secured ? "no dial plan associated; start_secured = 1"
	                     : "no dial plan associated; start_secured = 0";
	return start_secured;
}

/* `openum server set --fqdn` (the directory) overrides openum.conf's fqdn;
 * cfg then holds the name in force, for every user of it. */
static void apply_directory_fqdn(struct om_config *cfg, const struct om_dir_snapshot *dir)
{
	const struct om_dir_server *srv = dir ? om_dir_snapshot_server(dir) : NULL;
	if (srv && srv->fqdn[0])
		snprintf(cfg->fqdn, sizeof(cfg->fqdn), "%s", srv->fqdn);
}

/* The dial plans associated with this server, from a directory snapshot
 * (R9: one secured plan is enough for a secured start). */
static void decide_mode(const struct om_dir_snapshot *dir, const struct om_config *cfg,
                        bool *secured, const char **why)
{
	int n = dir ? (int)om_dir_snapshot_server_plan_count(dir) : 0;
	int nsec = dir && om_dir_snapshot_server_secured(dir) ? 1 : 0;
	*secured = om_server_decide_secured(n, nsec, cfg->start_secured, why);
}

static void log_mode(struct server *s)
{
	char tcp[256], tls[256];
	om_config_listen_str(s->cfg->sip_tcp, s->cfg->n_sip_tcp, tcp, sizeof(tcp));
	om_config_listen_str(s->cfg->sip_tls, s->cfg->n_sip_tls, tls, sizeof(tls));
	if (s->secured)
		om_event(OM_EV_START_SECURED, "server", "the service started in secured mode",
		         "reason", s->mode_why, "fqdn", s->cfg->fqdn, "sip_tcp", tcp, "sip_tls",
		         tls, NULL);
	else
		om_event(OM_EV_START_UNSECURED, "server", "the service started unsecured", "reason",
		         s->mode_why, "fqdn", s->cfg->fqdn, "sip_tcp", tcp, NULL);
}

/* ----------------------------------------------------- TLS context */

/* The pin comes from the directory (`openum server set --certificate`). */
static void cert_policy(const struct om_config *cfg, const struct om_dir_snapshot *dir,
                        struct om_cert_policy *pol)
{
	const struct om_dir_server *srv = dir ? om_dir_snapshot_server(dir) : NULL;
	memset(pol, 0, sizeof(*pol));
	pol->fqdn = cfg->fqdn;
	pol->auto_selfsigned = cfg->auto_selfsigned;
	pol->key = OM_CERT_KEY_EC;
	pol->tls_security_level = cfg->tls_security_level;
	pol->pin = srv && srv->pinned_certificate[0] ? srv->pinned_certificate : NULL;
}

/* The certificate in use (selected, pinned or generated) and the trusted
 * store as a new TLS context, aside: nothing is swapped here. */
static int build_tls(struct server *s, const struct om_config *cfg,
                     const struct om_dir_snapshot *dir, struct om_tls_ctx **out, char *err,
                     size_t errlen)
{
	struct om_cert_policy pol;
	X509_STORE *st = NULL;
	int rc;
	cert_policy(cfg, dir, &pol);
	if (!s->certs) {
		rc = om_cert_mgr_new(s->opts->data_dir, &pol, &s->certs);
		if (rc) {
			snprintf(err, errlen, "certificate store: %s", strerror(rc));
			return rc;
		}
	}
	rc = om_cert_mgr_apply(s->certs, &pol, om_now_ms());
	if (rc) {
		/* the manager's own words: the real cause and what to do */
		snprintf(err, errlen, "no usable certificate for TLS: %s",
		         om_cert_mgr_error(s->certs)[0] ? om_cert_mgr_error(s->certs)
		                                        : strerror(rc));
		return rc;
	}
	const struct om_cert *c = om_cert_mgr_current(s->certs);
	rc = om_cert_store_x509(om_cert_mgr_store(s->certs), &st);
	if (rc) {
		snprintf(err, errlen, "trusted store: %s", strerror(rc));
		return rc;
	}
	struct om_tls_opts o = { .min_version = cfg->tls_min_version,
		                 .security_level = cfg->tls_security_level };
	char why[256] = "";
	/* the chain in issuer order, completed from the trusted store */
	rc = om_tls_ctx_new(&o, c->x509, om_cert_mgr_chain(s->certs), c->key, st, out, why,
	                    sizeof(why));
	if (rc)
		snprintf(err, errlen, "TLS context with certificate %s: %s", c->sha1, why);
	X509_STORE_free(st);
	return rc;
}

static void on_peer_cert(X509 *x, const char *gateway, void *arg)
{
	struct server *s = arg;
	if (s->certs)
		om_cert_watch_peer(s->certs, x, gateway, om_now_ms());
	if (s->metrics)
		om_metrics_peer_cert(s->metrics, gateway, om_cert_asn1_ms(X509_get0_notAfter(x)));
}

/* What a scrape reads (metrics.c): the modules' stats, at the moment. */
static void metrics_collect(struct om_metrics_input *in, void *arg)
{
	struct server *s = arg;
	in->secured = s->secured;
	in->started_ms = s->started_ms;
	in->generation = s->generation;
	in->reloads = s->reloads;
	in->reloads_rejected = s->reloads_rejected;
	in->max_calls = s->cfg->max_calls;
	in->sipd = s->sipd;
	in->delivery = s->delivery;
	in->certs = s->secured ? s->certs : NULL;
}

/* The metrics endpoint for the configuration and certificate in force. */
static void metrics_apply(struct server *s)
{
	char err[512];
	const struct om_cert *c = s->secured && s->certs ? om_cert_mgr_current(s->certs) : NULL;
	if (!s->metrics)
		return;
	om_metrics_configure(s->metrics,
	                     s->cfg->n_metrics_listen ? &s->cfg->metrics_listen[0] : NULL,
	                     c ? c->x509 : NULL, c ? om_cert_mgr_chain(s->certs) : NULL,
	                     c ? c->key : NULL, s->cfg->tls_min_version, err, sizeof(err));
}

/* Secured: the TLS listeners with the context (started once; later calls
 * swap the context). */
static int start_tls(struct server *s, struct om_tls_ctx *ctx, char *err, size_t errlen)
{
	struct om_tls_ctx *old = s->tls;
	s->tls = ctx;
	om_tls_ctx_free(old);
	if (!s->sipd || !s->cfg->n_sip_tls)
		return 0;
	om_sipd_set_peer_cert_hook(s->sipd, on_peer_cert, s);
	return om_sipd_tls_start(s->sipd, s->cfg, ctx, err, errlen);
}

static int load_config(struct server *s, struct om_config **out, char *err, size_t errlen)
{
	return om_config_load(s->opts->config_path, !s->opts->config_explicit, out, err, errlen);
}

static void apply_config_globals(const struct om_config *cfg)
{
	om_log_set_level((enum om_level)cfg->log_level);
	om_events_set_interval((int64_t)cfg->events_interval * 1000);
}

/* The delivery engine's settings from openum.conf; EINVAL for a format
 * name config.c let through but delivery does not know (never: same
 * list). */
static int delivery_cfg(const struct server *s, const struct om_config *cfg,
                        struct om_delivery_cfg *dc)
{
	memset(dc, 0, sizeof(*dc));
	dc->data_dir = s->opts->data_dir;
	dc->fqdn = cfg->fqdn;
	dc->keep_days = cfg->recordings_keep_days;
	dc->keep_spool = cfg->keep_spool;
	dc->min_free_mb = cfg->min_free_mb;
	dc->retry_min_s = cfg->delivery_retry_s;
	dc->retry_max_s = 3600;
	return om_audio_format_parse(cfg->audio_format, &dc->format);
}

static void on_dns_timer(uv_timer_t *t);

/* Gateway FQDNs: a round of lookups ended. The snapshot in force is
 * copied with the fresh addresses and swapped in without a reload event:
 * nothing an administrator changed is applied (a change made with
 * --no-reload waits for the reload). */
static void on_resolved(struct om_resolver *r, void *arg)
{
	struct server *s = arg;
	struct om_dir_snapshot *dir = NULL;
	if (s->draining)
		return;
	if (om_dir_snapshot_copy(s->dir, &dir) == 0) {
		om_resolver_apply(r, dir);
		struct om_dir_snapshot *old = s->dir;
		s->dir = dir;
		if (s->sipd)
			om_sipd_set_snapshot(s->sipd, dir); /* re-checks live connections */
		om_dir_snapshot_free(old);
	} else {
		om_log(OM_LOG_WARNING, "gateway addresses not refreshed: out of memory", NULL);
	}
	uint64_t next = om_resolver_next_ms(r);
	if (next && !om_resolver_busy(r))
		uv_timer_start(&s->dns_timer, on_dns_timer, next, 0);
}

static void on_dns_timer(uv_timer_t *t)
{
	struct server *s = t->data;
	if (s->resolver && !s->draining)
		om_resolver_start(s->resolver, s->dir, 3000);
}

/* One item of the reload report: items are separated by "; ". */
static void change(struct om_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void change(struct om_buf *b, const char *fmt, ...)
{
	va_list ap;
	if (b->len)
		om_buf_adds(b, "; ");
	va_start(ap, fmt);
	om_buf_vprintf(b, fmt, ap);
	va_end(ap);
}

static const char *changes_text(struct om_buf *b)
{
	const char *t = b->len ? om_buf_cstr(b) : "none";
	return t ? t : "(not listed: out of memory)";
}

/* Returns 0 and swaps, or an errno with err filled (old config kept). The
 * report names every change: the certificate, the mode, every
 * openum.conf key (om_config_diff) and every directory change
 * (om_dir_snapshot_diff). */
static int do_reload(struct server *s, char *err, size_t errlen, struct om_buf *changes)
{
	struct om_config *next = NULL;
	int rc = load_config(s, &next, err, errlen);
	if (rc) {
		s->reloads_rejected++;
		om_event(OM_EV_RELOAD_REJECTED, "server",
		         "reload rejected (the old configuration stays)", "error", err, NULL);
		return rc;
	}
	struct om_dir_snapshot *dir = NULL;
	struct om_dir_err derr = { "" };
	rc = om_dir_snapshot_build(s->db, &dir, &derr);
	if (rc) {
		snprintf(err, errlen, "directory: %s", derr.msg);
		om_config_free(next);
		s->reloads_rejected++;
		om_event(OM_EV_RELOAD_REJECTED, "server",
		         "reload rejected (the old configuration stays)", "error", err, NULL);
		return rc;
	}
	struct om_delivery_cfg dc;
	if (delivery_cfg(s, next, &dc) || om_audio_format_check(dc.format, err, errlen)) {
		om_dir_snapshot_free(dir);
		om_config_free(next);
		s->reloads_rejected++;
		om_event(OM_EV_RELOAD_REJECTED, "server",
		         "reload rejected (the old configuration stays)", "error", err, NULL);
		return ENOTSUP;
	}
	/* Gateway FQDNs: the last good answers at once; fresh ones when the
	 * round started after the swap ends (never waited for here). */
	if (s->resolver)
		om_resolver_apply(s->resolver, dir);
	bool secured;
	const char *why;
	apply_directory_fqdn(next, dir);
	decide_mode(dir, next, &secured, &why);
	struct om_tls_ctx *tls = NULL;
	if (secured) {
		const struct om_cert *before = s->certs ? om_cert_mgr_current(s->certs) : NULL;
		char before_sha1[41] = "";
		if (before)
			snprintf(before_sha1, sizeof(before_sha1), "%s", before->sha1);
		rc = build_tls(s, next, dir, &tls, err, errlen);
		if (rc) {
			om_dir_snapshot_free(dir);
			om_config_free(next);
			s->reloads_rejected++;
			om_event(OM_EV_RELOAD_REJECTED, "server",
			         "reload rejected (the old configuration stays)", "error", err,
			         NULL);
			return rc;
		}
		const struct om_cert *now = om_cert_mgr_current(s->certs);
		if (strcmp(before_sha1, now->sha1))
			change(changes, "certificate %s -> %s",
			       before_sha1[0] ? before_sha1 : "none", now->sha1);
		/* a trusted CA or CRL added or removed (issue 18: a removal
		 * shows like an addition) */
		if (om_cert_mgr_trust_changes(s->certs)[0])
			change(changes, "%s", om_cert_mgr_trust_changes(s->certs));
		/* the watch, also for what this reload brought (once a day) */
		om_cert_watch_tick(s->certs, om_now_ms());
	}
	if (secured != s->secured)
		change(changes, "mode %s -> %s", s->secured ? "secured" : "unsecured",
		       secured ? "secured" : "unsecured");
	/* every openum.conf key, then every directory change */
	om_config_diff(s->cfg, next, changes); /* says which take effect at restart */
	om_dir_snapshot_diff(s->dir, dir, changes);
	struct om_config *old = s->cfg;
	struct om_dir_snapshot *old_dir = s->dir;
	s->cfg = next;
	s->dir = dir; /* the swap: readers holding a reference keep the old one */
	if (s->sipd) {
		om_sipd_set_config(s->sipd, s->cfg);
		om_sipd_set_snapshot(s->sipd, dir); /* re-checks live connections */
	}
	om_dir_snapshot_free(old_dir);
	if (s->resolver) {
		uv_timer_stop(&s->dns_timer);
		om_resolver_set_servers(s->resolver, s->cfg->dns_servers);
		om_resolver_start(s->resolver, s->dir, 3000);
	}
	if (tls) {
		char terr[512] = "";
		/* New handshakes take the new context; open TLS connections
		 * are re-checked against its trusted store. */
		if (start_tls(s, tls, terr, sizeof(terr)) != 0) {
			change(changes, "TLS listener: %s", terr);
			om_log(OM_LOG_ERROR, "cannot start the TLS listener", "error", terr, NULL);
		}
		if (!s->sipd || !s->cfg->n_sip_tls)
			change(changes, "no TLS listener (sip_tls or SIP service missing)");
	}
	s->secured = secured;
	s->mode_why = why;
	s->generation++;
	s->reloads++;
	om_config_free(old);
	apply_config_globals(s->cfg);
	if (s->delivery) {
		/* checked above; also retries failed deliveries at once */
		delivery_cfg(s, s->cfg, &dc);
		om_delivery_configure(s->delivery, &dc, err, errlen);
	}
	metrics_apply(s);
	om_event(OM_EV_RELOAD_APPLIED, "server", "reload applied", "config", s->cfg->path, "mode",
	         s->secured ? "secured" : "unsecured", "changes", changes_text(changes), NULL);
	return 0;
}

static void status_json(struct server *s, struct om_buf *r)
{
	char started[40], tcp[256], tls[256];
	om_time_format(s->started_ms, started, sizeof(started));
	om_config_listen_str(s->cfg->sip_tcp, s->cfg->n_sip_tcp, tcp, sizeof(tcp));
	om_config_listen_str(s->cfg->sip_tls, s->cfg->n_sip_tls, tls, sizeof(tls));
	om_buf_printf(r, "{\"ok\":true,\"state\":\"%s\",\"pid\":%ld,\"version\":\"%s\",",
	              s->draining || s->drain_started ? "draining" : "running", (long)getpid(),
	              OM_VERSION);
	om_buf_printf(r, "\"mode\":\"%s\",\"mode_reason\":", s->secured ? "secured" : "unsecured");
	om_buf_json_str(r, s->mode_why);
	om_buf_adds(r, ",\"fqdn\":");
	om_buf_json_str(r, s->cfg->fqdn);
	om_buf_adds(r, ",\"config\":");
	om_buf_json_str(r, s->cfg->path);
	om_buf_adds(r, ",\"data\":");
	om_buf_json_str(r, s->opts->data_dir);
	om_buf_adds(r, ",\"sip_tcp\":");
	om_buf_json_str(r, tcp);
	om_buf_adds(r, ",\"sip_tls\":");
	om_buf_json_str(r, s->secured ? tls : "");
	om_buf_printf(r,
	              ",\"started\":\"%s\",\"uptime_s\":%lld,\"reloads\":%lu,"
	              "\"reloads_rejected\":%lu,\"generation\":%lu,\"max_calls\":%u",
	              started, (long long)((om_now_ms() - s->started_ms) / 1000), s->reloads,
	              s->reloads_rejected, s->generation, s->cfg->max_calls);
	/* the directory snapshot in use */
	om_buf_printf(r,
	              ",\"directory\":{\"generation\":%llu,\"dialplans\":%zu,\"gateways\":%zu,"
	              "\"mailboxes\":%zu}",
	              (unsigned long long)om_dir_snapshot_generation(s->dir),
	              om_dir_snapshot_dialplan_count(s->dir), om_dir_snapshot_gateway_count(s->dir),
	              om_dir_snapshot_mailbox_count(s->dir));
	if (s->sipd)
		om_sipd_status_json(s->sipd, r);
	if (s->delivery) {
		struct om_delivery_stats st;
		om_delivery_stats(s->delivery, &st);
		om_buf_printf(r,
		              ",\"delivery\":{\"queued\":%zu,\"running\":%zu,\"retrying\":%zu,"
		              "\"delivered\":%lu,\"recovered\":%lu,\"failed_attempts\":%lu,"
		              "\"audio_format\":\"%s\",\"spool_free_mb\":%llu,\"room\":%s}",
		              st.queued, st.running, st.retrying, st.delivered, st.recovered,
		              st.failed_attempts, s->cfg->audio_format,
		              (unsigned long long)st.free_mb,
		              om_delivery_room(s->delivery) ? "true" : "false");
	}
	const struct om_cert *c = s->certs ? om_cert_mgr_current(s->certs) : NULL;
	if (c && s->secured) {
		char na[40];
		int64_t d = c->not_after_ms - om_now_ms();
		long long left = d >= 0 ? d / 86400000 : -((-d + 86399999) / 86400000);
		om_time_format(c->not_after_ms, na, sizeof(na));
		om_buf_adds(r, ",\"certificate\":{\"sha1\":");
		om_buf_json_str(r, c->sha1);
		om_buf_adds(r, ",\"subject\":");
		om_buf_json_str(r, c->subject ? c->subject : "");
		om_buf_printf(r, ",\"not_after\":\"%s\",\"days_left\":%lld,\"kind\":\"%s\"}", na,
		              left, c->self_signed ? "self-signed" : "ca-issued");
	}
	/* The trusted certificate (root or intermediate) that expires first:
	 * once it has, the gateways it vouches for are refused. */
	const struct om_cert_store *ts = s->certs ? om_cert_mgr_store(s->certs) : NULL;
	const struct om_cert *tn = NULL;
	for (size_t i = 0; ts && s->secured && i < om_cert_store_count(ts, OM_CERT_TRUSTED); i++) {
		const struct om_cert *t = om_cert_store_at(ts, OM_CERT_TRUSTED, i);
		if (!tn || t->not_after_ms < tn->not_after_ms)
			tn = t;
	}
	if (tn) {
		char na[40];
		int64_t d = tn->not_after_ms - om_now_ms();
		long long left = d >= 0 ? d / 86400000 : -((-d + 86399999) / 86400000);
		om_time_format(tn->not_after_ms, na, sizeof(na));
		om_buf_adds(r, ",\"trusted_expiry\":{\"sha1\":");
		om_buf_json_str(r, tn->sha1);
		om_buf_adds(r, ",\"subject\":");
		om_buf_json_str(r, tn->subject ? tn->subject : "");
		om_buf_printf(r,
		              ",\"not_after\":\"%s\",\"days_left\":%lld,\"kind\":\"%s\","
		              "\"trusted\":%zu}",
		              na, left, tn->self_signed ? "root" : "intermediate",
		              om_cert_store_count(ts, OM_CERT_TRUSTED));
	}
	if (s->metrics)
		om_metrics_status_json(s->metrics, r);
	om_buf_adds(r, "}");
}

static void on_ctl(const char *cmd, struct om_buf *r, void *arg)
{
	struct server *s = arg;
	if (!strcmp(cmd, "status")) {
		status_json(s, r);
	} else if (!strcmp(cmd, "calls")) {
		if (s->sipd)
			om_sipd_calls_json(s->sipd, r);
		else
			om_buf_adds(r, "{\"calls\":[],\"count\":0}");
	} else if (!strcmp(cmd, "reload")) {
		char err[512] = "";
		struct om_buf changes;
		om_buf_init(&changes);
		sd_notify(0, "RELOADING=1");
		if (do_reload(s, err, sizeof(err), &changes) == 0) {
			om_buf_printf(
			    r, "{\"ok\":true,\"generation\":%lu,\"mode\":\"%s\",\"changes\":",
			    s->generation, s->secured ? "secured" : "unsecured");
			om_buf_json_str(r, changes_text(&changes));
			om_buf_adds(r, "}");
		} else {
			om_buf_adds(r, "{\"ok\":false,\"error\":");
			om_buf_json_str(r, err);
			om_buf_adds(r, "}");
		}
		om_buf_free(&changes);
		sd_notify(0, "READY=1");
	} else {
		om_buf_adds(r, "{\"ok\":false,\"error\":\"unknown command\"}");
	}
}

static void on_walk_close(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void close_the_rest(void *arg)
{
	struct server *s = arg;
	uv_walk(&s->loop, on_walk_close, NULL);
}

static void begin_shutdown(struct server *s, const char *why)
{
	if (s->draining)
		return;
	s->draining = true;
	sd_notify(0, "STOPPING=1");
	om_log(OM_LOG_INFO, "stopping", "reason", why, NULL);
	/* Running deliveries finish; queued ones stay in the spool. Calls get
	 * our BYE; the rest is closed once the media engine's threads have
	 * ended (they signal the loop until then). */
	om_sipd_set_delivery(s->sipd, NULL);
	om_delivery_close(s->delivery, NULL, NULL);
	s->delivery = NULL;
	om_metrics_free(s->metrics);
	s->metrics = NULL;
	om_ctl_server_close(s->ctl);
	s->ctl = NULL;
	om_resolver_close(s->resolver); /* its handles, with their memory */
	s->resolver = NULL;
	uv_timer_stop(&s->tick);
	struct om_sipd *d = s->sipd;
	s->sipd = NULL;
	om_sipd_close_then(d, close_the_rest, s);
}

/* The drained calls' messages: stop once they are delivered (30 s at
 * most; what is left stays in the spool for the next start). */
static void on_drain_poll(uv_timer_t *t)
{
	struct server *s = t->data;
	struct om_delivery_stats st = { 0 };
	if (s->delivery)
		om_delivery_stats(s->delivery, &st);
	if (s->delivery && st.queued + st.running > 0 && om_mono_ms() < s->drain_deadline)
		return;
	uv_timer_stop(t);
	begin_shutdown(s, s->drain_why);
}

static void calls_drained(void *arg)
{
	struct server *s = arg;
	if (s->draining)
		return;
	s->drain_deadline = om_mono_ms() + 30000;
	uv_timer_start(&s->drain_poll, on_drain_poll, 0, 100);
}

/* SIGTERM/SIGINT: no new calls (503), calls in progress finish and are
 * delivered (drain_timeout, then our BYE), then the stop. The signal
 * again stops at once. */
static void begin_drain(struct server *s, const char *why)
{
	if (s->draining)
		return;
	if (s->drain_started || !s->sipd) {
		begin_shutdown(s, why);
		return;
	}
	s->drain_started = true;
	s->drain_why = why;
	sd_notify(0, "STOPPING=1");
	char t[24];
	snprintf(t, sizeof(t), "%u", s->cfg->drain_timeout);
	om_log(OM_LOG_INFO,
	       "draining: calls in progress finish first (the signal again stops at once)",
	       "reason", why, "drain_timeout_s", t, NULL);
	om_sipd_drain(s->sipd, s->cfg->drain_timeout * 1000, calls_drained, s);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct server *s = h->data;
	if (signum == SIGHUP) {
		char err[512];
		struct om_buf changes;
		om_buf_init(&changes);
		do_reload(s, err, sizeof(err), &changes);
		om_buf_free(&changes);
		return;
	}
	begin_drain(s, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* systemd's watchdog (sd_watchdog_enabled(3)): when the service manager
 * set WATCHDOG_USEC for this process, a timer on the control loop sends
 * WATCHDOG=1 every half period, so a stuck loop gets the service
 * restarted. Nothing happens without it. */
static void on_watchdog(uv_timer_t *t)
{
	sd_notify(0, "WATCHDOG=1");
}

static void start_watchdog(struct server *s)
{
	uint64_t usec = 0;
	uv_timer_init(&s->loop, &s->watchdog);
	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return;
	uint64_t ms = usec / 2000 ? usec / 2000 : 1;
	char num[24];
	snprintf(num, sizeof(num), "%llu", (unsigned long long)ms);
	uv_timer_start(&s->watchdog, on_watchdog, 0, ms);
	om_log(OM_LOG_INFO, "systemd watchdog", "interval_ms", num, NULL);
}

static void prune(struct server *s)
{
	int64_t now = om_now_ms();
	long n = om_eventlog_prune(s->db, now - (int64_t)s->cfg->events_keep_days * 86400000LL);
	if (n > 0) {
		char num[24];
		snprintf(num, sizeof(num), "%ld", n);
		om_log(OM_LOG_INFO, "old events pruned", "count", num, NULL);
	}
	s->last_prune_ms = now;
}

static void on_tick(uv_timer_t *t)
{
	struct server *s = t->data;
	om_events_flush(0);
	if (om_now_ms() - s->last_prune_ms >= 3600 * 1000)
		prune(s);
	/* R8: the watch raises each warning once per UTC day; an hourly call
	 * catches the day change soon enough. */
	if (s->certs && om_now_ms() - s->last_watch_ms >= 3600 * 1000) {
		om_cert_watch_tick(s->certs, om_now_ms());
		s->last_watch_ms = om_now_ms();
	}
}

int om_server_run(const struct om_server_opts *opts)
{
	struct server s;
	char err[1024];
	int rc, code = 1;
	memset(&s, 0, sizeof(s));
	s.opts = opts;
	s.started_ms = om_now_ms();
	umask(077);
	signal(SIGPIPE, SIG_IGN);

	rc = om_server_check_store(opts->data_dir, opts->config_path, err, sizeof(err));
	if (rc) {
		om_log(OM_LOG_ERROR, "the store is not private to the service", "error", err, NULL);
		fprintf(stderr, "openum: error: %s\n", err);
		return 1;
	}
	rc = om_db_open(opts->data_dir, 0, &s.db, err, sizeof(err));
	if (rc) {
		om_log(OM_LOG_ERROR, "cannot open the store", "error", err, NULL);
		fprintf(stderr, "openum: error: %s\n", err);
		return 1;
	}
	rc = load_config(&s, &s.cfg, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "openum: error: %s\n", err);
		om_db_free(s.db);
		return 1;
	}
	{
		struct om_dir_err derr = { "" };
		if (om_dir_snapshot_build(s.db, &s.dir, &derr)) {
			fprintf(stderr, "openum: error: the directory cannot be used: %s\n",
			        derr.msg);
			om_config_free(s.cfg);
			om_db_free(s.db);
			return 1;
		}
	}
	apply_config_globals(s.cfg);
	om_events_set_sink(om_eventlog_sink, s.db);
	prune(&s);

	if (uv_loop_init(&s.loop) != 0) {
		fprintf(stderr, "openum: error: cannot create the event loop\n");
		goto out;
	}
	snprintf(s.ctl_path, sizeof(s.ctl_path), "%s/control.sock", opts->data_dir);
	rc = om_ctl_server_start(&s.loop, s.ctl_path, on_ctl, &s, &s.ctl);
	if (rc) {
		fprintf(stderr, "openum: error: control socket %s: %s\n", s.ctl_path,
		        rc == EADDRINUSE ? "another openum serve is running on this store"
		                         : strerror(rc));
		uv_walk(&s.loop, on_walk_close, NULL);
		uv_run(&s.loop, UV_RUN_DEFAULT);
		uv_loop_close(&s.loop);
		goto out;
	}
	apply_directory_fqdn(s.cfg, s.dir);
	decide_mode(s.dir, s.cfg, &s.secured, &s.mode_why);
	log_mode(&s);
	{
		/* deliveries: the format checked (sf_format_check), then every
		 * spool a crash or a full disk left is delivered */
		struct om_delivery_cfg dc;
		if (delivery_cfg(&s, s.cfg, &dc) ||
		    om_delivery_new(&s.loop, &dc, &s.delivery, err, sizeof(err)) != 0) {
			fprintf(stderr, "openum: error: %s\n", err);
			om_log(OM_LOG_ERROR, "cannot start deliveries", "error", err, NULL);
			begin_shutdown(&s, "start failed");
			uv_run(&s.loop, UV_RUN_DEFAULT);
			uv_loop_close(&s.loop);
			goto out;
		}
		om_delivery_recover(s.delivery);
	}

	uv_signal_init(&s.loop, &s.sig_term);
	uv_signal_init(&s.loop, &s.sig_int);
	uv_signal_init(&s.loop, &s.sig_hup);
	s.sig_term.data = s.sig_int.data = s.sig_hup.data = &s;
	uv_signal_start(&s.sig_term, on_signal, SIGTERM);
	uv_signal_start(&s.sig_int, on_signal, SIGINT);
	uv_signal_start(&s.sig_hup, on_signal, SIGHUP);
	uv_timer_init(&s.loop, &s.tick);
	s.tick.data = &s;
	uv_timer_start(&s.tick, on_tick, 1000, 1000);
	uv_timer_init(&s.loop, &s.drain_poll);
	s.drain_poll.data = &s;
	start_watchdog(&s);
	uv_timer_init(&s.loop, &s.dns_timer);
	s.dns_timer.data = &s;
	if (om_resolver_new(&s.loop, on_resolved, &s, &s.resolver) != 0) {
		fprintf(stderr, "openum: error: cannot start the DNS resolver\n");
		om_log(OM_LOG_ERROR, "cannot start the DNS resolver", NULL);
		begin_shutdown(&s, "start failed");
		uv_run(&s.loop, UV_RUN_DEFAULT);
		uv_loop_close(&s.loop);
		goto out;
	}
	om_resolver_set_servers(s.resolver, s.cfg->dns_servers);
	/* Gateway FQDNs before the listeners open, so a gateway named by its
	 * FQDN is recognised from its first connection. The loop runs meanwhile
	 * (control socket, signals, watchdog); a round lasts 3 s at most. */
	if (om_resolver_start(s.resolver, s.dir, 3000))
		while (om_resolver_busy(s.resolver) && !s.draining)
			uv_run(&s.loop, UV_RUN_ONCE);
	if (s.draining) {
		uv_run(&s.loop, UV_RUN_DEFAULT);
		uv_loop_close(&s.loop);
		om_events_flush(1);
		code = 0;
		goto out;
	}

	struct om_tls_ctx *tls = NULL;
	if (s.secured) {
		/* R9: a secured start needs a certificate (R7). */
		if (build_tls(&s, s.cfg, s.dir, &tls, err, sizeof(err)) != 0) {
			fprintf(stderr, "openum: error: secured start: %s\n", err);
			om_log(OM_LOG_ERROR, "cannot start secured", "error", err, NULL);
			begin_shutdown(&s, "start failed");
			uv_run(&s.loop, UV_RUN_DEFAULT);
			uv_loop_close(&s.loop);
			goto out;
		}
		om_cert_watch_tick(s.certs, om_now_ms());
		s.last_watch_ms = om_now_ms();
	}
	if ((s.cfg->n_sip_tcp || (tls && s.cfg->n_sip_tls)) &&
	    om_sipd_new(&s.loop, s.cfg, s.opts->data_dir, &s.sipd, err, sizeof(err)) != 0) {
		om_tls_ctx_free(tls);
		fprintf(stderr, "openum: error: %s\n", err);
		om_log(OM_LOG_ERROR, "cannot start SIP", "error", err, NULL);
		begin_shutdown(&s, "start failed");
		uv_run(&s.loop, UV_RUN_DEFAULT);
		uv_loop_close(&s.loop);
		goto out;
	}
	if (s.sipd) {
		om_sipd_set_snapshot(s.sipd, s.dir);
		om_sipd_set_delivery(s.sipd, s.delivery);
	}
	if (tls && start_tls(&s, tls, err, sizeof(err)) != 0) {
		fprintf(stderr, "openum: error: %s\n", err);
		om_log(OM_LOG_ERROR, "cannot start SIP over TLS", "error", err, NULL);
		begin_shutdown(&s, "start failed");
		uv_run(&s.loop, UV_RUN_DEFAULT);
		uv_loop_close(&s.loop);
		goto out;
	}

	/* Metrics last: they read what runs. A failure is logged, never fatal. */
	if (om_metrics_new(&s.loop, opts->data_dir, metrics_collect, &s, &s.metrics) == 0)
		metrics_apply(&s);
	sd_notifyf(0, "READY=1\nSTATUS=%s, control socket %s", s.secured ? "secured" : "unsecured",
	           s.ctl_path);
	om_log(OM_LOG_INFO, "ready", "control", s.ctl_path, "mode",
	       s.secured ? "secured" : "unsecured", NULL);
	uv_run(&s.loop, UV_RUN_DEFAULT);
	uv_loop_close(&s.loop);
	om_events_flush(1);
	om_log(OM_LOG_INFO, "stopped", NULL);
	code = 0;
out:
	om_tls_ctx_free(s.tls);
	om_cert_mgr_free(s.certs);
	om_events_set_sink(NULL, NULL);
	om_config_free(s.cfg);
	om_dir_snapshot_free(s.dir);
	om_db_free(s.db);
	return code;
}
