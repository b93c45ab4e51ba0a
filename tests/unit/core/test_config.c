/* test_config.c — openum.conf: every key, errors with file:line, bounds,
 * and an out-of-memory sweep. */
#include "ut.h"
#include "core/config.h"
#include "core/log.h"
#include "core/str.h"

#include <errno.h>
#include <string.h>

static struct om_config *parse_ok(const char *text)
{
	struct om_config *c = NULL;
	char err[256] = "";
	int rc = om_config_parse(text, strlen(text), "t.conf", &c, err, sizeof(err));
	if (rc)
		UT_FAIL("parse failed: %s", err);
	return c;
}

static void parse_err(const char *text, const char *expect)
{
	struct om_config *c = NULL;
	char err[256] = "";
	int rc = om_config_parse(text, strlen(text), "t.conf", &c, err, sizeof(err));
	if (rc != EINVAL)
		UT_FAIL("accepted: %s", text);
	if (!strstr(err, expect))
		UT_FAIL("error \"%s\" lacks \"%s\"", err, expect);
}

UT_TEST(defaults)
{
	struct om_config *c = parse_ok("");
	UT_EQ_INT(2, c->n_sip_tcp);
	UT_EQ_STR("0.0.0.0", c->sip_tcp[0].host);
	UT_EQ_INT(5060, c->sip_tcp[0].port);
	UT_EQ_STR("::", c->sip_tcp[1].host);
	UT_EQ_INT(5061, c->sip_tls[1].port);
	UT_EQ_INT(0, c->start_secured);
	UT_EQ_INT(12, c->tls_min_version);
	UT_EQ_INT(2, c->tls_security_level);
	UT_EQ_INT(1, c->auto_selfsigned);
	UT_EQ_INT(90, c->events_keep_days);
	UT_EQ_INT(20000, c->rtp_port_min);
	UT_TRUE(c->fqdn[0] != '\0');
	om_config_free(c);
}

UT_TEST(every_key)
{
	struct om_config *c = parse_ok("# comment\n"
	                               "; also a comment\n"
	                               "[server]\n"
	                               "  fqdn = um1.example.com  \n"
	                               "sip_tcp = 127.0.0.1:5070, [::1]:5070\n"
	                               "sip_tls = off\n"
	                               "sip_advertise = 192.0.2.10\n"
	                               "media_address = 192.0.2.11\n"
	                               "start_secured = 1\n"
	                               "rtp_ports = 30000-30100\n"
	                               "media_threads = 3\n"
	                               "max_calls = 250\n"
	                               "tls_min_version = 1.3\n"
	                               "tls_security_level = 3\n"
	                               "strict_eku = yes\n"
	                               "auto_selfsigned = 0\n"
	                               "srtp_backend = libsrtp2\n"
	                               "events_keep_days = 7\n"
	                               "recordings_keep_days = 14\n"
	                               "events_interval = 5\n"
	                               "log_level = debug\n");
	UT_EQ_STR("um1.example.com", c->fqdn);
	UT_EQ_INT(2, c->n_sip_tcp);
	UT_EQ_STR("::1", c->sip_tcp[1].host);
	UT_EQ_INT(5070, c->sip_tcp[1].port);
	UT_EQ_INT(0, c->n_sip_tls);
	UT_EQ_STR("192.0.2.10", c->sip_advertise);
	UT_EQ_STR("192.0.2.11", c->media_address);
	UT_EQ_INT(1, c->start_secured);
	UT_EQ_INT(30000, c->rtp_port_min);
	UT_EQ_INT(30100, c->rtp_port_max);
	UT_EQ_INT(3, c->media_threads);
	UT_EQ_INT(250, c->max_calls);
	UT_EQ_INT(13, c->tls_min_version);
	UT_EQ_INT(3, c->tls_security_level);
	UT_EQ_INT(1, c->strict_eku);
	UT_EQ_INT(0, c->auto_selfsigned);
	UT_EQ_INT(OM_CFG_SRTP_LIBSRTP2, c->srtp_backend);
	UT_EQ_INT(7, c->events_keep_days);
	UT_EQ_INT(14, c->recordings_keep_days);
	UT_EQ_INT(5, c->events_interval);
	UT_EQ_INT(OM_LOG_DEBUG, c->log_level);
	char s[128];
	om_config_listen_str(c->sip_tcp, c->n_sip_tcp, s, sizeof(s));
	UT_EQ_STR("127.0.0.1:5070,[::1]:5070", s);
	om_config_free(c);
}

