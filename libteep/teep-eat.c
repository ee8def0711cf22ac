/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* teep-eat.c: EAT claims sets (RFC 9711) for the TEEP profile: decode, encode, validate */

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "teep-eat.h"

/* ---- size rules, shared by the decoder and the encoder ---- */

static bool nonce_size_ok(size_t n) {
        return n >= TEEP_EAT_NONCE_MIN && n <= TEEP_EAT_NONCE_MAX;
}
static bool ueid_size_ok(size_t n) {
        return n >= TEEP_EAT_UEID_MIN && n <= TEEP_EAT_UEID_MAX;
}
static bool hwmodel_size_ok(size_t n) {
        return n >= TEEP_EAT_HWMODEL_MIN && n <= TEEP_EAT_HWMODEL_MAX;
}
static bool kid_size_ok(size_t n) {
        return n >= 1 && n <= TEEP_EAT_KID_MAX;
}

/* ---- decoding ---- */

/* Bit of a known claim in the duplicate mask, or -1. */
static int claim_bit(int64_t key) {
        static const int64_t known[] = {
                TEEP_EAT_ISS,       TEEP_EAT_EXP,     TEEP_EAT_IAT,    TEEP_EAT_CNF,
                TEEP_EAT_NONCE,     TEEP_EAT_UEID,    TEEP_EAT_OEMID,  TEEP_EAT_HWMODEL,
                TEEP_EAT_HWVERSION, TEEP_EAT_PROFILE, TEEP_EAT_SWNAME, TEEP_EAT_SWVERSION,
                TEEP_EAT_MANIFESTS,
        };
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
                if (known[i] == key)
                        return (int)i;
        return -1;
}

static int bad_claim(TeepError *err, const char *name, const char *want) {
        return teep_error_set(err, -EBADMSG, TEEP_REASON_EAT_CLAIM, "%s: want %s", name, want);
}

static int read_bytes_sized(TeepCborReader *r, TeepBuf *ret, bool (*size_ok)(size_t), const char *name,
                            const char *want, TeepError *err) {
        TeepBuf b;
        if (teep_cbor_read_bytes(r, &b, err) < 0)
                return bad_claim(err, name, want);
        if (!size_ok(b.len))
                return teep_error_set(err, -EBADMSG, TEEP_REASON_EAT_CLAIM, "%s: %zu bytes, want %s", name,
                                      b.len, want);
        *ret = b;
        return 0;
}

/* NumericDate: int, or a float we truncate to whole seconds. */
static int read_time(TeepCborReader *r, int64_t *ret, const char *name, TeepError *err) {
        TeepCborItem it;

        if (teep_cbor_peek(r, &it) < 0)
                return bad_claim(err, name, "a NumericDate");
        if (it.type == TEEP_CBOR_FLOAT) {
                /* NaN fails both comparisons */
                if (!(it.fvalue >= -9223372036854775808.0 && it.fvalue < 9223372036854775808.0))
                        return bad_claim(err, name, "a finite NumericDate");
                (void)teep_cbor_read(r, &it);
                *ret = (int64_t)it.fvalue;
                return 0;
        }
        if (teep_cbor_read_int(r, ret, err) < 0)
                return bad_claim(err, name, "a NumericDate (int or float)");
        return 0;
}

/* [version: text, ? scheme: int] */
static int read_version(TeepCborReader *r, TeepEatVersion *ret, bool legacy_bstr, bool *ret_was_bstr,
                        const char *name, TeepError *err) {
        TeepEatVersion v = {};
        TeepCborItem it;
        size_t n;

        if (teep_cbor_read_array(r, &n, err) < 0 || n < 1 || n > 2)
                return bad_claim(err, name, "[version: text, ? scheme: int]");
        if (teep_cbor_peek(r, &it) < 0)
                return bad_claim(err, name, "[version: text, ? scheme: int]");
        if (it.type == TEEP_CBOR_BYTES && legacy_bstr) {
                (void)teep_cbor_read_bytes(r, &v.version, err);
                if (ret_was_bstr)
                        *ret_was_bstr = true;
        } else if (teep_cbor_read_text(r, &v.version, err) < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_EAT_CLAIM,
                                      "%s: version must be a text string, found %s", name,
                                      teep_cbor_type_to_string(it.type));
        if (n == 2) {
                if (teep_cbor_read_int(r, &v.scheme, err) < 0)
                        return bad_claim(err, name, "an integer version scheme");
                v.has_scheme = true;
        }
        *ret = v;
        return 0;
}

