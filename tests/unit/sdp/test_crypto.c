/* test_crypto.c — a=crypto (RFC 4568 §9.1) grammar, key lengths per suite
 * (RFC 4568 §6.2, RFC 6188, RFC 7714), session parameters, MKI. */
#include "ut.h"
#include "sdp/sdp.h"
#include "sdp_test_util.h"

#include <errno.h>

static int parse(const char *v, struct om_sdp_crypto *c, const char **why)
{
	*why = NULL;
	return om_sdp_crypto_parse(om_str_c(v), c, why);
}

UT_TEST(suites_and_lengths)
{
	static const struct {
		enum om_sdp_crypto_suite s;
		const char *name;
		size_t key, salt;
	} t[] = {
		{ OM_SDP_AES_CM_128_HMAC_SHA1_80, "AES_CM_128_HMAC_SHA1_80", 16, 14 },
		{ OM_SDP_AES_CM_128_HMAC_SHA1_32, "AES_CM_128_HMAC_SHA1_32", 16, 14 },
		{ OM_SDP_AES_256_CM_HMAC_SHA1_80, "AES_256_CM_HMAC_SHA1_80", 32, 14 },
		{ OM_SDP_AEAD_AES_128_GCM, "AEAD_AES_128_GCM", 16, 12 },
		{ OM_SDP_AEAD_AES_256_GCM, "AEAD_AES_256_GCM", 32, 12 },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char line[200], key[100];
		struct om_sdp_crypto c;
		const char *why;
		UT_EQ_STR(t[i].name, om_sdp_suite_name(t[i].s));
		UT_EQ_INT(t[i].key, om_sdp_suite_key_len(t[i].s));
		UT_EQ_INT(t[i].salt, om_sdp_suite_salt_len(t[i].s));
		UT_EQ_INT(t[i].s, om_sdp_suite_parse(om_str_c(t[i].name)));
		/* Exact length: usable. */
		snprintf(line, sizeof(line), "7 %s inline:%s", t[i].name,
		         tu_key(t[i].key + t[i].salt, key));
		UT_EQ_INT(0, parse(line, &c, &why));
		UT_TRUE(c.unusable == NULL);
		UT_EQ_INT(7, c.tag);
		UT_EQ_INT(t[i].s, c.suite);
		UT_EQ_INT(t[i].key + t[i].salt, c.keysalt_len);
		UT_EQ_INT(t[i].key + t[i].salt - 1, c.keysalt[t[i].key + t[i].salt - 1]);
		om_sdp_crypto_clear(&c);
		/* One byte short, one byte long: well-formed, unusable. */
		snprintf(line, sizeof(line), "7 %s inline:%s", t[i].name,
		         tu_key(t[i].key + t[i].salt - 1, key));
		UT_EQ_INT(0, parse(line, &c, &why));
		UT_EQ_STR("crypto_key_length", c.unusable);
		snprintf(line, sizeof(line), "7 %s inline:%s", t[i].name,
		         tu_key(t[i].key + t[i].salt + 1, key));
		UT_EQ_INT(0, parse(line, &c, &why));
		UT_EQ_STR("crypto_key_length", c.unusable);
	}
	UT_EQ_INT(OM_SDP_SUITE_UNKNOWN, om_sdp_suite_parse(OM_STR_LIT("AES_CM_256_HMAC_SHA1_80")));
	UT_EQ_INT(OM_SDP_AES_CM_128_HMAC_SHA1_80,
	          om_sdp_suite_parse(OM_STR_LIT("aEs_cM_128_HMaC_ShA1_80")));
}

UT_TEST(unpadded_base64_and_case)
{
	struct om_sdp_crypto c;
	const char *why;
	/* 28 bytes = 38 characters unpadded. */
	char key[100];
	tu_key(28, key);
	key[38] = '\0';
	char line[200];
	snprintf(line, sizeof(line), "1 aead_aes_128_gcm INLINE:%s", key);
	UT_EQ_INT(0, parse(line, &c, &why));
	UT_TRUE(c.unusable == NULL);
	UT_EQ_INT(28, c.keysalt_len);
}

UT_TEST(syntax_errors)
{
	static const struct {
		const char *v, *why;
	} t[] = {
		{ "x AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ",
		  "crypto_bad_tag" },
		{ "1234567890 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ",
		  "crypto_bad_tag" },
		{ " 1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ",
		  "crypto_bad_tag" },
		{ "", "crypto_bad_tag" },
		{ "1", "crypto_missing_suite" },
		{ "1 AES-CM inline:WnD7", "crypto_bad_suite" },
		{ "1 AES_CM_128_HMAC_SHA1_80", "crypto_missing_key" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline", "crypto_missing_key" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:", "crypto_missing_key" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5y*Q",
		  "crypto_bad_base64" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ=",
		  "crypto_bad_base64" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:W", "crypto_bad_base64" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ|2^x",
		  "crypto_bad_lifetime" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ|2^20|1:0",
		  "crypto_bad_mki" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ|2^20|1:129",
		  "crypto_bad_mki" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ|2^20|1:4|x",
		  "crypto_bad_key_info" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ KDR=25",
		  "crypto_bad_kdr" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ WSH=12",
		  "crypto_bad_wsh" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ FEC_ORDER=X",
		  "crypto_bad_fec_order" },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct om_sdp_crypto c;
		const char *why;
		if (parse(t[i].v, &c, &why) != EINVAL)
			UT_FAIL("accepted: %s", t[i].v);
		UT_EQ_STR(t[i].why, why);
	}
}