UT_TEST(default_text_is_valid_and_complete)
{
	const char *t = om_config_default_text();
	struct om_config *c = parse_ok(t);
	om_config_free(c);
	const char *keys[] = { "fqdn",
		               "sip_tcp",
		               "sip_tls",
		               "sip_advertise",
		               "media_address",
		               "start_secured",
		               "rtp_ports",
		               "media_threads",
		               "max_calls",
		               "tls_min_version",
		               "tls_security_level",
		               "strict_eku",
		               "auto_selfsigned",
		               "srtp_backend",
		               "events_keep_days",
		               "recordings_keep_days" };
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char pat[64];
		snprintf(pat, sizeof(pat), "#%s =", keys[i]);
		if (!strstr(t, pat))
			UT_FAIL("default text lacks %s", keys[i]);
	}
}

UT_TEST(errors_name_line)
{
	parse_err("[server]\nfoo = 1\n", "t.conf:2: unknown key 'foo'");
	parse_err("fqdn = a.example\n", "t.conf:1: 'fqdn' is outside a section");
	parse_err("[server]\n\n[client]\n", "t.conf:3: unknown section [client]");
	parse_err("[server\n", "t.conf:1: section header must be [name]");
	parse_err("[server]\nmax_calls = 1\nmax_calls = 2\n",
	          "t.conf:3: 'max_calls' is set twice (first at line 2)");
	parse_err("[server]\nmax_calls = 0\n", "t.conf:2: max_calls must be 1 to 100000");
	parse_err("[server]\nmax_calls = 99999999999999999999999\n", "max_calls must be");
	parse_err("[server]\nmax_calls = -1\n", "max_calls must be");
	parse_err("[server]\nsip_tcp = 5060\n", "ADDRESS:PORT");
	parse_err("[server]\nsip_tcp = localhost:5060\n", "not an IPv4 address");
	parse_err("[server]\nsip_tcp = [::1:5060\n", "[ADDRESS]:PORT");
	parse_err("[server]\nsip_tcp = [zz::1]:5060\n", "not an IPv6 address");
	parse_err("[server]\nsip_tcp = 127.0.0.1:0\n", "port must be 1-65535");
	parse_err("[server]\nsip_tls = 1.1.1.1:1,1.1.1.1:2,1.1.1.1:3,1.1.1.1:4,1.1.1.1:5\n",
	          "at most 4");
	parse_err("[server]\nstart_secured = true\n", "start_secured must be 0 or 1");
	parse_err("[server]\ntls_min_version = 1.0\n", "1.2 or 1.3");
	parse_err("[server]\ntls_security_level = 6\n", "0 to 5");
	parse_err("[server]\nstrict_eku = perhaps\n", "strict_eku must be 0 or 1");
	parse_err("[server]\nrtp_ports = 20000\n", "rtp_ports must be");
	parse_err("[server]\nrtp_timeout = 2\n", "rtp_timeout must be");
	parse_err("[server]\nspool_flush_ms = 1000\n", "spool_flush_ms must be");
	parse_err("[server]\nspool_sync_ms = 60000\n", "spool_sync_ms must be");
	parse_err("[server]\nrtp_ports = 80-90\n", "rtp_ports must be");
	parse_err("[server]\nfqdn = -bad.example\n", "fqdn must be a host name");
	parse_err("[server]\nfqdn = 192.0.2.1\n", "fqdn must be a host name");
	parse_err("[server]\nmedia_address = um.example.com\n", "media_address must be an IP");
	parse_err("[server]\nlog_level = loud\n", "log_level must be");
	parse_err("[server]\naudio_format = aac\n", "audio_format must be wav, mp3 or opus");
	parse_err("[server]\nkeep_spool = 2\n", "keep_spool must be 0 or 1");
	parse_err("[server]\ndelivery_retry_s = 0\n", "delivery_retry_s must be 1 to 3600");
	parse_err("[server]\nnoequals\n", "t.conf:2: expected key = value");
}