static int read_cnf(TeepCborReader *r, TeepEat *eat, TeepError *err) {
        size_t n;
        int64_t label;

        if (teep_cbor_read_map(r, &n, err) < 0 || n != 1)
                return bad_claim(err, "cnf", "a map with one confirmation method");
        if (teep_cbor_read_int(r, &label, err) < 0)
                return bad_claim(err, "cnf", "an integer confirmation method");
        switch (label) {
        case TEEP_EAT_CNF_KID_LABEL:
                if (read_bytes_sized(r, &eat->cnf_kid, kid_size_ok, "cnf kid", "1..64 bytes", err) < 0)
                        return -EBADMSG;
                eat->cnf_type = TEEP_EAT_CNF_KID;
                return 0;
        case TEEP_EAT_CNF_COSE_KEY_LABEL: {
                TeepCborItem it;
                if (teep_cbor_peek(r, &it) < 0 || it.type != TEEP_CBOR_MAP ||
                    teep_cbor_skip(r, &eat->cnf_cose_key) < 0)
                        return bad_claim(err, "cnf", "a COSE_Key map");
                eat->cnf_type = TEEP_EAT_CNF_COSE_KEY;
                return 0;
        }
        default:
                return teep_error_set(err, -EOPNOTSUPP, TEEP_REASON_EAT_CLAIM,
                                      "cnf: unsupported confirmation method %" PRId64, label);
        }
}

static int read_oemid(TeepCborReader *r, TeepEat *eat, TeepError *err) {
        TeepCborItem it;

        if (teep_cbor_peek(r, &it) < 0)
                return bad_claim(err, "oemid", "bstr (3 or 16 bytes) or int");
        if (it.type == TEEP_CBOR_BYTES) {
                (void)teep_cbor_read_bytes(r, &eat->oemid, err);
                if (eat->oemid.len == TEEP_EAT_OEMID_IEEE_LEN)
                        eat->oemid_type = TEEP_EAT_OEMID_IEEE;
                else if (eat->oemid.len == TEEP_EAT_OEMID_RANDOM_LEN)
                        eat->oemid_type = TEEP_EAT_OEMID_RANDOM;
                else
                        return teep_error_set(err, -EBADMSG, TEEP_REASON_EAT_CLAIM,
                                              "oemid: %zu bytes, want 3 (IEEE OUI) or 16 (random)",
                                              eat->oemid.len);
                return 0;
        }
        if (teep_cbor_read_int(r, &eat->oemid_pen, err) < 0)
                return bad_claim(err, "oemid", "bstr (3 or 16 bytes) or int");
        eat->oemid_type = TEEP_EAT_OEMID_PEN;
        return 0;
}

static int read_manifests(TeepCborReader *r, TeepEat *eat, TeepError *err) {
        size_t n;

        if (teep_cbor_read_array(r, &n, err) < 0 || n == 0)
                return bad_claim(err, "manifests", "a non-empty array");
        if (n > TEEP_EAT_MAX_MANIFESTS)
                return teep_error_set(err, -E2BIG, TEEP_REASON_EAT_CLAIM,
                                      "manifests: %zu entries, at most %d", n, TEEP_EAT_MAX_MANIFESTS);
        for (size_t i = 0; i < n; i++) {
                TeepEatManifest *m = &eat->manifests[i];
                TeepCborItem it;
                size_t ne;

                if (teep_cbor_read_array(r, &ne, err) < 0 || ne != 2 ||
                    teep_cbor_read_uint(r, &m->content_format, err) < 0 ||
                    m->content_format > TEEP_EAT_CONTENT_FORMAT_MAX || teep_cbor_peek(r, &it) < 0)
                        return bad_claim(err, "manifests", "[content-format: uint16, body]");
                if (it.type == TEEP_CBOR_BYTES)
                        (void)teep_cbor_read_bytes(r, &m->body, err);
                else {
                        if (teep_cbor_skip(r, &m->body) < 0)
                                return bad_claim(err, "manifests", "a well-formed body");
                        m->body_is_cbor = true;
                }
        }
        eat->n_manifests = n;
        return 0;
}

