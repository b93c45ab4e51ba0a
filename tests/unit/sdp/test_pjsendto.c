/* test_pjsendto.c — PJSIP's 99 INVITE/SDP system-test cases (shared
 * corpora, fuzzseeds/pjproject-sendto) through the SDP parser and the R3
 * mode table as a Secured plan over mutual TLS: openum's "mandatory SRTP"
 * callee. Every case must end in a definite outcome (an answer, a refusal
 * with a reason, or a parse error with a reason) and never in SRTP-less
 * media; the `--use-srtp 2` rows must give the code the manifest names,
 * except where openum's answer is documented as better (`exceptions`
 * below, and docs/modules/sdp.md).
 *
 * The corpus is found at <source root>/../shared; without it this test
 * fails (it is part of the definition of done). */
#include "ut.h"
#include "sdp/sdp.h"

#include <errno.h>
#include <stdio.h>

#ifndef OM_SHARED_DIR
#error "OM_SHARED_DIR must name <source root>/../shared"
#endif
#define CASES OM_SHARED_DIR "/corpora/fuzzseeds/pjproject-sendto"

/* Rows of the manifest where openum answers differently from PJSIP's
 * mandatory-SRTP callee, and why openum's answer is the better one. */
static const struct {
	const char *test;
	int ours;
	const char *reason;
	const char *why;
} exceptions[] = {
	{ "320_srtp2_no_crypto", 488, "no_crypto",
	  "406 means the response would violate the request's Accept headers (RFC 3261 "
	  "21.4.7); an unacceptable session description is 488 (RFC 3261 21.4.26, RFC 3264 6)" },
	{ "323_srtp2_receive_too_long_key", 488, "crypto_key_length",
	  "same: the offer's only crypto line is unusable, 488 as RFC 4568 7.1.2 and R3 say" },
	{ "323_srtp2_unsupported_crypto", 488, "crypto_unknown_suite",
	  "same: no crypto suite in common, 488" },
};

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = malloc(1 << 16);
	size_t n = buf ? fread(buf, 1, (1 << 16) - 1, f) : 0;
	fclose(f);
	if (buf)
		buf[n] = '\0';
	*len = n;
	return buf;
}

/* Replace the harness placeholders ($LOCAL_IP, ...) as PJSIP's runner does. */
static void substitute(char *s, size_t *len)
{
	static const struct {
		const char *from, *to;
	} sub[] = { { "$LOCAL_IP", "127.0.0.1" },
		    { "$LOCAL_PORT", "5060" },
		    { "$TARGET_URI", "sip:um@127.0.0.1" },
		    { "$FROM_TAG", ";tag=1" },
		    { "$CALL_ID", "c1" },
		    { "$BRANCH", "z9hG4bK1" } };
	for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
		char *p;
		size_t fl = strlen(sub[i].from), tl = strlen(sub[i].to);
		while ((p = strstr(s, sub[i].from)) != NULL) {
			memmove(p + tl, p + fl, strlen(p + fl) + 1);
			memcpy(p, sub[i].to, tl);
			*len = *len - fl + tl;
		}
	}
}

/* The SDP a case carries: a .sdp file is the body itself; a .sip message
 * has it after the blank line when its Content-Type is application/sdp; a
 * multipart .body has it in the application/sdp part. NULL: no SDP. */