UT_TEST(nul_and_size_bounds)
{
	struct om_config *c = NULL;
	char err[256];
	const char t[] = "[server]\nfqdn = a\0b.example\n";
	UT_EQ_INT(EINVAL, om_config_parse(t, sizeof(t) - 1, "t.conf", &c, err, sizeof(err)));
	UT_TRUE(strstr(err, "t.conf:2: NUL") != NULL);
	size_t big = OM_CONFIG_MAX_BYTES + 1;
	char *b = om_malloc(big);
	memset(b, '#', big);
	UT_EQ_INT(EINVAL, om_config_parse(b, big, "t.conf", &c, err, sizeof(err)));
	om_free(b);
	char longv[1024] = "[server]\nfqdn = ";
	memset(longv + strlen(longv), 'a', 600);
	UT_EQ_INT(EINVAL, om_config_parse(longv, strlen(longv), "t.conf", &c, err, sizeof(err)));
	UT_TRUE(strstr(err, "too long") != NULL);
}

/* The front door's budgets: handshakes below max_connections, an IPv6
 * prefix per peer, the handshake deadline, the source check. */
UT_TEST(front_door_keys)
{
	struct om_config *c = parse_ok("");
	UT_EQ_INT(64, c->peer_ipv6_prefix);
	UT_EQ_INT(8, c->max_handshakes_per_peer);
	UT_EQ_INT(5, c->tls_handshake_timeout);
	UT_EQ_INT(0, c->tls_source_check);
	UT_EQ_INT(128, om_config_max_handshakes(c)); /* 1024 / 4, at most 128 */
	om_config_free(c);
	c = parse_ok("[server]\nmax_connections = 100\n");
	UT_EQ_INT(25, om_config_max_handshakes(c));
	om_config_free(c);
	c = parse_ok("[server]\nmax_connections = 2\n");
	UT_EQ_INT(1, om_config_max_handshakes(c));
	om_config_free(c);
	c = parse_ok("[server]\npeer_ipv6_prefix = 56\nmax_handshakes = 500\n"
	             "max_handshakes_per_peer = 3\ntls_handshake_timeout = 2\n"
	             "tls_source_check = 1\n");
	UT_EQ_INT(56, c->peer_ipv6_prefix);
	UT_EQ_INT(500, om_config_max_handshakes(c));
	UT_EQ_INT(3, c->max_handshakes_per_peer);
	UT_EQ_INT(2, c->tls_handshake_timeout);
	UT_EQ_INT(1, c->tls_source_check);
	om_config_free(c);
	parse_err("[server]\nmax_connections = 100\nmax_handshakes = 100\n",
	          "t.conf:3: max_handshakes (100) must be below max_connections (100)");
	parse_err("[server]\npeer_ipv6_prefix = 8\n", "peer_ipv6_prefix must be 16 to 128");
	parse_err("[server]\ntls_handshake_timeout = 0\n", "tls_handshake_timeout must be 1");
	parse_err("[server]\nmax_handshakes_per_peer = 0\n", "max_handshakes_per_peer must be 1");
	parse_err("[server]\ntls_source_check = 2\n", "tls_source_check must be 0 or 1");
	const char *t = om_config_default_text();
	const char *keys[] = { "peer_ipv6_prefix", "max_handshakes", "max_handshakes_per_peer",
		               "tls_handshake_timeout", "tls_source_check" };
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char pat[64];
		snprintf(pat, sizeof(pat), "#%s =", keys[i]);
		if (!strstr(t, pat))
			UT_FAIL("default text lacks %s", keys[i]);
	}
}

