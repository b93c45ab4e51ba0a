/* test_sip_corpora.c — every RFC 4475 (49) and RFC 5118 (12) torture
 * message through the parser, the validator and the getters, checked field
 * by field against the table below (written from the messages and the
 * RFCs' text; where the RFC and manifest.tsv differ the RFC wins, see
 * docs/modules/sip.md). Also an out-of-memory sweep over several of them.
 *
 * The corpora are read from <source root>/../shared; when they are missing
 * the test fails. */
#include "ut.h"
#include "sip/sip.h"

#include "core/str.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef OM_SHARED_DIR
#error "OM_SHARED_DIR must point at ../shared"
#endif

/* ------------------------------------------------------------------ */

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = malloc(n > 0 ? (size_t)n : 1);
	if (b && n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		b = NULL;
	}
	fclose(f);
	*len = n > 0 ? (size_t)n : 0;
	return b;
}

static char *corpus_file(const char *dir, const char *name, size_t *len)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/corpora/%s/%s.dat", OM_SHARED_DIR, dir, name);
	return read_file(path, len);
}

/* ------------------------------------------------------------------ */
/* Expectations                                                        */

enum outcome {
	VALID,  /* parses and validates */
	REJECT, /* request refused: parse or validate fails with `reason` */
	DROP,   /* response that must be discarded: fails with `reason` */
};

struct exp {
	const char *name;
	enum outcome outcome;
	enum om_sip_reason reason; /* REJECT / DROP */
	int status;                /* REJECT: SIP status to answer */
	/* start line */
	const char *method; /* NULL: response */
	int resp_status;
	enum om_sip_scheme scheme;
	const char *ruri_user; /* raw (escaped); NULL: none */
	const char *ruri_host;
	int ruri_port; /* -1: none */
	/* headers */
	const char *call_id;
	uint32_t cseq;
	const char *cseq_method;
	long nvia;
	const char *via_transport, *via_host;
	int via_port;
	const char *via_branch;          /* NULL: none */
	const char *from_uri, *from_tag; /* tag NULL: none */
	const char *to_uri, *to_tag;
	long cl; /* -1: no Content-Length */
	size_t body_len;
	size_t msg_len; /* 0: whole file */
};

#define REQ(m) .method = m, .scheme = OM_SIP_SCHEME_SIP
#define NOPORT -1
#define BAD(n, o, r, s)                                           \
	{                                                         \
		.name = n, .outcome = o, .reason = r, .status = s \
	}

