/* conntest.h — the connectivity test of `openum test-connectivity`: one
 * call placed the way an IP gateway places it, checked step by step
 * (resolve, TCP connect, the mutual TLS handshake, OPTIONS, INVITE → 200
 * with the security the server applied, RTP/SRTP from the server that is
 * not silence, DTMF acknowledged by the server, BYE). Built on the test UAC
 * (uac.h, RFC 3261) and the test RTP endpoint (rtp.h, RFC 3550/3711/4733).
 *
 * Test calls carry `X-Openum-Test: connectivity` (with `;deliver` and
 * `;echo-dtmf` when asked): openum answers the reserved extension
 * OM_CONNTEST_EXTENSION with a short prompt and, with `echo-dtmf`, echoes
 * every digit it receives in an INFO; a test call to a real mailbox is
 * recorded but never delivered unless `deliver` is given. */
#ifndef OM_TESTCALL_CONNTEST_H
#define OM_TESTCALL_CONNTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "sdp/sdp.h"

/* The Request-URI user of the server's diagnostic extension. */
#define OM_CONNTEST_EXTENSION   "openum-test"
/* The header that flags a test call, and its parameters. */
#define OM_CONNTEST_HEADER      "X-Openum-Test"
/* The header openum's 200 carries on a test call: the dial plan's mode. */
#define OM_CONNTEST_MODE_HEADER "X-Openum-Security-Mode"

struct om_conntest_step;

struct om_conntest_opts {
	const char *host;               /* the server: DNS name or numeric address */
	uint16_t port;                  /* its SIP port */
	bool secured;                   /* mutual TLS (else TCP) */
	bool media_secured;             /* offer RTP/SAVP with a=crypto (else RTP/AVP) */
	enum om_sdp_crypto_suite suite; /* offer only this suite (0: every suite) */
	/* Mutual TLS (borrowed): our certificate (+ chain, may be NULL), its
	 * key, the roots the server's certificate must chain to. */
	X509 *cert;
	STACK_OF(X509) * chain;
	EVP_PKEY *key;
	X509_STORE *ca;
	const char *tls_name;  /* the name the server's certificate must carry */
	const char *extension; /* the called mailbox; NULL: OM_CONNTEST_EXTENSION */
	const char *domain;    /* the host part of the Request-URI (default tls_name or host) */
	bool deliver;          /* a test call to a mailbox is delivered */
	const char *dtmf;      /* digits to send (NULL: none), 0-9 * # A-D */
	int timeout_ms;        /* the longest wait of each step */
	/* What the caller says (8 kHz mono linear PCM, borrowed); NULL: a
	 * 1.5 s 440 Hz tone. */
	const int16_t *audio;
	size_t audio_samples;
	const char *bind;      /* our source address (NULL: the system's choice) */
	const char *from_user; /* the caller's number in From (default "test") */
	/* Test hook: the server's SRTP key is altered before use, so that
	 * nothing it sends authenticates. */
	bool hook_bad_srtp_key;
	/* Called as each step ends (also for skipped ones), in order. */
	void (*step_h)(const struct om_conntest_step *s, void *arg);
	void *arg;
};

enum om_conntest_step_id {
	OM_CT_RESOLVE = 0,
	OM_CT_CONNECT,
	OM_CT_TLS,
	OM_CT_OPTIONS,
	OM_CT_INVITE,
	OM_CT_MEDIA,
	OM_CT_DTMF,
	OM_CT_BYE,
	OM_CT_NSTEPS,
};

enum om_conntest_result {
	OM_CT_NOT_REACHED = 0, /* an earlier step failed */
	OM_CT_OK,
	OM_CT_FAILED,
	OM_CT_SKIPPED, /* not asked for (no --secured, no --dtmf) */
};

/* One fact of a step: a string, a number or a boolean. */
struct om_conntest_kv {
	const char *key;
	enum { OM_CT_STR, OM_CT_NUM, OM_CT_BOOL } type;
	int64_t num;
	char str[320];
};

#define OM_CT_MAX_KV 16

struct om_conntest_step {
	enum om_conntest_step_id id;
	const char
	    *name; /* "resolve", "connect", "tls", "options", "invite", "media", "dtmf", "bye" */
	enum om_conntest_result result;
	int64_t latency_ms;
	char reason[512]; /* FAILED / SKIPPED: why, precisely */
	char action[512]; /* FAILED: what to do */
	struct om_conntest_kv kv[OM_CT_MAX_KV];
	size_t nkv;
};

struct om_conntest_report {
	struct om_conntest_step step[OM_CT_NSTEPS];
	int failed; /* the failing step's id, -1 when all passed */
};

/* Runs the test. Always fills r (every step, in order). Returns 0 when
 * every step passed or was skipped, else 1 (r->failed names the step). */
int om_conntest_run(const struct om_conntest_opts *o, struct om_conntest_report *r);

const char *om_conntest_result_name(enum om_conntest_result r);

/* Reads an audio file (any format libsndfile reads), mixes it to mono and
 * converts it to 8 kHz (libsamplerate); at most max_s seconds. *pcm is
 * om_free'd by the caller. 0 or errno with err filled. */
int om_conntest_load_audio(const char *path, unsigned max_s, int16_t **pcm, size_t *n, char *err,
                           size_t errlen);

#endif
