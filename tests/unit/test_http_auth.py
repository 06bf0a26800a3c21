"""ippwire.http_auth: challenges as servers send them, and answers checked against the RFCs'
own examples."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ippwire.http_auth import TOKEN68, Challenge, Credentials, parse_challenges, preferred

# RFC 7616 section 3.9.1: one challenge per algorithm, the same nonce and opaque.
RFC7616_CHALLENGE = ('Digest realm="http-auth@example.org", qop="auth, auth-int", '
                     'algorithm={}, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
                     'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"')
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


def fields(authorization: str) -> tuple[str, dict[str, str]]:
    """An Authorization value read back with the challenge parser (same grammar)."""
    (parsed,) = parse_challenges([authorization])
    return parsed.scheme, parsed.params


@pytest.mark.parametrize(("algorithm", "response"), [
    ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
])
def test_digest_rfc7616_examples(algorithm: str, response: str) -> None:
    (challenge,) = parse_challenges([RFC7616_CHALLENGE.format(algorithm)])
    credentials = Credentials("Mufasa", "Circle of Life", cnonce=lambda: RFC7616_CNONCE)
    scheme, params = fields(credentials.authorization(challenge, "GET", "/dir/index.html"))
    assert scheme == "digest"
    assert params == {
        "username": "Mufasa", "realm": "http-auth@example.org", "uri": "/dir/index.html",
        "algorithm": algorithm, "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        "nc": "00000001", "cnonce": RFC7616_CNONCE, "qop": "auth", "response": response,
        "opaque": "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS",
    }


def test_digest_rfc2617_example_and_nonce_counts() -> None:
    (challenge,) = parse_challenges([
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'])
    credentials = Credentials("Mufasa", "Circle Of Life", cnonce=lambda: "0a4f113b")
    value = credentials.authorization(challenge, "GET", "/dir/index.html")
    assert value == (
        'Digest username="Mufasa", realm="testrealm@host.com", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, '
        'nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41"')
    # The same nonce again counts up; a new nonce (say after stale=true) starts at 1.
    assert fields(credentials.authorization(challenge, "GET", "/dir/index.html"))[1]["nc"] == \
        "00000002"
    fresh = Challenge("digest", {**challenge.params, "nonce": "another", "stale": "true"})
    assert fields(credentials.authorization(fresh, "POST", "/"))[1]["nc"] == "00000001"
    assert fields(credentials.authorization(challenge, "GET", "/"))[1]["nc"] == "00000003"


def test_digest_rfc2069_form_when_no_qop_is_offered() -> None:
    # RFC 2069 2.4, with its erratum's corrected response.
    (challenge,) = parse_challenges([
        'Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41"'])
    value = Credentials("Mufasa", "CircleOfLife").authorization(challenge, "GET",
                                                                 "/dir/index.html")
    assert value == (
        'Digest username="Mufasa", realm="testrealm@host.com", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", '
        'response="1949323746fe6a43ef61f9606e7febea", opaque="5ccc069c403ebaf9f0171e9517f40e41"')


@pytest.mark.parametrize(("algorithm", "hash_name"), [("MD5-sess", "md5"),
                                                     ("SHA-256-sess", "sha256")])
def test_digest_session_algorithms(algorithm: str, hash_name: str) -> None:
    def h(text: str) -> str:
        return hashlib.new(hash_name, text.encode()).hexdigest()

    # IIS's Digest challenge has exactly this shape (no spaces, charset, MD5-sess).
    (challenge,) = parse_challenges([
        f'Digest qop="auth",algorithm={algorithm},nonce="+Upgraded+v1abc==",charset=utf-8,'
        'realm="Digest"'])
    password = 's3cret "q"'
    credentials = Credentials("print", password, cnonce=lambda: "c0ffee")
    _, params = fields(credentials.authorization(challenge, "POST", "/printers/hp/.printer"))
    # RFC 7616 3.4.2: A1 = H(user:realm:password):nonce:cnonce for the -sess variants.
    ha1 = h(h(f"print:Digest:{password}") + ":+Upgraded+v1abc==:c0ffee")
    ha2 = h("POST:/printers/hp/.printer")
    assert params["algorithm"] == algorithm
    assert params["response"] == h(f"{ha1}:+Upgraded+v1abc==:00000001:c0ffee:auth:{ha2}")


def test_basic_rfc7617_examples() -> None:
    basic = Challenge("basic", {"realm": "WallyWorld"})
    assert Credentials("Aladdin", "open sesame").authorization(basic, "POST", "/") == \
        "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    assert Credentials("test", "123\u00a3").authorization(basic, "POST", "/") == \
        "Basic dGVzdDoxMjPCow=="
    with pytest.raises(ValueError, match="':'"):
        Credentials("a:b", "x").authorization(basic, "POST", "/")


def test_credentials_never_show_the_password() -> None:
    credentials = Credentials("alice", "hunter2-secret")
    assert "hunter2" not in repr(credentials)
    assert "hunter2" not in str(credentials)
    assert "alice" in repr(credentials)


@pytest.mark.parametrize("challenge", [
    Challenge("digest", {"realm": "x"}),  # no nonce
    Challenge("digest", {"nonce": "n", "qop": "auth-int"}),  # only integrity protection
    Challenge("digest", {"nonce": "n", "algorithm": "SHA-512-256"}),
    Challenge("negotiate", {}),
    Challenge("ntlm", {}),
])
def test_unanswerable_challenges(challenge: Challenge) -> None:
    assert preferred([challenge]) is None
    with pytest.raises(ValueError):
        Credentials("u", "p").authorization(challenge, "POST", "/")


NEGOTIATE_BLOB = "oYH1MIHyoAMKAQChCwYJKoZIgvcSAQICooHdBIHaYIHXBgkqhkiG9xIBAgICAG+ByzCByKADAgEF=="

# Real headers: CUPS 2.x (Basic, with its local-peer schemes beside it), CUPS 1.x Digest
# (no qop), Windows print servers (IIS: Negotiate and NTLM as separate values, then Basic or
# Digest), Apache mod_auth_digest.
REAL_HEADERS: list[tuple[list[str], list[Challenge], str | None]] = [
    (['Basic realm="CUPS"'], [Challenge("basic", {"realm": "CUPS"})], "basic"),
    (['Basic realm="CUPS", PeerCred', 'Local trc="y"'],
     [Challenge("basic", {"realm": "CUPS"}), Challenge("peercred", {}),
      Challenge("local", {"trc": "y"})], "basic"),
    (['Digest realm="CUPS", nonce="a4f2b1c0e9d8"'],
     [Challenge("digest", {"realm": "CUPS", "nonce": "a4f2b1c0e9d8"})], "digest"),
    (["Negotiate", "NTLM", 'Basic realm="printserver.corp.example"'],
     [Challenge("negotiate", {}), Challenge("ntlm", {}),
      Challenge("basic", {"realm": "printserver.corp.example"})], "basic"),
    (["Negotiate " + NEGOTIATE_BLOB], [Challenge("negotiate", {TOKEN68: NEGOTIATE_BLOB})], None),
    (['Digest realm="private", nonce="Ny8yLzIwMDIgMzoyNjoyNCBQTQ", algorithm=MD5, '
      'domain="/printers", qop="auth"'],
     [Challenge("digest", {"realm": "private", "nonce": "Ny8yLzIwMDIgMzoyNjoyNCBQTQ",
                           "algorithm": "MD5", "domain": "/printers", "qop": "auth"})],
     "digest"),
]


@pytest.mark.parametrize(("values", "expected", "chosen"), REAL_HEADERS)
def test_real_server_headers(values: list[str], expected: list[Challenge],
                             chosen: str | None) -> None:
    challenges = parse_challenges(values)
    assert challenges == expected
    best = preferred(challenges)
    assert (best.scheme if best else None) == chosen


def test_rfc7235_example_and_quoting() -> None:
    challenges = parse_challenges(
        ['Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"'])
    assert challenges == [
        Challenge("newauth", {"realm": "apps", "type": "1", "title": 'Login to "apps"'}),
        Challenge("basic", {"realm": "simple"}),
    ]
    # Scheme and parameter names are case-insensitive; BWS around "="; the first of a
    # repeated parameter counts; a bare base64 nonce is taken as it is.
    (digest,) = parse_challenges(['DIGEST  Realm = "r" ,NONCE=ab/c+d==,realm="other"'])
    assert digest == Challenge("digest", {"realm": "r", "nonce": "ab/c+d=="})


def test_junk_is_skipped() -> None:
    assert parse_challenges(["", " , ,", 'realm="orphan", Basic realm="x"', '"quoted", =',
                             'Digest nonce="n", realm="unterminated']) == [
        Challenge("basic", {"realm": "x"}), Challenge("digest", {"nonce": "n"})]


def test_preference_order() -> None:
    basic = Challenge("basic", {"realm": "r"})
    md5 = Challenge("digest", {"nonce": "1", "qop": "auth"})
    md5_sess = Challenge("digest", {"nonce": "2", "algorithm": "md5-sess"})
    sha = Challenge("digest", {"nonce": "3", "algorithm": "SHA-256", "qop": "auth-int, auth"})
    sha_sess = Challenge("digest", {"nonce": "4", "algorithm": "SHA-256-sess"})
    assert preferred([basic, md5, sha, md5_sess]) is sha
    assert preferred([basic, sha_sess, sha]) is sha_sess  # the first among equals
    assert preferred([basic, md5_sess, md5]) is md5_sess
    assert preferred([Challenge("negotiate", {}), basic]) is basic
    assert preferred([]) is None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from('ab=",\\ \t/+DigestBasic'), max_size=40),
                max_size=3))
def test_any_header_text_parses_without_an_exception(values: list[str]) -> None:
    for challenge in parse_challenges(values):
        assert challenge.scheme == challenge.scheme.lower()
        if preferred([challenge]) is not None:
            Credentials("u", "p", cnonce=lambda: "c").authorization(challenge, "POST", "/")


def test_a_digest_challenge_with_a_control_character_is_not_answered() -> None:
    """Found by the http-auth fuzz target: a CR in the realm would have been echoed into the
    Authorization header."""
    [challenge] = parse_challenges(['Digest realm="a\rb", nonce="n"'])
    assert preferred([challenge]) is None