static int claim_decode(TeepEat *eat, int64_t key, TeepBuf raw, unsigned flags, TeepError *err) {
        TeepCborReader r;
        TeepCborItem it;

        teep_cbor_reader_init(&r, raw);
        /* The TEEP profile forbids CBOR tags inside claims. */
        if (teep_cbor_peek(&r, &it) < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_MALFORMED, "claim %" PRId64, key);
        if (it.type == TEEP_CBOR_TAG)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_EAT_CLAIM,
                                      "claim %" PRId64 ": CBOR tags are not allowed in TEEP-profile claims",
                                      key);

        switch (key) {
        case TEEP_EAT_ISS:
                if (teep_cbor_read_text(&r, &eat->iss, err) < 0)
                        return bad_claim(err, "iss", "a text string");
                eat->has_iss = true;
                return 0;
        case TEEP_EAT_EXP:
                eat->has_exp = true;
                return read_time(&r, &eat->exp, "exp", err);
        case TEEP_EAT_IAT:
                eat->has_iat = true;
                return read_time(&r, &eat->iat, "iat", err);
        case TEEP_EAT_CNF:
                return read_cnf(&r, eat, err);
        case TEEP_EAT_NONCE:
                if (it.type == TEEP_CBOR_ARRAY)
                        return bad_claim(err, "eat_nonce", "a single byte string (TEEP profile)");
                eat->has_nonce = true;
                return read_bytes_sized(&r, &eat->nonce, nonce_size_ok, "eat_nonce", "8..64 bytes", err);
        case TEEP_EAT_UEID:
                eat->has_ueid = true;
                return read_bytes_sized(&r, &eat->ueid, ueid_size_ok, "ueid", "7..33 bytes", err);
        case TEEP_EAT_OEMID:
                return read_oemid(&r, eat, err);
        case TEEP_EAT_HWMODEL:
                eat->has_hwmodel = true;
                return read_bytes_sized(&r, &eat->hwmodel, hwmodel_size_ok, "hwmodel", "1..32 bytes", err);
        case TEEP_EAT_HWVERSION:
                eat->has_hwversion = true;
                return read_version(&r, &eat->hwversion, flags & TEEP_EAT_DECODE_LEGACY_HWVERSION,
                                    &eat->hwversion_legacy_bstr, "hwversion", err);
        case TEEP_EAT_PROFILE:
                if (it.type == TEEP_CBOR_TEXT) {
                        if (teep_cbor_read_text(&r, &eat->profile, err) < 0)
                                return bad_claim(err, "eat_profile", "valid UTF-8");
                        eat->profile_type = TEEP_EAT_PROFILE_URI;
                } else if (it.type == TEEP_CBOR_BYTES && it.str.len > 0) {
                        (void)teep_cbor_read_bytes(&r, &eat->profile, err);
                        eat->profile_type = TEEP_EAT_PROFILE_OID;
                } else
                        return bad_claim(err, "eat_profile", "a URI (text) or an OID (bstr)");
                return 0;
        case TEEP_EAT_SWNAME:
                if (teep_cbor_read_text(&r, &eat->swname, err) < 0)
                        return bad_claim(err, "swname", "a text string");
                eat->has_swname = true;
                return 0;
        case TEEP_EAT_SWVERSION:
                eat->has_swversion = true;
                return read_version(&r, &eat->swversion, false, NULL, "swversion", err);
        case TEEP_EAT_MANIFESTS:
                return read_manifests(&r, eat, err);
        default:
                return 0;
        }
}