/* A value other than the default for every key. */
static const struct {
	const char *key, *value, *shown;
} other_values[] = {
	{ "fqdn", "um9.example.com", "um9.example.com" },
	{ "sip_tcp", "127.0.0.1:5070", "127.0.0.1:5070" },
	{ "sip_tls", "off", "(none)" },
	{ "sip_advertise", "192.0.2.10", "192.0.2.10" },
	{ "media_address", "192.0.2.11", "192.0.2.11" },
	{ "start_secured", "1", "1" },
	{ "rtp_ports", "30000-30100", "30000-30100" },
	{ "media_threads", "3", "3" },
	{ "max_calls", "250", "250" },
	{ "tls_min_version", "1.3", "1.3" },
	{ "tls_security_level", "3", "3" },
	{ "strict_eku", "yes", "1" },
	{ "auto_selfsigned", "0", "0" },
	{ "srtp_backend", "libsrtp2", "libsrtp2" },
	{ "events_keep_days", "7", "7" },
	{ "recordings_keep_days", "14", "14" },
	{ "events_interval", "5", "5" },
	{ "log_level", "debug", "debug" },
	{ "tcp_idle_timeout", "30", "30" },
	{ "sip_message_timeout", "3", "3" },
	{ "max_connections", "10", "10" },
	{ "max_connections_per_peer", "2", "2" },
	{ "dns_servers", "127.0.0.1:5353", "127.0.0.1:5353" },
	{ "audio_format", "OPUS", "opus" },
	{ "keep_spool", "no", "0" },
	{ "min_free_mb", "5", "5" },
	{ "delivery_retry_s", "2", "2" },
	{ "peer_ipv6_prefix", "56", "56" },
	{ "max_handshakes", "100", "100" },
	{ "max_handshakes_per_peer", "3", "3" },
	{ "tls_handshake_timeout", "2", "2" },
	{ "tls_source_check", "1", "1" },
	{ "rtp_timeout", "60", "60" },
	{ "spool_flush_ms", "100", "100" },
	{ "spool_sync_ms", "1000", "1000" },
	{ "max_calls_per_second", "7", "7" },
	{ "answer_delay_ms", "250", "250" },
	{ "session_expires", "600", "600" },
	{ "min_se", "120", "120" },
	{ "sip_t1", "100", "100" },
	{ "metrics_listen", "off", "(none)" },
	{ "silence_timeout", "0", "0" },
	{ "silence_threshold", "50", "-50" },
	{ "min_message_seconds", "3", "3" },
	{ "input_timeout", "8", "8" },
	{ "input_failures", "1", "1" },
	{ "drain_timeout", "10", "10" },
};

/* A reload names every key that changed, old and new value, and nothing
 * else; the list has no separator after its last item. */
UT_TEST(diff_names_every_key)
{
	struct om_config *def = parse_ok("[server]\nfqdn = um1.example.com\n");
	size_t nkeys = om_config_key_count();
	UT_TRUE(nkeys >= 23);
	UT_TRUE(om_config_key_name(nkeys) == NULL);
	for (size_t i = 0; i < nkeys; i++) {
		const char *k = om_config_key_name(i);
		size_t j;
		char text[512], want[1400], v[600];
		UT_EQ_INT(0, om_config_value_str(def, i, v, sizeof(v)));
		for (j = 0; j < sizeof(other_values) / sizeof(other_values[0]); j++)
			if (!strcmp(other_values[j].key, k))
				break;
		if (j == sizeof(other_values) / sizeof(other_values[0]))
			UT_FAIL("key %s: add a value other than its default to other_values", k);
		snprintf(text, sizeof(text), "[server]\n%s%s = %s\n",
		         strcmp(k, "fqdn") ? "fqdn = um1.example.com\n" : "", k,
		         other_values[j].value);
		struct om_config *c = parse_ok(text);
		struct om_buf b;
		om_buf_init(&b);
		UT_EQ_INT(1, om_config_diff(def, c, &b));
		snprintf(want, sizeof(want), "%s %s -> %s%s", k, v[0] ? v : "(none)",
		         other_values[j].shown,
		         om_config_key_needs_restart(i) ? " (takes effect at restart)" : "");
		UT_EQ_STR(want, om_buf_cstr(&b));
		om_buf_free(&b);
		om_config_free(c);
	}
	/* two changes: one separator between them, none at the end */
	struct om_config *c = parse_ok("[server]\nfqdn = um1.example.com\nstrict_eku = 1\n"
	                               "events_interval = 5\n");
	struct om_buf b;
	om_buf_init(&b);
	UT_EQ_INT(2, om_config_diff(def, c, &b));
	UT_EQ_STR("strict_eku 0 -> 1; events_interval 60 -> 5", om_buf_cstr(&b));
	UT_EQ_INT(0, om_config_diff(c, c, &b));
	om_buf_free(&b);
	om_config_free(c);
	om_config_free(def);
}