static const char *sdp_of(const char *file, char *text, size_t *len)
{
	const char *ext = strrchr(file, '.');
	if (strcmp(ext, ".sdp") == 0)
		return text;
	if (strcmp(ext, ".sip") == 0) {
		char *b = strstr(text, "\r\n\r\n"), *lf = strstr(text, "\n\n");
		size_t skip = 4;
		if (!b || (lf && lf < b))
			b = lf, skip = 2;
		if (!b)
			return NULL;
		*b = '\0';
		/* Header names are case-insensitive ("C:" is Content-Type too). */
		bool sdp = strcasestr(text, "Content-Type: application/sdp") != NULL ||
		           strcasestr(text, "\nc: application/sdp") != NULL;
		b += skip;
		*len = strlen(b);
		return sdp && *len ? b : NULL;
	}
	/* multipart/mixed: the part ends at the next boundary line. */
	char *part = strstr(text, "Content-Type: application/sdp");
	if (!part)
		return NULL;
	char *b = strstr(part, "\n\n");
	char *crlf = strstr(part, "\r\n\r\n");
	if (crlf && (!b || crlf < b))
		b = crlf + 4;
	else if (b)
		b += 2;
	else
		return NULL;
	char *end = strstr(b, "\n--");
	if (end)
		end[1] = '\0';
	*len = strlen(b);
	return b;
}

UT_TEST(every_case_secured_over_tls)
{
	size_t mlen;
	char *manifest = slurp(CASES "/manifest.tsv", &mlen);
	if (!manifest)
		UT_FAIL(
		    "cannot read %s/manifest.tsv: the shared corpora must be at <source root>/../shared",
		    CASES);
	const struct om_sdp_local local = { "192.0.2.10", false, 40000, 1, 1 };
	int rows = 0, srtp2 = 0, answered = 0, refused = 0, bad = 0, nosdp = 0, excepted = 0;
	char *save = NULL;
	char *line = strtok_r(manifest, "\n", &save); /* header */
	while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
		char *f[9] = { 0 };
		char *p = line;
		for (int i = 0; i < 9 && p; i++) {
			f[i] = p;
			p = strchr(p, '\t');
			if (p)
				*p++ = '\0';
		}
		if (!f[4])
			UT_FAIL("short manifest row: %s", line);
		const char *test = f[0], *file = f[1], *args = f[4];
		int expected = atoi(f[2]);
		char path[512];
		size_t len;
		snprintf(path, sizeof(path), "%s/%s", CASES, file);
		char *text = slurp(path, &len);
		if (!text)
			UT_FAIL("cannot read %s", path);
		rows++;
		substitute(text, &len);
		const char *body = sdp_of(file, text, &len);
		int ours;
		const char *reason;
		bool srtp = false;
		struct om_buf out;
		om_buf_init(&out);
		struct om_sdp_result r;
		memset(&r, 0, sizeof(r));
		if (!body && strcmp(strrchr(file, '.'), ".body") == 0) {
			ours = 415, reason = "no_sdp_part"; /* the SIP layer's answer */
			nosdp++;
		} else {
			struct om_sdp *sdp = NULL;
			struct om_sdp_error err;
			int rc = body ? om_sdp_parse(body, len, &sdp, &err) : 0;
			if (rc != 0) {
				if (!err.reason)
					UT_FAIL("%s: parse error without a reason", test);
				ours = 400, reason = err.reason;
				bad++;
			} else {
				if (!body)
					nosdp++;
				UT_EQ_INT(0, om_sdp_mode_apply(OM_SDP_SECURED, OM_SDP_TLS, sdp,
				                               &local, &r, &out));
				if (r.kind == OM_SDP_REFUSED) {
					if (!r.reason || (r.status != 488 && r.status != 403))
						UT_FAIL("%s: refusal without a reason", test);
					ours = r.status, reason = r.reason;
					refused++;
				} else {
					/* Mandatory SRTP: never media without keys. */
					if (!r.srtp || r.proto != OM_SDP_PROTO_SAVP ||
					    !strstr(om_buf_cstr(&out), "RTP/SAVP") ||
					    !strstr(om_buf_cstr(&out), "a=crypto:"))
						UT_FAIL("%s: answer without SRTP", test);
					ours = 200,
					reason = r.kind == OM_SDP_OFFER ? "our_offer" : "answer";
					srtp = true;
					answered++;
				}
			}
			om_sdp_free(sdp);
		}
		printf("     %-50s pjsip %d  openum %d %s%s\n", test, expected, ours, reason,
		       srtp ? " (SRTP)" : "");
		if (strstr(args, "--use-srtp 2")) {
			srtp2++;
			if (ours != expected) {
				size_t i, n = sizeof(exceptions) / sizeof(exceptions[0]);
				for (i = 0; i < n; i++)
					if (strcmp(exceptions[i].test, test) == 0)
						break;
				if (i == n || exceptions[i].ours != ours ||
				    strcmp(exceptions[i].reason, reason) != 0)
					UT_FAIL(
					    "%s: PJSIP expects %d, openum gives %d %s (no documented exception)",
					    test, expected, ours, reason);
				excepted++;
			}
		}
		om_sdp_result_clear(&r);
		om_buf_free(&out);
		free(text);
	}
	free(manifest);
	printf("     %d cases: %d answered with SRTP, %d refused (488/403), %d parse errors (400), "
	       "%d without SDP; %d mandatory-SRTP rows, %d documented exceptions\n",
	       rows, answered, refused, bad, nosdp, srtp2, excepted);
	UT_EQ_INT(99, rows);
	UT_EQ_INT(6, srtp2);
	UT_EQ_INT(3, excepted);
}