int teep_eat_decode_flags(TeepBuf in, unsigned flags, TeepEat **ret, TeepError *err) {
        TeepBuf unknown_keys[TEEP_EAT_MAX_CLAIMS];
        uint32_t seen = 0;
        TeepCborReader r;
        TeepEat *eat;
        size_t n;
        int k;

        if (!ret)
                return -EINVAL;
        k = teep_cbor_check(in, NULL, err);
        if (k < 0)
                return teep_error_prefix(err, k, "EAT claims");
        teep_cbor_reader_init(&r, in);
        if (teep_cbor_read_map(&r, &n, err) < 0)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_EAT_CLAIM, "EAT claims set is not a map");
        if (n > TEEP_EAT_MAX_CLAIMS)
                return teep_error_set(err, -E2BIG, TEEP_REASON_EAT_CLAIM,
                                      "EAT claims set: %zu claims, at most %d", n, TEEP_EAT_MAX_CLAIMS);

        eat = calloc(1, sizeof(*eat));
        if (!eat)
                return -ENOMEM;

        for (size_t i = 0; i < n; i++) {
                TeepCborItem it;
                TeepBuf key_raw, value;
                int64_t key = 0;
                int bit = -1;

                if (teep_cbor_peek(&r, &it) < 0 || teep_cbor_skip(&r, &key_raw) < 0 ||
                    teep_cbor_skip(&r, &value) < 0) {
                        k = teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_MALFORMED, "EAT claim %zu", i);
                        goto fail;
                }
                if ((it.type == TEEP_CBOR_UINT || it.type == TEEP_CBOR_NEGINT) &&
                    it.value <= (uint64_t)INT64_MAX) {
                        key = it.type == TEEP_CBOR_UINT ? (int64_t)it.value : -1 - (int64_t)it.value;
                        bit = claim_bit(key);
                }

                if (bit >= 0) {
                        if (seen & (UINT32_C(1) << bit)) {
                                k = teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_DUPLICATE_KEY,
                                                   "EAT claim %" PRId64 " twice", key);
                                goto fail;
                        }
                        seen |= UINT32_C(1) << bit;
                        k = claim_decode(eat, key, value, flags, err);
                        if (k < 0)
                                goto fail;
                        continue;
                }

                /* Unknown claim: skipped, but a key twice still makes the map invalid. */
                for (size_t j = 0; j < eat->n_unknown; j++)
                        if (teep_buf_eq(unknown_keys[j], key_raw)) {
                                k = teep_error_set(err, -EBADMSG, TEEP_REASON_CBOR_DUPLICATE_KEY,
                                                   "EAT claims set: a key twice");
                                goto fail;
                        }
                unknown_keys[eat->n_unknown++] = key_raw;
        }

        *ret = eat;
        return 0;
fail:
        free(eat);
        return k;
}

int teep_eat_decode(TeepBuf in, TeepEat **ret, TeepError *err) {
        return teep_eat_decode_flags(in, 0, ret, err);
}

TeepEat *teep_eat_free(TeepEat *eat) {
        free(eat);
        return NULL;
}

int teep_eat_validate_teep_profile(const TeepEat *eat, TeepError *err) {
        const char *missing = NULL;

        if (!eat)
                return -EINVAL;
        if (!eat->has_ueid)
                missing = "ueid (256)";
        else if (eat->oemid_type == TEEP_EAT_OEMID_NONE)
                missing = "oemid (258)";
        else if (!eat->has_hwmodel)
                missing = "hwmodel (259)";
        else if (!eat->has_hwversion)
                missing = "hwversion (260)";
        else if (eat->n_manifests == 0)
                missing = "manifests (272)";
        else if (eat->cnf_type == TEEP_EAT_CNF_NONE)
                missing = "cnf (8)";
        if (missing)
                return teep_error_set(err, -EBADMSG, TEEP_REASON_EAT_MISSING,
                                      "the TEEP profile requires the %s claim", missing);
        return 0;
}

/* ---- encoding ---- */

static bool buf_ok(TeepBuf b) {
        return b.ptr || b.len == 0;
}

static bool text_ok(TeepBuf b) {
        return buf_ok(b) && teep_utf8_is_valid(b);
}