UT_TEST(unusable_lines)
{
	static const struct {
		const char *v, *why;
	} t[] = {
		{ "1 CRYPTO_X inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ",
		  "crypto_unknown_suite" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQWnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ",
		  "crypto_key_length" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ|2^20|1:5",
		  "crypto_mki_length" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ|1:128",
		  "crypto_mki_length" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ|256:1",
		  "crypto_mki_value" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ|2^20|1:4;inline:t0r0/apkukU7JjjfR0mY8GEimBq4OiPEm9eKSFOx|2^20|2:4",
		  "crypto_multiple_keys" },
		/* Lifetimes a call cannot live with (openum does not re-key)
		 * and ones beyond RFC 3711 §9.2's 2^48. */
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ|1",
		  "crypto_lifetime" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ|2^0",
		  "crypto_lifetime" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ|2^10",
		  "crypto_lifetime" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ|1048575",
		  "crypto_lifetime" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ|2^49",
		  "crypto_lifetime" },
		{ "1 AES_CM_128_HMAC_SHA1_32 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ|2^63|1:1",
		  "crypto_lifetime" },
		{ "1 AEAD_AES_128_GCM inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5w|2^49",
		  "crypto_lifetime" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ|18446744073709551615",
		  "crypto_lifetime" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ KDR=1",
		  "crypto_kdr_unsupported" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ UNENCRYPTED_SRTP",
		  "crypto_weakened" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ UNENCRYPTED_SRTCP",
		  "crypto_weakened" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ unauthenticated_srtp",
		  "crypto_weakened" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ FEC_KEY=inline:t0r0/apkukU7JjjfR0mY8GEimBq4OiPEm9eKSFOx",
		  "crypto_fec_key_unsupported" },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ FOO=1",
		  "crypto_unknown_param" },
		{ "1 AES_CM_128_HMAC_SHA1_80 uri:http://example.com/key", "crypto_key_method" },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct om_sdp_crypto c;
		const char *why;
		if (parse(t[i].v, &c, &why) != 0)
			UT_FAIL("refused (%s): %s", why, t[i].v);
		if (!c.unusable || strcmp(c.unusable, t[i].why) != 0)
			UT_FAIL("%s: expected %s, got %s", t[i].v, t[i].why,
			        c.unusable ? c.unusable : "(usable)");
		om_sdp_crypto_clear(&c);
	}
}

UT_TEST(accepted_params)
{
	struct om_sdp_crypto c;
	const char *why;
	UT_EQ_INT(
	    0,
	    parse(
	        "123456789 AES_CM_128_HMAC_SHA1_32 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ|2^31 KDR=0 WSH=128 FEC_ORDER=FEC_SRTP",
	        &c, &why));
	UT_TRUE(c.unusable == NULL);
	UT_EQ_INT(123456789, c.tag);
	UT_TRUE(c.has_lifetime);
	UT_EQ_INT(1LL << 31, c.lifetime);
	UT_EQ_INT(128, c.wsh);
	UT_EQ_INT(0, c.kdr);
	UT_EQ_INT(
	    0,
	    parse(
	        "0 AES_CM_128_HMAC_SHA1_80\tinline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ|1048576",
	        &c, &why));
	UT_TRUE(c.unusable == NULL);
	UT_EQ_INT(0, c.tag);
	UT_EQ_INT(1048576, c.lifetime);
	om_sdp_crypto_clear(&c);
	UT_EQ_INT(0, c.keysalt_len);
}

/* MKIs of 1-4 octets (RFC 4568 §6.1, RFC 3711 §3.1) and the lifetimes at
 * both ends of what openum accepts. */
UT_TEST(mki_and_lifetime_accepted)
{
	static const struct {
		const char *v;
		uint64_t lifetime;
		uint32_t mki, mki_len;
	} t[] = {
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ|2^31|1:1",
		  1ULL << 31, 1, 1 },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ|255:1",
		  0, 255, 1 },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ|2^20|4294967295:4",
		  1ULL << 20, 4294967295u, 4 },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ|1048576|65535:2",
		  1ULL << 20, 65535, 2 },
		{ "1 AES_CM_128_HMAC_SHA1_80 inline:WnD7c1ksDGs+dIefCEo8omPg4uO8DYIinNGL5yxQ|2^48",
		  1ULL << 48, 0, 0 },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct om_sdp_crypto c;
		const char *why;
		if (parse(t[i].v, &c, &why) != 0)
			UT_FAIL("refused (%s): %s", why, t[i].v);
		if (c.unusable)
			UT_FAIL("%s: unusable (%s)", t[i].v, c.unusable);
		UT_EQ_INT(t[i].lifetime, c.has_lifetime ? c.lifetime : 0);
		UT_EQ_INT(t[i].mki_len, c.has_mki ? c.mki_len : 0);
		UT_EQ_INT(t[i].mki, c.has_mki ? c.mki_value : 0);
		om_sdp_crypto_clear(&c);
	}
	struct om_sdp_crypto_key k = { .mki_value = 0x0102, .mki_len = 3 };
	uint8_t b[OM_SDP_MKI_MAX];
	UT_EQ_INT(3, om_sdp_mki_bytes(&k, b));
	UT_EQ_INT(0, b[0]);
	UT_EQ_INT(1, b[1]);
	UT_EQ_INT(2, b[2]);
}

UT_MAIN(UT_CASE(suites_and_lengths), UT_CASE(unpadded_base64_and_case), UT_CASE(syntax_errors),
        UT_CASE(unusable_lines), UT_CASE(accepted_params), UT_CASE(mki_and_lifetime_accepted))