static const struct exp table[] = {
	/* ---------------- RFC 4475 §3.1.1 valid */
	{ "wsinv",
	  VALID,
	  0,
	  0,
	  REQ("INVITE"),
	  .ruri_user = "vivekg",
	  .ruri_host = "chair-dnrc.example.com",
	  .ruri_port = NOPORT,
	  .call_id = "wsinv.ndaksdj@192.0.2.1",
	  .cseq = 9,
	  .cseq_method = "INVITE",
	  .nvia = 3,
	  .via_transport = "UDP",
	  .via_host = "192.0.2.2",
	  .via_port = NOPORT,
	  .via_branch = "390skdjuw",
	  .from_uri = "sip:jdrosen@example.com",
	  .from_tag = "98asjd8",
	  .to_uri = "sip:vivekg@chair-dnrc.example.com",
	  .to_tag = "1918181833n",
	  .cl = 150,
	  .body_len = 150 },
	{ "intmeth",
	  VALID,
	  0,
	  0,
	  REQ("!interesting-Method0123456789_*+`.%indeed'~"),
	  .ruri_user = "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*",
	  .ruri_host = "example.com",
	  .ruri_port = NOPORT,
	  .call_id = "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{",
	  .cseq = 139122385,
	  .cseq_method = "!interesting-Method0123456789_*+`.%indeed'~",
	  .nvia = 1,
	  .via_transport = "TCP",
	  .via_host = "host1.example.com",
	  .via_port = NOPORT,
	  .via_branch = "z9hG4bK-.!%66*_+`'~",
	  .from_uri = "sip:mundane@example.com",
	  .from_tag = "_token~1'+`*%!-.",
	  .to_uri = "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com",
	  .cl = 0 },
	{ "esc01",
	  VALID,
	  0,
	  0,
	  REQ("INVITE"),
	  .ruri_user = "sips%3Auser%40example.com",
	  .ruri_host = "example.net",
	  .ruri_port = NOPORT,
	  .call_id = "esc01.239409asdfakjkn23onasd0-3234",
	  .cseq = 234234,
	  .cseq_method = "INVITE",
	  .nvia = 1,
	  .via_transport = "UDP",
	  .via_host = "host5.example.net",
	  .via_port = NOPORT,
	  .via_branch = "z9hG4bKkdjuw",
	  .from_uri = "sip:I%20have%20spaces@example.net",
	  .from_tag = "938",
	  .to_uri = "sip:%75se%72@example.com",
	  .cl = 150,
	  .body_len = 150 },
	{ "escnull", VALID, 0, 0, REQ("REGISTER"), .ruri_host = "example.com", .ruri_port = NOPORT,
	  .call_id = "escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd", .cseq = 14398234,
	  .cseq_method = "REGISTER", .nvia = 1, .via_transport = "UDP",
	  .via_host = "host5.example.com", .via_port = NOPORT, .via_branch = "z9hG4bKkdjuw",
	  .from_uri = "sip:null-%00-null@example.com", .from_tag = "839923423",
	  .to_uri = "sip:null-%00-null@example.com", .cl = 0 },
	{ "esc02", VALID, 0, 0, REQ("RE%47IST%45R"), .ruri_host = "registrar.example.com",
	  .ruri_port = NOPORT, .call_id = "esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf",
	  .cseq = 29344, .cseq_method = "RE%47IST%45R", .nvia = 1, .via_transport = "TCP",
	  .via_host = "host.example.com", .via_port = NOPORT, .via_branch = "z9hG4bK209%fzsnel234",
	  .from_uri = "sip:resource@example.com", .from_tag = "f232jadfj23",
	  .to_uri = "sip:resource@example.com", .cl = 0 },
	{ "lwsdisp",
	  VALID,
	  0,
	  0,
	  REQ("OPTIONS"),
	  .ruri_user = "user",
	  .ruri_host = "example.com",
	  .ruri_port = NOPORT,
	  .call_id = "lwsdisp.1234abcd@funky.example.com",
	  .cseq = 60,
	  .cseq_method = "OPTIONS",
	  .nvia = 1,
	  .via_transport = "UDP",
	  .via_host = "funky.example.com",
	  .via_port = NOPORT,
	  .via_branch = "z9hG4bKkdjuw",
	  .from_uri = "sip:caller@example.com",
	  .from_tag = "323",
	  .to_uri = "sip:user@example.com",
	  .cl = 0 },
	{ "longreq",
	  VALID,
	  0,
	  0,
	  REQ("INVITE"),
	  .ruri_user = "user",
	  .ruri_host = "example.com",
	  .ruri_port = NOPORT,
	  .call_id = "longreq.onereallyreallyreallyreallyreallyreallyreallyreallyreallyreally"
	             "reallyreallyreallyreallyreallyreallyreallyreallyreallyreallylongcallid",
	  .cseq = 3882340,
	  .cseq_method = "INVITE",
	  .nvia = 34,
	  .via_transport = "TCP",
	  .via_host = "sip33.example.com",
	  .via_port = NOPORT,
	  .from_uri = "sip:amazinglylongcallernameamazinglylongcallernameamazinglylongcallername"
	              "amazinglylongcallernameamazinglylongcallername@example.net",
	  .from_tag = "1298298298298298298298298298298298298298298298298298298298298298298298"
	              "2982982982982982982982982982982982982982982982982982982982982982982982"
	              "982982982982424",
	  .to_uri = NULL /* checked in special() */,
	  .cl = 150,
	  .body_len = 150 },
	{ "dblreq",
	  VALID,
	  0,
	  0,
	  REQ("REGISTER"),
	  .ruri_host = "example.com",
	  .ruri_port = NOPORT,
	  .call_id = "dblreq.0ha0isndaksdj99sdfafnl3lk233412",
	  .cseq = 8,
	  .cseq_method = "REGISTER",
	  .nvia = 1,
	  .via_transport = "UDP",
	  .via_host = "192.0.2.125",
	  .via_port = NOPORT,
	  .via_branch = "z9hG4bKkdjuw23492",
	  .from_uri = "sip:j.user@example.com",
	  .from_tag = "43251j3j324",
	  .to_uri = "sip:j.user@example.com",
	  .cl = 0,
	  .msg_len = 300 },
	{ "semiuri",
	  VALID,
	  0,
	  0,
	  REQ("OPTIONS"),
	  .ruri_user = "user;par=u%40example.net",
	  .ruri_host = "example.com",
	  .ruri_port = NOPORT,
	  .call_id = "semiuri.0ha0isndaksdj",
	  .cseq = 8,
	  .cseq_method = "OPTIONS",
	  .nvia = 1,
	  .via_transport = "UDP",
	  .via_host = "192.0.2.1",
	  .via_port = NOPORT,
	  .via_branch = "z9hG4bKkdjuw",
	  .from_uri = "sip:caller@example.org",
	  .from_tag = "33242",
	  .to_uri = "sip:j_user@example.com",
	  .cl = 0 },
	{ "transports",
	  VALID,
	  0,
	  0,
	  REQ("OPTIONS"),
	  .ruri_user = "user",
	  .ruri_host = "example.com",
	  .ruri_port = NOPORT,
	  .call_id = "transports.kijh4akdnaqjkwendsasfdj",
	  .cseq = 60,
	  .cseq_method = "OPTIONS",
	  .nvia = 5,
	  .via_transport = "UDP",
	  .via_host = "t1.example.com",
	  .via_port = NOPORT,
	  .via_branch = "z9hG4bKkdjuw",
	  .from_uri = "sip:caller@example.com",
	  .from_tag = "323",
	  .to_uri = "sip:user@example.com",
	  .cl = 0 },
	{ "mpart01",
	  VALID,
	  0,
	  0,
	  REQ("MESSAGE"),
	  .ruri_user = "kumiko",
	  .ruri_host = "example.org",
	  .ruri_port = NOPORT,
	  .call_id = "3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..",
	  .cseq = 1,
	  .cseq_method = "MESSAGE",
	  .nvia = 1,
	  .via_transport = "UDP",
	  .via_host = "127.0.0.1",
	  .via_port = 5070,
	  .via_branch = "z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-",
	  .from_uri = "sip:fluffy@example.com",
	  .from_tag = "2fb0dcc9",
	  .to_uri = "sip:kumiko@example.org",
	  .cl = 553,
	  .body_len = 553 },
	{ "unreason", VALID, 0, 0, .resp_status = 200,
	  .call_id = "unreason.1234ksdfak3j2erwedfsASdf", .cseq = 35, .cseq_method = "INVITE",
	  .nvia = 1, .via_transport = "UDP", .via_host = "192.0.2.198", .via_port = NOPORT,
	  .via_branch = "z9hG4bK1324923", .from_uri = "sip:user@example.com",
	  .from_tag = "11141343", .to_uri = "sip:user@example.edu", .to_tag = "2229", .cl = 154,
	  .body_len = 154 },
	{ "noreason", VALID, 0, 0, .resp_status = 100, .call_id = "noreason.asndj203insdf99223ndf",
	  .cseq = 35, .cseq_method = "INVITE", .nvia = 1, .via_transport = "UDP",
	  .via_host = "192.0.2.105", .via_port = NOPORT, .via_branch = "z9hG4bK2398ndaoe",
	  .from_uri = "sip:user@example.com", .from_tag = "39ansfi3",
	  .to_uri = "sip:user@example.edu", .to_tag = "902jndnke3", .cl = 0 },
	/* ---------------- RFC 4475 §3.1.2 invalid */
	BAD("badinv01", REJECT, OM_SIP_R_BAD_VIA, 400),
	BAD("clerr", REJECT, OM_SIP_R_BODY_TRUNCATED, 400),
	BAD("ncl", REJECT, OM_SIP_R_BAD_CONTENT_LENGTH, 400),
	BAD("scalar02", REJECT, OM_SIP_R_BAD_CSEQ, 400),
	BAD("scalarlg", DROP, OM_SIP_R_BAD_CSEQ, 400),
	BAD("quotbal", REJECT, OM_SIP_R_BAD_TO, 400),
	BAD("ltgtruri", REJECT, OM_SIP_R_BAD_RURI, 400),
	BAD("lwsruri", REJECT, OM_SIP_R_BAD_START_LINE, 400),
	BAD("lwsstart", REJECT, OM_SIP_R_BAD_START_LINE, 400),
	BAD("trws", REJECT, OM_SIP_R_BAD_START_LINE, 400),
	BAD("escruri", REJECT, OM_SIP_R_BAD_RURI, 400),
	BAD("baddate", REJECT, OM_SIP_R_BAD_DATE, 400),
	BAD("regbadct", REJECT, OM_SIP_R_BAD_CONTACT, 400),
	BAD("badaspec", REJECT, OM_SIP_R_BAD_TO, 400),
	BAD("baddn", REJECT, OM_SIP_R_BAD_FROM, 400),
	BAD("badvers", REJECT, OM_SIP_R_BAD_VERSION, 505),
	BAD("mismatch01", REJECT, OM_SIP_R_CSEQ_METHOD, 400),
	BAD("mismatch02", REJECT, OM_SIP_R_CSEQ_METHOD, 400),
	BAD("bigcode", DROP, OM_SIP_R_BAD_STATUS, 400),
	/* ---------------- RFC 4475 §3.2, §3.3, §3.4 */
	{ "badbranch",
	  VALID,
	  0,
	  0,
	  REQ("OPTIONS"),
	  .ruri_user = "user",
	  .ruri_host = "example.com",
	  .ruri_port = NOPORT,
	  .call_id = "badbranch.sadonfo23i420jv0as0derf3j3n",
	  .cseq = 8,
	  .cseq_method = "OPTIONS",
	  .nvia = 1,
	  .via_transport = "UDP",
	  .via_host = "192.0.2.1",
	  .via_port = NOPORT,
	  .via_branch = "z9hG4bK",
	  .from_uri = "sip:caller@example.org",
	  .from_tag = "33242",
	  .to_uri = "sip:user@example.com",
	  .cl = 0 },
	BAD("insuf", REJECT, OM_SIP_R_MISSING_HEADER, 400),
	{ "unkscm", VALID, 0, 0, .method = "OPTIONS", .scheme = OM_SIP_SCHEME_OTHER,
	  .ruri_port = NOPORT, .call_id = "unkscm.nasdfasser0q239nwsdfasdkl34", .cseq = 3923423,
	  .cseq_method = "OPTIONS", .nvia = 1, .via_transport = "TCP",
	  .via_host = "host9.example.com", .via_port = NOPORT, .via_branch = "z9hG4bKkdjuw39234",
	  .from_uri = "sip:caller@example.net", .from_tag = "384", .to_uri = "sip:user@example.com",
	  .cl = 0 },
	{ "novelsc", VALID, 0, 0, .method = "OPTIONS", .scheme = OM_SIP_SCHEME_OTHER,
	  .ruri_port = NOPORT, .call_id = "novelsc.asdfasser0q239nwsdfasdkl34", .cseq = 3923423,
	  .cseq_method = "OPTIONS", .nvia = 1, .via_transport = "TCP",
	  .via_host = "host9.example.com", .via_port = NOPORT, .via_branch = "z9hG4bKkdjuw39234",
	  .from_uri = "sip:caller@example.net", .from_tag = "384", .to_uri = "sip:user@example.com",
	  .cl = 0 },
	{ "unksm2", VALID, 0, 0, REQ("REGISTER"), .ruri_host = "example.com", .ruri_port = NOPORT,
	  .call_id = "unksm2.daksdj@hyphenated-host.example.com", .cseq = 234902,
	  .cseq_method = "REGISTER", .nvia = 1, .via_transport = "UDP", .via_host = "192.0.2.21",
	  .via_port = 5060, .via_branch = "z9hG4bKkdjuw", .from_uri = "http://www.example.com",
	  .from_tag = "3234233", .to_uri = "isbn:2983792873", .cl = 0 },
	{ "bext01",
	  VALID,
	  0,
	  0,
	  REQ("OPTIONS"),
	  .ruri_user = "user",
	  .ruri_host = "example.com",
	  .ruri_port = NOPORT,
	  .call_id = "bext01.0ha0isndaksdj",
	  .cseq = 8,
	  .cseq_method = "OPTIONS",
	  .nvia = 1,
	  .via_transport = "TLS",
	  .via_host = "fold-and-staple.example.com",
	  .via_port = NOPORT,
	  .via_branch = "z9hG4bKkdjuw",
	  .from_uri = "sip:caller@example.net",
	  .from_tag = "242etr",
	  .to_uri = "sip:j_user@example.com",
	  .cl = 0 },
	{ "invut",
	  VALID,
	  0,
	  0,
	  REQ("INVITE"),
	  .ruri_user = "user",
	  .ruri_host = "example.com",
	  .ruri_port = NOPORT,
	  .call_id = "invut.0ha0isndaksdjadsfij34n23d",
	  .cseq = 235448,
	  .cseq_method = "INVITE",
	  .nvia = 1,
	  .via_transport = "UDP",
	  .via_host = "somehost.example.com",
	  .via_port = NOPORT,
	  .via_branch = "z9hG4bKkdjuw",
	  .from_uri = "sip:caller@example.net",
	  .from_tag = "8392034",
	  .to_uri = "sip:j.user@example.com",
	  .cl = 40,
	  .body_len = 40 },
	{ "regaut01", VALID, 0, 0, REQ("REGISTER"), .ruri_host = "example.com", .ruri_port = NOPORT,
	  .call_id = "regaut01.0ha0isndaksdj", .cseq = 9338, .cseq_method = "REGISTER", .nvia = 1,
	  .via_transport = "TCP", .via_host = "192.0.2.253", .via_port = NOPORT,
	  .via_branch = "z9hG4bKkdjuw", .from_uri = "sip:j.user@example.com",
	  .from_tag = "87321hj23128", .to_uri = "sip:j.user@example.com", .cl = 0 },
	BAD("multi01", REJECT, OM_SIP_R_DUP_HEADER, 400),
	BAD("mcl01", REJECT, OM_SIP_R_CONTENT_LENGTH_CONFLICT, 400),
	{ "bcast", VALID, 0, 0, .resp_status = 200,
	  .call_id = "bcast.0384840201234ksdfak3j2erwedfsASdf", .cseq = 35, .cseq_method = "INVITE",
	  .nvia = 2, .via_transport = "UDP", .via_host = "192.0.2.198", .via_port = NOPORT,
	  .via_branch = "z9hG4bK1324923", .from_uri = "sip:user@example.com",
	  .from_tag = "11141343", .to_uri = "sip:user@example.edu", .to_tag = "2229", .cl = 154,
	  .body_len = 154 },
	{ "zeromf",
	  VALID,
	  0,
	  0,
	  REQ("OPTIONS"),
	  .ruri_user = "user",
	  .ruri_host = "example.com",
	  .ruri_port = NOPORT,
	  .call_id = "zeromf.jfasdlfnm2o2l43r5u0asdfas",
	  .cseq = 39234321,
	  .cseq_method = "OPTIONS",
	  .nvia = 1,
	  .via_transport = "UDP",
	  .via_host = "host1.example.com",
	  .via_port = NOPORT,
	  .via_branch = "z9hG4bKkdjuw2349i",
	  .from_uri = "sip:caller@example.net",
	  .from_tag = "3ghsd41",
	  .to_uri = "sip:user@example.com",
	  .cl = 0 },
	{ "cparam01", VALID, 0, 0, REQ("REGISTER"), .ruri_host = "example.com", .ruri_port = NOPORT,
	  .call_id = "cparam01.70710@saturn.example.com", .cseq = 2, .cseq_method = "REGISTER",
	  .nvia = 1, .via_transport = "UDP", .via_host = "saturn.example.com", .via_port = 5060,
	  .via_branch = "z9hG4bKkdjuw", .from_uri = "sip:watson@example.com",
	  .from_tag = "DkfVgjkrtMwaerKKpe", .to_uri = "sip:watson@example.com", .cl = 0 },
	{ "cparam02", VALID, 0, 0, REQ("REGISTER"), .ruri_host = "example.com", .ruri_port = NOPORT,
	  .call_id = "cparam02.70710@saturn.example.com", .cseq = 3, .cseq_method = "REGISTER",
	  .nvia = 1, .via_transport = "UDP", .via_host = "saturn.example.com", .via_port = 5060,
	  .via_branch = "z9hG4bKkdjuw", .from_uri = "sip:watson@example.com", .from_tag = "838293",
	  .to_uri = "sip:watson@example.com", .cl = 0 },
	{ "regescrt", VALID, 0, 0, REQ("REGISTER"), .ruri_host = "example.com", .ruri_port = NOPORT,
	  .call_id = "regescrt.k345asrl3fdbv@192.0.2.1", .cseq = 14398234,
	  .cseq_method = "REGISTER", .nvia = 1, .via_transport = "UDP",
	  .via_host = "host5.example.com", .via_port = NOPORT, .via_branch = "z9hG4bKkdjuw",
	  .from_uri = "sip:user@example.com", .from_tag = "8", .to_uri = "sip:user@example.com",
	  .cl = 0 },
	{ "sdp01",
	  VALID,
	  0,
	  0,
	  REQ("INVITE"),
	  .ruri_user = "user",
	  .ruri_host = "example.com",
	  .ruri_port = NOPORT,
	  .call_id = "sdp01.ndaksdj9342dasdd",
	  .cseq = 8,
	  .cseq_method = "INVITE",
	  .nvia = 1,
	  .via_transport = "UDP",
	  .via_host = "192.0.2.15",
	  .via_port = NOPORT,
	  .via_branch = "z9hG4bKkdjuw",
	  .from_uri = "sip:caller@example.net",
	  .from_tag = "234",
	  .to_uri = "sip:j_user@example.com",
	  .cl = 150,
	  .body_len = 150 },
	{ "inv2543",
	  VALID,
	  0,
	  0,
	  REQ("INVITE"),
	  .ruri_user = "UserB",
	  .ruri_host = "example.com",
	  .ruri_port = NOPORT,
	  .call_id = "inv2543.1717@ift.client.example.com",
	  .cseq = 56,
	  .cseq_method = "INVITE",
	  .nvia = 1,
	  .via_transport = "UDP",
	  .via_host = "iftgw.example.com",
	  .via_port = NOPORT,
	  .via_branch = NULL,
	  .from_uri = "sip:+13035551111@ift.client.example.net;user=phone",
	  .from_tag = NULL,
	  .to_uri = "sip:+16505552222@ss1.example.net",
	  .cl = -1,
	  .body_len = 105 },
	/* ---------------- RFC 5118 */
	{ "ipv6-good", VALID, 0, 0, REQ("REGISTER"), .ruri_host = "2001:db8::10",
	  .ruri_port = NOPORT, .call_id = "SSG9559905523997077@hlau_4100", .cseq = 98176,
	  .cseq_method = "REGISTER", .nvia = 1, .via_transport = "UDP", .via_host = "2001:db8::9:1",
	  .via_port = NOPORT, .via_branch = "z9hG4bKas3-111", .from_uri = "sip:user@example.com",
	  .from_tag = "81x2", .to_uri = "sip:user@example.com", .cl = 0 },
	BAD("ipv6-bad", REJECT, OM_SIP_R_BAD_RURI, 400),
	{ "port-ambiguous", VALID, 0, 0, REQ("REGISTER"), .ruri_host = "2001:db8::10:5070",
	  .ruri_port = NOPORT, .call_id = "SSG9559905523997077@hlau_4100", .cseq = 98176,
	  .cseq_method = "REGISTER", .nvia = 1, .via_transport = "UDP", .via_host = "2001:db8::9:1",
	  .via_port = NOPORT, .via_branch = "z9hG4bKas3-111", .from_uri = "sip:user@example.com",
	  .from_tag = "81x2", .to_uri = "sip:user@example.com", .cl = 0 },
	{ "port-unambiguous", VALID, 0, 0, REQ("REGISTER"), .ruri_host = "2001:db8::10",
	  .ruri_port = 5070, .call_id = "SSG9559905523997077@hlau_4100", .cseq = 98176,
	  .cseq_method = "REGISTER", .nvia = 1, .via_transport = "UDP", .via_host = "2001:db8::9:1",
	  .via_port = NOPORT, .via_branch = "z9hG4bKas3-111", .from_uri = "sip:user@example.com",
	  .from_tag = "81x2", .to_uri = "sip:user@example.com", .cl = 0 },
	{ "via-received-param-with-delim",
	  VALID,
	  0,
	  0,
	  REQ("BYE"),
	  .ruri_host = "2001:db8::10",
	  .ruri_port = NOPORT,
	  .call_id = "SSG9559905523997077@hlau_4100",
	  .cseq = 321,
	  .cseq_method = "BYE",
	  .nvia = 1,
	  .via_transport = "UDP",
	  .via_host = "2001:db8::9:1",
	  .via_port = NOPORT,
	  .via_branch = "z9hG4bKas3-111",
	  .from_uri = "sip:user@example.com",
	  .from_tag = "81x2",
	  .to_uri = "sip:user@example.com",
	  .to_tag = "bd76ya",
	  .cl = 0 },
	{ "via-received-param-no-delim", VALID, 0, 0, REQ("OPTIONS"), .ruri_host = "2001:db8::10",
	  .ruri_port = NOPORT, .call_id = "SSG95523997077@hlau_4100", .cseq = 921,
	  .cseq_method = "OPTIONS", .nvia = 1, .via_transport = "UDP", .via_host = "2001:db8::9:1",
	  .via_port = NOPORT, .via_branch = "z9hG4bKas3", .from_uri = "sip:user@example.com",
	  .from_tag = "81x2", .to_uri = "sip:user@example.com", .cl = 0 },
	{ "ipv6-in-sdp",
	  VALID,
	  0,
	  0,
	  REQ("INVITE"),
	  .ruri_user = "user",
	  .ruri_host = "2001:db8::10",
	  .ruri_port = NOPORT,
	  .call_id = "SSG9559905523997077@hlau_4100",
	  .cseq = 8612,
	  .cseq_method = "INVITE",
	  .nvia = 1,
	  .via_transport = "UDP",
	  .via_host = "2001:db8::20",
	  .via_port = NOPORT,
	  .via_branch = "z9hG4bKas3-111",
	  .from_uri = "sip:user@example.com",
	  .from_tag = "81x2",
	  .to_uri = "sip:user@[2001:db8::10]",
	  .cl = 251,
	  .body_len = 251 },
	{ "mult-ip-in-header",
	  VALID,
	  0,
	  0,
	  REQ("BYE"),
	  .ruri_user = "user",
	  .ruri_host = "host.example.net",
	  .ruri_port = NOPORT,
	  .call_id = "997077@lau_4100",
	  .cseq = 89187,
	  .cseq_method = "BYE",
	  .nvia = 3,
	  .via_transport = "UDP",
	  .via_host = "2001:db8::9:1",
	  .via_port = 6050,
	  .via_branch = "z9hG4bKas3-111",
	  .from_uri = "sip:user@example.com",
	  .from_tag = "81x2",
	  .to_uri = "sip:user@example.net",
	  .to_tag = "9817--94",
	  .cl = 0 },
	{ "mult-ip-in-sdp",
	  VALID,
	  0,
	  0,
	  REQ("INVITE"),
	  .ruri_user = "user",
	  .ruri_host = "2001:db8::10",
	  .ruri_port = NOPORT,
	  .call_id = "SSG9559905523997077@hlau_4100",
	  .cseq = 8912,
	  .cseq_method = "INVITE",
	  .nvia = 1,
	  .via_transport = "UDP",
	  .via_host = "2001:db8::9:1",
	  .via_port = NOPORT,
	  .via_branch = "z9hG4bKas3-111",
	  .from_uri = "sip:user@example.com",
	  .from_tag = "81x2",
	  .to_uri = "sip:user@[2001:db8::10]",
	  .cl = 189,
	  .body_len = 189 },
	{ "ipv4-mapped-ipv6",
	  VALID,
	  0,
	  0,
	  REQ("INVITE"),
	  .ruri_user = "user",
	  .ruri_host = "example.com",
	  .ruri_port = NOPORT,
	  .call_id = "SSG9559905523997077@hlau_4100",
	  .cseq = 612,
	  .cseq_method = "INVITE",
	  .nvia = 2,
	  .via_transport = "UDP",
	  .via_host = "::ffff:192.0.2.10",
	  .via_port = 19823,
	  .via_branch = "z9hG4bKbh19",
	  .from_uri = "sip:user@east.example.com",
	  .from_tag = "81x2",
	  .to_uri = "sip:user@example.com",
	  .cl = 245,
	  .body_len = 245 },
	/* RFC 5118 §4.10 lets an element accept or refuse the three-colon
	 * form; openum refuses it (not an IPv6 address, RFC 4291). */
	BAD("ipv6-bug-abnf-3-colons", REJECT, OM_SIP_R_BAD_RURI, 400),
	{ "ipv6-correct-abnf-2-colons",
	  VALID,
	  0,
	  0,
	  REQ("OPTIONS"),
	  .ruri_user = "user",
	  .ruri_host = "2001:db8::192.0.2.1",
	  .ruri_port = NOPORT,
	  .call_id = "G9559905523997077@hlau_4100",
	  .cseq = 689,
	  .cseq_method = "OPTIONS",
	  .nvia = 1,
	  .via_transport = "UDP",
	  .via_host = "lab1.east.example.com",
	  .via_port = NOPORT,
	  .via_branch = "z9hG4bKas3-111",
	  .from_uri = "sip:user@example.com",
	  .from_tag = "810x2",
	  .to_uri = "sip:user@[2001:db8::192.0.2.1]",
	  .cl = 0 },
};