/* One encoded CBOR item of the wanted type (or any type with TEEP_CBOR_UNDEFINED). */
static bool item_ok(TeepBuf b, TeepCborType want) {
        TeepCborItem it;
        TeepCborReader r;

        if (!b.ptr || b.len == 0 || teep_cbor_check(b, NULL, NULL) < 0)
                return false;
        teep_cbor_reader_init(&r, b);
        if (teep_cbor_peek(&r, &it) < 0)
                return false;
        return want == TEEP_CBOR_UNDEFINED || it.type == want;
}

static bool version_ok(const TeepEatVersion *v) {
        return text_ok(v->version);
}

static int encode_check(const TeepEat *e) {
        if (e->has_iss && !text_ok(e->iss))
                return -EINVAL;
        switch (e->cnf_type) {
        case TEEP_EAT_CNF_NONE:
                break;
        case TEEP_EAT_CNF_KID:
                if (!buf_ok(e->cnf_kid) || !kid_size_ok(e->cnf_kid.len))
                        return -EINVAL;
                break;
        case TEEP_EAT_CNF_COSE_KEY:
                if (!item_ok(e->cnf_cose_key, TEEP_CBOR_MAP))
                        return -EINVAL;
                break;
        default:
                return -EINVAL;
        }
        if (e->has_nonce && (!buf_ok(e->nonce) || !nonce_size_ok(e->nonce.len)))
                return -EINVAL;
        if (e->has_ueid && (!buf_ok(e->ueid) || !ueid_size_ok(e->ueid.len)))
                return -EINVAL;
        switch (e->oemid_type) {
        case TEEP_EAT_OEMID_NONE:
        case TEEP_EAT_OEMID_PEN:
                break;
        case TEEP_EAT_OEMID_IEEE:
                if (!e->oemid.ptr || e->oemid.len != TEEP_EAT_OEMID_IEEE_LEN)
                        return -EINVAL;
                break;
        case TEEP_EAT_OEMID_RANDOM:
                if (!e->oemid.ptr || e->oemid.len != TEEP_EAT_OEMID_RANDOM_LEN)
                        return -EINVAL;
                break;
        default:
                return -EINVAL;
        }
        if (e->has_hwmodel && (!buf_ok(e->hwmodel) || !hwmodel_size_ok(e->hwmodel.len)))
                return -EINVAL;
        if (e->has_hwversion && !version_ok(&e->hwversion))
                return -EINVAL;
        switch (e->profile_type) {
        case TEEP_EAT_PROFILE_NONE:
                break;
        case TEEP_EAT_PROFILE_URI:
                if (!text_ok(e->profile))
                        return -EINVAL;
                break;
        case TEEP_EAT_PROFILE_OID:
                if (!e->profile.ptr || e->profile.len == 0)
                        return -EINVAL;
                break;
        default:
                return -EINVAL;
        }
        if (e->has_swname && !text_ok(e->swname))
                return -EINVAL;
        if (e->has_swversion && !version_ok(&e->swversion))
                return -EINVAL;
        if (e->n_manifests > TEEP_EAT_MAX_MANIFESTS)
                return -EINVAL;
        for (size_t i = 0; i < e->n_manifests; i++) {
                const TeepEatManifest *m = &e->manifests[i];
                if (m->content_format > TEEP_EAT_CONTENT_FORMAT_MAX)
                        return -EINVAL;
                if (m->body_is_cbor ? !item_ok(m->body, TEEP_CBOR_UNDEFINED) : !buf_ok(m->body))
                        return -EINVAL;
        }
        return 0;
}

static void put_version(TeepCborWriter *w, const TeepEatVersion *v) {
        teep_cbor_put_array(w, v->has_scheme ? 2 : 1);
        teep_cbor_put_text(w, (const char *)v->version.ptr, v->version.len);
        if (v->has_scheme)
                teep_cbor_put_int(w, v->scheme);
}