/* Every case's SDP (those that parse) under every plan mode and transport:
 * a definite outcome, keys never over TCP, our SDP parses again, and the
 * whole path survives every allocation failing in turn. */
struct one {
	const char *body;
	size_t len;
	enum om_sdp_plan_mode mode;
	enum om_sdp_transport tr;
};

static int run_one(void *arg)
{
	const struct one *o = arg;
	const struct om_sdp_local local = { "2001:db8::10", true, 40000, 1, 1 };
	struct om_sdp *sdp = NULL;
	struct om_sdp_result r;
	struct om_buf out;
	int rc = om_sdp_parse(o->body, o->len, &sdp, NULL);
	if (rc != 0)
		return rc;
	om_buf_init(&out);
	rc = om_sdp_mode_apply(o->mode, o->tr, sdp, &local, &r, &out);
	if (rc == 0)
		om_sdp_result_clear(&r);
	om_buf_free(&out);
	om_sdp_free(sdp);
	return rc;
}

UT_TEST(every_case_every_mode)
{
	size_t mlen;
	char *manifest = slurp(CASES "/manifest.tsv", &mlen);
	if (!manifest)
		UT_FAIL("cannot read %s/manifest.tsv", CASES);
	const struct om_sdp_local local = { "2001:db8::10", true, 40000, 1, 1 };
	int runs = 0;
	char *save = NULL;
	char *line = strtok_r(manifest, "\n", &save);
	while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
		char *tab = strchr(line, '\t');
		char *file = tab ? tab + 1 : NULL, *end = file ? strchr(file, '\t') : NULL;
		if (!end)
			UT_FAIL("short manifest row: %s", line);
		*end = '\0';
		char path[512];
		size_t len;
		snprintf(path, sizeof(path), "%s/%s", CASES, file);
		char *text = slurp(path, &len);
		if (!text)
			UT_FAIL("cannot read %s", path);
		substitute(text, &len);
		const char *body = sdp_of(file, text, &len);
		struct om_sdp *sdp = NULL;
		if (body && om_sdp_parse(body, len, &sdp, NULL) == 0) {
			for (int m = OM_SDP_UNSECURED; m <= OM_SDP_SECURED; m++)
				for (int t = OM_SDP_TCP; t <= OM_SDP_TLS; t++) {
					struct om_sdp_result r;
					struct om_buf out;
					om_buf_init(&out);
					UT_EQ_INT(0, om_sdp_mode_apply((enum om_sdp_plan_mode)m,
					                               (enum om_sdp_transport)t,
					                               sdp, &local, &r, &out));
					if (r.kind == OM_SDP_REFUSED) {
						UT_TRUE(r.reason != NULL);
						UT_TRUE(r.status == 403 || r.status == 488);
					} else {
						struct om_sdp *again = NULL;
						UT_EQ_INT(
						    0, om_sdp_parse(out.p, out.len, &again, NULL));
						om_sdp_free(again);
					}
					if (t == OM_SDP_TCP)
						UT_TRUE(!r.srtp &&
						        !strstr(om_buf_cstr(&out), "a=crypto:"));
					if (m == OM_SDP_SECURED && r.kind != OM_SDP_REFUSED)
						UT_TRUE(r.srtp);
					om_sdp_result_clear(&r);
					om_buf_free(&out);
					struct one o = { body, len, (enum om_sdp_plan_mode)m,
						         (enum om_sdp_transport)t };
					ut_oom_sweep(run_one, &o);
					UT_EQ_INT(0, run_one(&o));
					runs++;
				}
			om_sdp_free(sdp);
		}
		free(text);
	}
	free(manifest);
	printf(
	    "     %d parse-able cases x 6 mode/transport cells, each with an out-of-memory sweep\n",
	    runs / 6);
	UT_TRUE(runs >= 6 * 80);
}