static const struct exp *find_exp(const char *name)
{
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strcmp(table[i].name, name) == 0)
			return &table[i];
	return NULL;
}

/* ------------------------------------------------------------------ */

#define CHECK(name, c)                                        \
	do {                                                  \
		if (!(c))                                     \
			UT_FAIL("%s: expected %s", name, #c); \
	} while (0)

#define CHECK_SLICE(name, exp, s)                                                        \
	do {                                                                             \
		const char *ce_ = (exp);                                                 \
		struct om_str cs_ = (s);                                                 \
		if (!ce_ ? cs_.p != NULL                                                 \
		         : (strlen(ce_) != cs_.len || memcmp(ce_, cs_.p, cs_.len) != 0)) \
			UT_FAIL("%s: %s: expected \"%s\", got \"%.*s\"", name, #s,       \
			        ce_ ? ce_ : "(none)", (int)cs_.len, cs_.p ? cs_.p : ""); \
	} while (0)

#define CHECK_INT(name, exp, got)                                                       \
	do {                                                                            \
		long long ce = (long long)(exp), cg = (long long)(got);                 \
		if (ce != cg)                                                           \
			UT_FAIL("%s: %s: expected %lld, got %lld", name, #got, ce, cg); \
	} while (0)

/* Checks beyond the table, per message (RFC 4475 / 5118 sections). */
static void special(const char *n, const struct om_sip_msg *m)
{
	struct om_sip_iter it = { 0 };
	struct om_sip_addr a;
	struct om_sip_uri u;
	struct om_sip_via v;
	struct om_str s;
	char dec[256];
	long l;

	if (!strcmp(n, "escnull")) {
		/* §3.1.1.4: %00 decodes to one NUL octet; no truncation */
		UT_EQ_INT(0, om_sip_msg_to(m, &a));
		l = om_sip_unescape(a.uri.user, dec, sizeof(dec));
		UT_EQ_INT(11, l);
		UT_EQ_MEM("null-\0-null", dec, 11);
		UT_EQ_INT(0, om_sip_msg_addr_next(m, OM_SIP_HDR_CONTACT, &it, &a));
		UT_EQ_INT(1, om_sip_unescape(a.uri.user, dec, sizeof(dec)));
		UT_EQ_INT(0, dec[0]);
		UT_EQ_INT(0, om_sip_msg_addr_next(m, OM_SIP_HDR_CONTACT, &it, &a));
		UT_EQ_INT(2, om_sip_unescape(a.uri.user, dec, sizeof(dec)));
		UT_EQ_INT(ENOENT, om_sip_msg_addr_next(m, OM_SIP_HDR_CONTACT, &it, &a));
	} else if (!strcmp(n, "esc01")) {
		/* §3.1.1.3: escapes compare equal to their unescaped form */
		UT_EQ_INT(0, om_sip_uri_parse(m->ruri, 0, &u));
		UT_TRUE(om_sip_escaped_eq(u.user, OM_STR_LIT("sips:user@example.com")));
		UT_EQ_INT(0, om_sip_msg_to(m, &a));
		UT_TRUE(om_sip_escaped_eq(a.uri.user, OM_STR_LIT("user")));
		UT_EQ_INT(0, om_sip_msg_from(m, &a));
		l = om_sip_unescape(a.uri.user, dec, sizeof(dec));
		UT_EQ_SLICE("I have spaces", dec, l);
		UT_EQ_INT(0, om_sip_msg_addr_next(m, OM_SIP_HDR_CONTACT, &it, &a));
		UT_TRUE(om_sip_escaped_eq(a.uri.user, OM_STR_LIT("caller")));
		UT_EQ_INT(0, om_sip_param_find(a.uri.params, "n%61me", &s));
		l = om_sip_unescape(s, dec, sizeof(dec));
		UT_EQ_SLICE("value%41", dec, l);
	} else if (!strcmp(n, "semiuri")) {
		/* §3.1.1.9: the ';' belongs to the user part */
		UT_EQ_INT(0, om_sip_uri_parse(m->ruri, 0, &u));
		UT_EQ_INT(0, u.params.len);
		l = om_sip_unescape(u.user, dec, sizeof(dec));
		UT_EQ_SLICE("user;par=u@example.net", dec, l);
	} else if (!strcmp(n, "longreq")) {
		UT_EQ_INT(0, om_sip_msg_to(m, &a));
		UT_EQ_INT(105, a.display.len); /* quotes included */
		UT_EQ_INT(6000, a.uri.port);
		UT_EQ_INT(0, om_sip_param_find(a.uri.params, "unknownparam1", &s));
		UT_EQ_INT(89, s.len);
		UT_EQ_INT(0, om_sip_msg_from(m, &a));
		UT_EQ_INT(
		    0, om_sip_param_find(a.params,
		                         "unknownValuelessparamnameparamnameparamnameparamname"
		                         "paramnameparamnameparamnameparamnameparamnameparamname",
		                         &s));
		UT_EQ_INT(0, s.len);
		/* the last Via carries the long branch */
		long k = 0;
		while (om_sip_msg_via_next(m, &it, &v) == 0)
			k++;
		UT_EQ_INT(34, k);
		UT_EQ_SLICE("192.0.2.5", v.received.p, v.received.len);
		UT_EQ_INT(215, v.branch.len);
		UT_TRUE(om_sip_msg_hdr_by_name(m, "Unknown-LongLongLongLongLongLongLongLongLongLong"
		                                  "LongLongLongLongLongLongLongLongLongLong-Name"));
	} else if (!strcmp(n, "wsinv")) {
		/* §3.1.1.1: folding, LWS everywhere, compact forms, params */
		uint32_t cs;
		unsigned mf;
		UT_EQ_INT(0, om_sip_msg_max_forwards(m, &mf));
		UT_EQ_INT(68, mf);
		long k = 0;
		while (om_sip_msg_via_next(m, &it, &v) == 0) {
			if (k == 1) {
				UT_EQ_SLICE("TCP", v.transport.p, v.transport.len);
				UT_EQ_SLICE("spindle.example.com", v.host.p, v.host.len);
				UT_EQ_SLICE("z9hG4bK9ikj8", v.branch.p, v.branch.len);
			}
			if (k == 2)
				UT_EQ_SLICE("z9hG4bK30239", v.branch.p, v.branch.len);
			k++;
		}
		UT_EQ_INT(3, k);
		UT_EQ_INT(0, om_sip_msg_from(m, &a));
		UT_EQ_SLICE("\"J Rosenberg \\\\\\\"\"", a.display.p, a.display.len);
		it = (struct om_sip_iter){ 0 };
		UT_EQ_INT(0, om_sip_msg_addr_next(m, OM_SIP_HDR_CONTACT, &it, &a));
		UT_EQ_INT(0, om_sip_param_find(a.params, "newparam", &s));
		UT_EQ_SLICE("newvalue", s.p, s.len);
		UT_EQ_INT(0, om_sip_param_find(a.params, "q", &s));
		UT_EQ_SLICE("0.33", s.p, s.len);
		UT_TRUE(om_sip_msg_hdr(m, OM_SIP_HDR_SUBJECT) != NULL);
		UT_EQ_INT(0, om_sip_msg_hdr(m, OM_SIP_HDR_SUBJECT)->value.len);
		it = (struct om_sip_iter){ 0 };
		UT_EQ_INT(0, om_sip_msg_addr_next(m, OM_SIP_HDR_ROUTE, &it, &a));
		UT_EQ_INT(0, om_sip_param_find(a.uri.params, "lr", &s));
		(void)cs;
	} else if (!strcmp(n, "intmeth") || !strcmp(n, "esc02")) {
		/* unknown methods: the UAS answers 501 */
		UT_EQ_INT(OM_SIP_METHOD_OTHER, m->method);
	} else if (!strcmp(n, "unkscm") || !strcmp(n, "novelsc")) {
		UT_EQ_INT(0, om_sip_uri_parse(m->ruri, 0, &u));
		UT_EQ_INT(OM_SIP_SCHEME_OTHER, u.scheme); /* → 416 */
	} else if (!strcmp(n, "unksm2")) {
		UT_EQ_INT(0, om_sip_msg_addr_next(m, OM_SIP_HDR_CONTACT, &it, &a));
		UT_EQ_INT(OM_SIP_SCHEME_OTHER, a.uri.scheme);
		UT_EQ_SLICE("name:John_Smith", a.uri.raw.p, a.uri.raw.len);
	} else if (!strcmp(n, "bext01")) {
		static const char *const sup[] = { "timer", NULL };
		struct om_buf b;
		om_buf_init(&b);
		UT_EQ_INT(2, om_sip_msg_unsupported(m, sup, false, &b));
		UT_EQ_STR("nothingSupportsThis, nothingSupportsThisEither", om_buf_cstr(&b));
		om_buf_free(&b);
	} else if (!strcmp(n, "badbranch")) {
		UT_EQ_INT(0, om_sip_msg_via_top(m, &v));
		UT_TRUE(!om_sip_via_branch_is_3261(&v));
	} else if (!strcmp(n, "zeromf")) {
		unsigned mf = 9;
		UT_EQ_INT(0, om_sip_msg_max_forwards(m, &mf));
		UT_EQ_INT(0, mf);
	} else if (!strcmp(n, "cparam01")) {
		/* §3.3.12: without <>, ;unknownparam is a header parameter */
		UT_EQ_INT(0, om_sip_msg_addr_next(m, OM_SIP_HDR_CONTACT, &it, &a));
		UT_TRUE(!a.angle);
		UT_EQ_INT(0, a.uri.params.len);
		UT_EQ_INT(0, om_sip_param_find(a.params, "unknownparam", &s));
	} else if (!strcmp(n, "cparam02")) {
		UT_EQ_INT(0, om_sip_msg_addr_next(m, OM_SIP_HDR_CONTACT, &it, &a));
		UT_TRUE(a.angle);
		UT_EQ_INT(0, om_sip_param_find(a.uri.params, "unknownparam", &s));
		UT_EQ_INT(ENOENT, om_sip_param_find(a.params, "unknownparam", &s));
	} else if (!strcmp(n, "regescrt")) {
		UT_EQ_INT(0, om_sip_msg_addr_next(m, OM_SIP_HDR_CONTACT, &it, &a));
		UT_EQ_SLICE("Route=%3Csip:sip.example.com%3E", a.uri.headers.p, a.uri.headers.len);
	} else if (!strcmp(n, "inv2543")) {
		unsigned mf;
		UT_EQ_INT(ENOENT, om_sip_msg_max_forwards(m, &mf));
		UT_EQ_INT(0, om_sip_msg_via_top(m, &v));
		UT_TRUE(!v.has_branch);
	} else if (!strcmp(n, "mpart01")) {
		struct om_str t, p;
		UT_EQ_INT(0, om_sip_msg_content_type(m, &t, &p));
		UT_EQ_SLICE("multipart/mixed", t.p, t.len);
		UT_EQ_INT(0, om_sip_param_find(p, "boundary", &s));
		UT_EQ_SLICE("7a9cbec02ceef655", s.p, s.len);
	} else if (!strcmp(n, "port-ambiguous")) {
		/* RFC 5118 §4.3: 5070 is part of the address, not a port */
		UT_EQ_INT(0, om_sip_uri_parse(m->ruri, 0, &u));
		UT_TRUE(u.ipv6 && !u.has_port);
	} else if (!strcmp(n, "via-received-param-no-delim")) {
		UT_EQ_INT(0, om_sip_msg_via_top(m, &v));
		UT_EQ_SLICE("2001:db8::9:255", v.received.p, v.received.len);
		UT_EQ_SLICE("z9hG4bKas3", v.branch.p, v.branch.len);
	} else if (!strcmp(n, "via-received-param-with-delim")) {
		UT_EQ_INT(0, om_sip_msg_via_top(m, &v));
		UT_EQ_SLICE("[2001:db8::9:255]", v.received.p, v.received.len);
	} else if (!strcmp(n, "mult-ip-in-header")) {
		long k = 0;
		while (om_sip_msg_via_next(m, &it, &v) == 0) {
			if (k == 1) {
				UT_TRUE(!v.ipv6);
				UT_EQ_SLICE("192.0.2.1", v.host.p, v.host.len);
			}
			if (k == 2) {
				UT_TRUE(v.ipv6);
				UT_EQ_SLICE("TCP", v.transport.p, v.transport.len);
				UT_EQ_SLICE("2001:db8::9:255", v.host.p, v.host.len);
				UT_EQ_SLICE("192.0.2.200", v.received.p, v.received.len);
			}
			k++;
		}
		UT_EQ_INT(3, k);
	} else if (!strcmp(n, "ipv4-mapped-ipv6")) {
		UT_EQ_INT(0, om_sip_msg_via_top(m, &v));
		UT_TRUE(v.ipv6);
		UT_EQ_INT(0, om_sip_msg_addr_next(m, OM_SIP_HDR_CONTACT, &it, &a));
		UT_TRUE(a.uri.ipv6);
		UT_EQ_SLICE("::ffff:192.0.2.2", a.uri.host.p, a.uri.host.len);
	} else if (!strcmp(n, "ipv6-good")) {
		UT_EQ_INT(0, om_sip_msg_addr_next(m, OM_SIP_HDR_CONTACT, &it, &a));
		UT_EQ_SLICE("2001:db8::1", a.uri.host.p, a.uri.host.len);
	}
}

static void check_valid(const struct exp *e, const char *buf, size_t len)
{
	const char *n = e->name;
	struct om_sip_msg *m = NULL;
	enum om_sip_reason r = OM_SIP_R_OK;
	int err = om_sip_msg_parse(buf, len, NULL, &m, &r);
	if (err)
		UT_FAIL("%s: parse failed: %s", n, om_sip_reason_str(r));
	err = om_sip_msg_validate(m, &r);
	if (err)
		UT_FAIL("%s: validate failed: %s", n, om_sip_reason_str(r));
	CHECK_INT(n, e->msg_len ? e->msg_len : len, m->len);
	if (e->method) {
		CHECK(n, m->is_request);
		CHECK_SLICE(n, e->method, m->method_name);
		struct om_sip_uri u;
		CHECK_INT(n, 0, om_sip_uri_parse(m->ruri, 0, &u));
		CHECK_INT(n, e->scheme, u.scheme);
		if (e->scheme != OM_SIP_SCHEME_OTHER) {
			CHECK_SLICE(n, e->ruri_user, u.user);
			CHECK_SLICE(n, e->ruri_host, u.host);
			CHECK_INT(n, e->ruri_port, u.has_port ? u.port : -1);
		}
	} else {
		CHECK(n, !m->is_request);
		CHECK_INT(n, e->resp_status, m->status);
	}
	CHECK_SLICE(n, e->call_id, om_sip_msg_call_id(m));
	uint32_t cs = 0;
	struct om_str cm = OM_STR_NULL;
	CHECK_INT(n, 0, om_sip_msg_cseq(m, &cs, &cm, NULL));
	CHECK_INT(n, e->cseq, cs);
	CHECK_SLICE(n, e->cseq_method, cm);
	CHECK_INT(n, e->nvia, om_sip_msg_via_count(m));
	struct om_sip_via v;
	CHECK_INT(n, 0, om_sip_msg_via_top(m, &v));
	CHECK_SLICE(n, e->via_transport, v.transport);
	CHECK_SLICE(n, e->via_host, v.host);
	CHECK_INT(n, e->via_port, v.has_port ? v.port : -1);
	if (e->via_branch)
		CHECK_SLICE(n, e->via_branch, v.branch);
	else
		CHECK(n, !v.has_branch);
	struct om_sip_addr a;
	CHECK_INT(n, 0, om_sip_msg_from(m, &a));
	CHECK_SLICE(n, e->from_uri, a.uri.raw);
	CHECK_SLICE(n, e->from_tag, a.has_tag ? a.tag : OM_STR_NULL);
	CHECK_INT(n, 0, om_sip_msg_to(m, &a));
	if (e->to_uri)
		CHECK_SLICE(n, e->to_uri, a.uri.raw);
	CHECK_SLICE(n, e->to_tag, a.has_tag ? a.tag : OM_STR_NULL);
	CHECK_INT(n, e->cl, m->has_content_length ? (long)m->content_length : -1);
	CHECK_INT(n, e->body_len, m->body.len);
	special(n, m);
	/* a response to every valid request builds and parses back */
	if (m->is_request) {
		struct om_buf b;
		struct om_sip_msg *resp = NULL;
		struct om_sip_resp_opts o = { .to_tag = "t1" };
		om_buf_init(&b);
		CHECK_INT(n, 0, om_sip_response_build(m, 200, NULL, &o, &b));
		CHECK_INT(n, 0, om_sip_msg_parse(b.p, b.len, NULL, &resp, &r));
		CHECK_INT(n, 0, om_sip_msg_validate(resp, &r));
		CHECK_INT(n, e->nvia, om_sip_msg_via_count(resp));
		CHECK_INT(n, 0, om_sip_msg_to(resp, &a));
		CHECK(n, a.has_tag);
		CHECK_SLICE(n, e->to_tag ? e->to_tag : "t1", a.tag);
		om_sip_msg_free(resp);
		om_buf_free(&b);
	}
	om_sip_msg_free(m);
}

static void check_invalid(const struct exp *e, const char *buf, size_t len)
{
	const char *n = e->name;
	struct om_sip_msg *m = NULL;
	enum om_sip_reason r = OM_SIP_R_OK;
	int err = om_sip_msg_parse(buf, len, NULL, &m, &r);
	if (err == 0) {
		err = om_sip_msg_validate(m, &r);
		if (err == 0)
			UT_FAIL("%s: accepted, expected %s", n, om_sip_reason_str(e->reason));
		if (e->outcome == DROP)
			CHECK(n, !m->is_request);
		/* a 4xx/5xx answer to the bad request still builds */
		if (m->is_request) {
			struct om_buf b;
			om_buf_init(&b);
			CHECK_INT(
			    n, 0,
			    om_sip_response_build(m, om_sip_reason_status(r), NULL, NULL, &b));
			om_buf_free(&b);
		}
		om_sip_msg_free(m);
	}
	if (r != e->reason)
		UT_FAIL("%s: expected reason \"%s\", got \"%s\"", n, om_sip_reason_str(e->reason),
		        om_sip_reason_str(r));
	CHECK_INT(n, e->status, om_sip_reason_status(r));
}

/* Runs one corpus; returns how many messages it checked. */
static int run_corpus(const char *dir)
{
	char path[1024];
	size_t mlen;
	snprintf(path, sizeof(path), "%s/corpora/%s/manifest.tsv", OM_SHARED_DIR, dir);
	char *man = read_file(path, &mlen);
	if (!man)
		UT_FAIL("cannot read %s (the shared corpora must sit beside the repository)", path);
	int count = 0;
	char *save = NULL;
	char *text = malloc(mlen + 1);
	memcpy(text, man, mlen);
	text[mlen] = '\0';
	free(man);
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[128], section[32], expected[64];
		if (strncmp(line, "name\t", 5) == 0)
			continue;
		if (sscanf(line, "%127[^\t]\t%31[^\t]\t%63[^\t]", name, section, expected) != 3)
			UT_FAIL("%s: bad manifest line: %.40s", dir, line);
		const struct exp *e = find_exp(name);
		if (!e)
			UT_FAIL("%s: no expectation for %s", dir, name);
		/* the manifest's class and ours agree, except where we chose a
		 * side the RFC allows (documented in docs/modules/sip.md) */
		if (!strcmp(expected, "valid"))
			CHECK(name, e->outcome == VALID);
		else if (!strcmp(expected, "invalid-must-reject"))
			CHECK(name, e->outcome != VALID);
		else
			CHECK(name, !strcmp(expected, "valid-but-unusual"));
		size_t len;
		char *buf = corpus_file(dir, name, &len);
		if (!buf)
			UT_FAIL("%s: cannot read %s.dat", dir, name);
		if (e->outcome == VALID)
			check_valid(e, buf, len);
		else
			check_invalid(e, buf, len);
		free(buf);
		count++;
	}
	free(text);
	return count;
}

UT_TEST(rfc4475_all)
{
	UT_EQ_INT(49, run_corpus("rfc4475"));
}

UT_TEST(rfc5118_all)
{
	UT_EQ_INT(12, run_corpus("rfc5118"));
}

UT_TEST(table_matches_manifests)
{
	UT_EQ_INT(61, sizeof(table) / sizeof(table[0]));
}

/* Stream framing of the Content-Length torture messages (§3.1.2.2,
 * §3.1.2.3, §3.3.9) and of dblreq as two messages on one stream. */
UT_TEST(framing_of_corpus)
{
	size_t len, ml = 0;
	enum om_sip_reason r = OM_SIP_R_OK;
	char *b = corpus_file("rfc4475", "clerr", &len);
	UT_TRUE(b);
	UT_EQ_INT(OM_SIP_FRAME_MORE, om_sip_frame(b, len, 65536, &ml, &r));
	free(b);
	b = corpus_file("rfc4475", "ncl", &len);
	UT_TRUE(b);
	UT_EQ_INT(OM_SIP_FRAME_ERROR, om_sip_frame(b, len, 65536, &ml, &r));
	UT_EQ_INT(OM_SIP_R_BAD_CONTENT_LENGTH, r);
	free(b);
	b = corpus_file("rfc4475", "mcl01", &len);
	UT_TRUE(b);
	UT_EQ_INT(OM_SIP_FRAME_ERROR, om_sip_frame(b, len, 65536, &ml, &r));
	UT_EQ_INT(OM_SIP_R_CONTENT_LENGTH_CONFLICT, r);
	free(b);
	b = corpus_file("rfc4475", "dblreq", &len);
	UT_TRUE(b);
	UT_EQ_INT(OM_SIP_FRAME_MSG, om_sip_frame(b, len, 65536, &ml, &r));
	UT_EQ_INT(300, ml);
	size_t off = ml;
	UT_EQ_INT(OM_SIP_FRAME_SKIP, om_sip_frame(b + off, len - off, 65536, &ml, &r));
	UT_EQ_INT(2, ml);
	off += ml;
	UT_EQ_INT(OM_SIP_FRAME_MSG, om_sip_frame(b + off, len - off, 65536, &ml, &r));
	UT_EQ_INT(293 + 150, ml); /* its body has 5 octets more than Content-Length */
	free(b);
}

/* ------------------------------------------------------------------ */
/* Out-of-memory sweep: parse, validate, getters and a response, failing
 * each allocation in turn. ASan reports any leak. */

struct oom_arg {
	const char *buf;
	size_t len;
};

static int oom_once(void *p)
{
	struct oom_arg *a = p;
	struct om_sip_msg *m = NULL;
	enum om_sip_reason r;
	struct om_buf b;
	int err = om_sip_msg_parse(a->buf, a->len, NULL, &m, &r);
	if (err) {
		if (err != ENOMEM || r != OM_SIP_R_NOMEM)
			abort();
		return err;
	}
	(void)om_sip_msg_validate(m, &r);
	struct om_sip_addr ad;
	(void)om_sip_msg_to(m, &ad);
	(void)om_sip_msg_via_count(m);
	om_buf_init(&b);
	static const char *const sup[] = { "timer", NULL };
	(void)om_sip_msg_unsupported(m, sup, true, &b);
	int unsup_err = om_buf_err(&b); /* the list of tags did not fit in memory */
	om_buf_free(&b);
	om_buf_init(&b);
	struct om_sip_resp_opts o = { .to_tag = "x", .body = OM_STR_LIT("v=0\r\n") };
	err = m->is_request ? om_sip_response_build(m, 200, NULL, &o, &b) : 0;
	if (err && err != ENOMEM)
		abort();
	om_buf_free(&b);
	om_sip_msg_free(m);
	return err ? err : unsup_err;
}

UT_TEST(oom_sweep_corpus)
{
	static const struct {
		const char *dir, *name;
	} msgs[] = {
		{ "rfc4475", "wsinv" },     { "rfc4475", "longreq" },
		{ "rfc4475", "esc01" },     { "rfc4475", "mpart01" },
		{ "rfc4475", "bext01" },    { "rfc4475", "multi01" },
		{ "rfc5118", "ipv6-good" }, { "rfc5118", "mult-ip-in-header" },
	};
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		struct oom_arg a;
		char *b = corpus_file(msgs[i].dir, msgs[i].name, &a.len);
		UT_TRUE(b);
		a.buf = b;
		unsigned long runs = ut_oom_sweep(oom_once, &a);
		UT_TRUE(runs >= 2); /* at least one allocation was failed */
		UT_EQ_INT(0, oom_once(&a));
		free(b);
	}
}

UT_MAIN(UT_CASE(rfc4475_all), UT_CASE(rfc5118_all), UT_CASE(table_matches_manifests),
        UT_CASE(framing_of_corpus), UT_CASE(oom_sweep_corpus))