int teep_eat_encode(const TeepEat *e, uint8_t **ret, size_t *ret_len) {
        TeepCborWriter w;
        size_t pairs;
        int k;

        if (!e || !ret || !ret_len)
                return -EINVAL;
        k = encode_check(e);
        if (k < 0)
                return k;

        pairs = e->has_iss + e->has_exp + e->has_iat + (e->cnf_type != TEEP_EAT_CNF_NONE) + e->has_nonce +
                e->has_ueid + (e->oemid_type != TEEP_EAT_OEMID_NONE) + e->has_hwmodel + e->has_hwversion +
                (e->profile_type != TEEP_EAT_PROFILE_NONE) + e->has_swname + e->has_swversion +
                (e->n_manifests > 0);

        teep_cbor_writer_init(&w);
        teep_cbor_put_map(&w, pairs);
        if (e->has_iss) {
                teep_cbor_put_uint(&w, TEEP_EAT_ISS);
                teep_cbor_put_text(&w, (const char *)e->iss.ptr, e->iss.len);
        }
        if (e->has_exp) {
                teep_cbor_put_uint(&w, TEEP_EAT_EXP);
                teep_cbor_put_int(&w, e->exp);
        }
        if (e->has_iat) {
                teep_cbor_put_uint(&w, TEEP_EAT_IAT);
                teep_cbor_put_int(&w, e->iat);
        }
        if (e->cnf_type != TEEP_EAT_CNF_NONE) {
                teep_cbor_put_uint(&w, TEEP_EAT_CNF);
                teep_cbor_put_map(&w, 1);
                if (e->cnf_type == TEEP_EAT_CNF_KID) {
                        teep_cbor_put_uint(&w, TEEP_EAT_CNF_KID_LABEL);
                        teep_cbor_put_buf(&w, e->cnf_kid);
                } else {
                        teep_cbor_put_uint(&w, TEEP_EAT_CNF_COSE_KEY_LABEL);
                        teep_cbor_put_raw(&w, e->cnf_cose_key);
                }
        }
        if (e->has_nonce) {
                teep_cbor_put_uint(&w, TEEP_EAT_NONCE);
                teep_cbor_put_buf(&w, e->nonce);
        }
        if (e->has_ueid) {
                teep_cbor_put_uint(&w, TEEP_EAT_UEID);
                teep_cbor_put_buf(&w, e->ueid);
        }
        if (e->oemid_type != TEEP_EAT_OEMID_NONE) {
                teep_cbor_put_uint(&w, TEEP_EAT_OEMID);
                if (e->oemid_type == TEEP_EAT_OEMID_PEN)
                        teep_cbor_put_int(&w, e->oemid_pen);
                else
                        teep_cbor_put_buf(&w, e->oemid);
        }
        if (e->has_hwmodel) {
                teep_cbor_put_uint(&w, TEEP_EAT_HWMODEL);
                teep_cbor_put_buf(&w, e->hwmodel);
        }
        if (e->has_hwversion) {
                teep_cbor_put_uint(&w, TEEP_EAT_HWVERSION);
                put_version(&w, &e->hwversion);
        }
        if (e->profile_type != TEEP_EAT_PROFILE_NONE) {
                teep_cbor_put_uint(&w, TEEP_EAT_PROFILE);
                if (e->profile_type == TEEP_EAT_PROFILE_URI)
                        teep_cbor_put_text(&w, (const char *)e->profile.ptr, e->profile.len);
                else
                        teep_cbor_put_buf(&w, e->profile);
        }
        if (e->has_swname) {
                teep_cbor_put_uint(&w, TEEP_EAT_SWNAME);
                teep_cbor_put_text(&w, (const char *)e->swname.ptr, e->swname.len);
        }
        if (e->has_swversion) {
                teep_cbor_put_uint(&w, TEEP_EAT_SWVERSION);
                put_version(&w, &e->swversion);
        }
        if (e->n_manifests > 0) {
                teep_cbor_put_uint(&w, TEEP_EAT_MANIFESTS);
                teep_cbor_put_array(&w, e->n_manifests);
                for (size_t i = 0; i < e->n_manifests; i++) {
                        const TeepEatManifest *m = &e->manifests[i];
                        teep_cbor_put_array(&w, 2);
                        teep_cbor_put_uint(&w, m->content_format);
                        if (m->body_is_cbor)
                                teep_cbor_put_raw(&w, m->body);
                        else
                                teep_cbor_put_buf(&w, m->body);
                }
        }
        return teep_cbor_writer_finish(&w, ret, ret_len);
}