static int parse_all(void *arg)
{
	struct om_config *c = NULL;
	char err[256];
	const char *t = arg;
	int rc = om_config_parse(t, strlen(t), "t.conf", &c, err, sizeof(err));
	om_config_free(c);
	return rc;
}

UT_TEST(oom_sweep)
{
	unsigned long runs = ut_oom_sweep(parse_all, (void *)om_config_default_text());
	UT_TRUE(runs >= 2);
	runs = ut_oom_sweep(parse_all, "[server]\nfoo = 1\n");
	UT_TRUE(runs >= 2);
}

/* metrics_listen: one ADDRESS:PORT (loopback by default) or off. */
UT_TEST(metrics_listen)
{
	struct om_config *c = parse_ok("[server]\n");
	UT_EQ_INT(1, (int)c->n_metrics_listen);
	UT_EQ_STR("127.0.0.1", c->metrics_listen[0].host);
	UT_EQ_INT(9474, c->metrics_listen[0].port);
	om_config_free(c);
	c = parse_ok("[server]\nmetrics_listen = [::1]:9100\n");
	UT_EQ_STR("::1", c->metrics_listen[0].host);
	om_config_free(c);
	c = parse_ok("[server]\nmetrics_listen = off\n");
	UT_EQ_INT(0, (int)c->n_metrics_listen);
	om_config_free(c);
	char err[256];
	struct om_config *bad = NULL;
	const char *t = "[server]\nmetrics_listen = 127.0.0.1:1,127.0.0.1:2\n";
	UT_EQ_INT(EINVAL, om_config_parse(t, strlen(t), "x.conf", &bad, err, sizeof(err)));
	UT_TRUE(strstr(err, "x.conf:2: metrics_listen takes one") != NULL);
	t = "[server]\nmetrics_listen = localhost:9100\n";
	UT_EQ_INT(EINVAL, om_config_parse(t, strlen(t), "x.conf", &bad, err, sizeof(err)));
}

/* The default text's header names exactly the keys a reload cannot change. */
UT_TEST(header_names_the_keys_that_need_a_restart)
{
	const char *t = om_config_default_text();
	const char *end = strstr(t, "\n[server]");
	UT_TRUE(end != NULL);
	UT_TRUE(strstr(t, "restart openum after changing") != NULL);
	size_t n = 0;
	for (size_t i = 0; i < om_config_key_count(); i++) {
		const char *k = om_config_key_name(i);
		size_t kl = strlen(k);
		bool named = false;
		for (const char *p = t; (p = strstr(p, k)) && p < end; p += kl)
			if ((p == t || !(p[-1] == '_' || (p[-1] >= 'a' && p[-1] <= 'z'))) &&
			    !(p[kl] == '_' || (p[kl] >= 'a' && p[kl] <= 'z')))
				named = true;
		if (named != om_config_key_needs_restart(i))
			UT_FAIL("key %s: %s in the header, but %s a restart", k,
			        named ? "named" : "not named",
			        om_config_key_needs_restart(i) ? "needs" : "does not need");
		n += named;
	}
	UT_TRUE(n >= 10);
	/* a reload's report says so too */
	struct om_config *a = parse_ok("[server]\nfqdn = um1.example.com\n");
	struct om_config *b = parse_ok("[server]\nfqdn = um1.example.com\nmax_connections = 9\n"
	                               "max_calls = 7\n");
	struct om_buf d;
	om_buf_init(&d);
	UT_EQ_INT(2, om_config_diff(a, b, &d));
	UT_EQ_STR("max_calls 100 -> 7; max_connections 1024 -> 9 (takes effect at restart)",
	          om_buf_cstr(&d));
	om_buf_free(&d);
	om_config_free(a);
	om_config_free(b);
}

UT_MAIN(UT_CASE(defaults), UT_CASE(every_key), UT_CASE(diff_names_every_key),
        UT_CASE(header_names_the_keys_that_need_a_restart),
        UT_CASE(default_text_is_valid_and_complete), UT_CASE(errors_name_line),
        UT_CASE(nul_and_size_bounds), UT_CASE(front_door_keys), UT_CASE(oom_sweep),
        UT_CASE(metrics_listen))