/* Every case as an Unsecured plan over TCP, in the format of the Secured
 * test above (the component test sends each case to a live server and
 * compares): an answer is plain RTP with no key in it, every refusal has a
 * reason. */
UT_TEST(every_case_unsecured_over_tcp)
{
	size_t mlen;
	char *manifest = slurp(CASES "/manifest.tsv", &mlen);
	if (!manifest)
		UT_FAIL("cannot read %s/manifest.tsv", CASES);
	const struct om_sdp_local local = { "192.0.2.10", false, 40000, 1, 1 };
	int rows = 0, answered = 0;
	char *save = NULL;
	char *line = strtok_r(manifest, "\n", &save); /* header */
	while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
		char *tab = strchr(line, '\t');
		char *file = tab ? tab + 1 : NULL, *end = file ? strchr(file, '\t') : NULL;
		if (!end)
			UT_FAIL("short manifest row: %s", line);
		*tab = *end = '\0';
		char path[512];
		size_t len;
		snprintf(path, sizeof(path), "%s/%s", CASES, file);
		char *text = slurp(path, &len);
		if (!text)
			UT_FAIL("cannot read %s", path);
		rows++;
		substitute(text, &len);
		const char *body = sdp_of(file, text, &len);
		int ours;
		const char *reason;
		struct om_buf out;
		om_buf_init(&out);
		struct om_sdp_result r;
		memset(&r, 0, sizeof(r));
		struct om_sdp *sdp = NULL;
		struct om_sdp_error err;
		if (!body && strcmp(strrchr(file, '.'), ".body") == 0) {
			ours = 415, reason = "no_sdp_part";
		} else if (body && om_sdp_parse(body, len, &sdp, &err) != 0) {
			ours = 400, reason = err.reason;
		} else {
			UT_EQ_INT(0, om_sdp_mode_apply(OM_SDP_UNSECURED, OM_SDP_TCP, sdp, &local,
			                               &r, &out));
			if (r.kind == OM_SDP_REFUSED) {
				UT_TRUE(r.reason != NULL && r.status == 488);
				ours = r.status, reason = r.reason;
			} else {
				UT_TRUE(!r.srtp && strstr(om_buf_cstr(&out), "RTP/AVP") &&
				        !strstr(om_buf_cstr(&out), "a=crypto"));
				ours = 200,
				reason = r.kind == OM_SDP_OFFER ? "our_offer" : "answer";
				answered++;
			}
		}
		printf("     %-50s openum %d %s\n", line, ours, reason ? reason : "-");
		om_sdp_free(sdp);
		om_sdp_result_clear(&r);
		om_buf_free(&out);
		free(text);
	}
	free(manifest);
	printf("     %d cases, %d answered with plain RTP\n", rows, answered);
	UT_EQ_INT(99, rows);
}

UT_MAIN(UT_CASE(every_case_secured_over_tls), UT_CASE(every_case_every_mode),
        UT_CASE(every_case_unsecured_over_tcp))
