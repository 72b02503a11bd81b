//! The replica's MAC check against the documents' own worked values, not against the client's
//! signer: the ten example requests of the Paysera POS document (seeds/000_0c09e6fa46f88a7e.txt)
//! and the four public vectors of Paysera's PHP client (docs/providers.md), each verified as
//! printed; then every part of a request changed, and signers that build the string in ways the
//! document does not, refused.

use super::*;
use crate::provider::sign;

/// The key of Paysera's public PHP client examples, with which the documents' macs were made.
const KEY: &str = "IrdTc8uQodU7PRpLzzLTW6wqZAO6tAMU";
const NONCE: &str = "nQnNaSNyubfPErjRO55yaaEYo9YZfKHN";
const DOC_TS: u64 = 1343811600;

/// The POS document's ten example requests as it prints them (request line, `Host`,
/// `Authorization`; the `User-Agent` and `Content-Type` lines it also prints are left out).
const POS_DOCUMENT: [&str; 10] = [
    r#"GET /rest/v1/spot?code=PAYSERA*3%3ATABLE1 HTTP/1.1 Host: wallet.paysera.com Authorization: MAC id="wkVd93h2uS", ts="1343811600", nonce="nQnNaSNyubfPErjRO55yaaEYo9YZfKHN", mac="Fq2JdkPxXggdNUjjhMuMXD6TNxwyTC8bkG3bJGIx3L4=""#,
    r#"GET /rest/v1/spot/1 HTTP/1.1 Host: wallet.paysera.com Authorization: MAC id="wkVd93h2uS", ts="1343811600", nonce="nQnNaSNyubfPErjRO55yaaEYo9YZfKHN", mac="BrESuxFsVum5GlD3Wt+IRZP9mMDDDSqP87EPy17ymD4=""#,
    r#"PUT /rest/v1/spot/1/check-in HTTP/1.1 Host: wallet.paysera.com Authorization: MAC id="wkVd93h2uS", ts="1343811600", nonce="nQnNaSNyubfPErjRO55yaaEYo9YZfKHN", mac="3C/sxDllC+4px0UdbtEtTavCqB6Er8lZbIkKtWlQ92U=""#,
    r#"PUT /rest/v1/spot/1/check-out HTTP/1.1 Host: wallet.paysera.com Authorization: MAC id="wkVd93h2uS", ts="1343811600", nonce="nQnNaSNyubfPErjRO55yaaEYo9YZfKHN", mac="owzKcU4miyJ8H43dm9m2PF9FoofWSJxF6bKBeIP43yY=""#,
    r#"GET /rest/v1/order/52 HTTP/1.1 Host: wallet.paysera.com Authorization: MAC id="wkVd93h2uS", ts="1343811600", nonce="nQnNaSNyubfPErjRO55yaaEYo9YZfKHN", mac="bczsUDRIYRfi159d7eRH1NirKdVGbdkH8wn/mwyH4g0=""#,
    r#"GET /rest/v1/spots?status=waiting&limit=3 HTTP/1.1 Host: wallet.paysera.com Authorization: MAC id="wkVd93h2uS", ts="1343811600", nonce="nQnNaSNyubfPErjRO55yaaEYo9YZfKHN", mac="Uawl/ym+bO801+pgQQlgSKXFyMulwcOUGqoWZAKKrhI=""#,
    r#"PUT /rest/v1/spot/1/close HTTP/1.1 Host: wallet.paysera.com Authorization: MAC id="wkVd93h2uS", ts="1343811600", nonce="nQnNaSNyubfPErjRO55yaaEYo9YZfKHN", mac="aiRHKuK/w48Xaxb9OiCcc1tQXK5zYIOk4L/mWwY0Wtc=""#,
    r#"POST /rest/v1/spot/1/order HTTP/1.1 Host: wallet.paysera.com Authorization: MAC id="wkVd93h2uS", ts="1343811600", nonce="nQnNaSNyubfPErjRO55yaaEYo9YZfKHN", mac="ohPt7bbwTxtqXDnXLtRC82iI1EkPEwoVI1Ya9xMmDhc=", ext="body_hash=CGmZSkySf2IjkLaY8h1isHhIfV0s4zB45DtYKGYG1Ds%3D""#,
    r#"PUT /rest/v1/order/52 HTTP/1.1 Host: wallet.paysera.com Authorization: MAC id="wkVd93h2uS", ts="1343811600", nonce="nQnNaSNyubfPErjRO55yaaEYo9YZfKHN", mac="rR/gwtiNhTSonuIgKXqJlMLLSBZfgjAgaahZLN4G43s=", ext="body_hash=CGmZSkySf2IjkLaY8h1isHhIfV0s4zB45DtYKGYG1Ds%3D""#,
    r#"DELETE /rest/v1/order/52 HTTP/1.1 Host: wallet.paysera.com Authorization: MAC id="wkVd93h2uS", ts="1343811600", nonce="nQnNaSNyubfPErjRO55yaaEYo9YZfKHN", mac="hQUsJo76gvf1SBfxBdOqOj4SMReoME3z8x+lI8zERqA=""#,
];

/// The bytes whose hash the document's `body_hash` is: its order body pretty-printed with
/// four spaces (the PHP client's), not the one-line form it prints (docs/providers.md).
const DOC_BODY: &str = "{\n    \"transaction_key\": \"Pu5CPePCkm3TJPlkcbcshzkIlxeLU3WR\"\n}";
/// The one-line body the document prints beside its example.
const DOC_BODY_PRINTED: &str = r#"{ "transaction_key": "Pu5CPePCkm3TJPlkcbcshzkIlxeLU3WR" }"#;

/// A request as the tests hand it to the verifier.
struct Req {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// Reads `METHOD URI HTTP/1.1 Host: H Authorization: MAC ...` as printed.
fn parse(printed: &str, body: &[u8]) -> Req {
    let (line, rest) = printed.split_once(" HTTP/1.1 Host: ").unwrap();
    let (host, auth) = rest.split_once(" Authorization: ").unwrap();
    let (method, uri) = line.split_once(' ').unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("host", host.parse().unwrap());
    headers.insert("authorization", auth.parse().unwrap());
    Req {
        method: method.parse().unwrap(),
        uri: uri.parse().unwrap(),
        headers,
        body: body.to_vec(),
    }
}

/// A verifier for wallet.paysera.com (https: port 443) with the public key, fresh nonces.
fn wallet() -> Verifier {
    Verifier::new(Secret::new(KEY), Some("wkVd93h2uS".into()), 300, 443)
}

fn check(req: &Req, now: u64) -> Result<(), String> {
    wallet().verify(&req.method, &req.uri, &req.headers, &req.body, now)
}

/// The body an example was sent with: the document's order body when it carries an ext.
fn body_of(printed: &str) -> &'static [u8] {
    if printed.contains("ext=") {
        DOC_BODY.as_bytes()
    } else {
        b""
    }
}

#[test]
fn every_worked_mac_of_the_pos_document_verifies() {
    for printed in POS_DOCUMENT {
        let req = parse(printed, body_of(printed));
        assert_eq!(check(&req, DOC_TS), Ok(()), "{printed}");
    }
}

#[test]
fn the_public_vectors_of_paysera_php_client_verify() {
    let header = |ts: u64, mac: &str, ext: &str| {
        let mut h = format!(r#"MAC id="wkVd93h2uS", ts="{ts}", nonce="{NONCE}", mac="{mac}""#);
        if !ext.is_empty() {
            h.push_str(&format!(r#", ext="{ext}""#));
        }
        h
    };
    let form = b"grant_type=authorization_code&code=SplxlOBeZQQYbYS6WxSbIA&redirect_uri=http%3A%2F%2Flocalhost%2Fabc";
    let cases: [(&str, u64, &str, &[u8], &str); 4] = [
        (
            "GET /wallet/rest/v1/payment/10145",
            1343818800,
            "d1OlqI77u2P1IVYIv2ppL3hnrBhyaQ+gDqYMxCH+0e0=",
            b"",
            "",
        ),
        (
            "POST /wallet/oauth/v1/",
            1343818800,
            "YEIWoGDeREjJNh+IplpTcCLRNASTAMgFqa540igFcaY=",
            form,
            "body_hash=IftzxAtYliLQx46c2JAPidlHKqck0OXD7KmsHNnSptU%3D",
        ),
        (
            "GET /rest/v1/payment/10145",
            DOC_TS,
            "/qxTA8FOgT0Dd0MHh9k/sUQ3Q38ckx8+S0PBxpIuttY=",
            b"",
            "",
        ),
        (
            "GET /rest/v1/spots?status=waiting",
            DOC_TS,
            "irSg0m2b8N87EIhAENNkP+2O3E2x0KkddoTMSOEmHt8=",
            b"",
            "",
        ),
    ];
    for (line, ts, mac, body, ext) in cases {
        let printed = format!(
            "{line} HTTP/1.1 Host: wallet.paysera.com Authorization: {}",
            header(ts, mac, ext)
        );
        assert_eq!(check(&parse(&printed, body), ts), Ok(()), "{line}");
    }
}

/// Each of the seven lines, the key, the body and the ext changed in the document's POST
/// example: every one refused, so the check really covers each.
#[test]
fn any_change_to_a_worked_example_is_refused() {
    let order = POS_DOCUMENT[7];
    let good = || parse(order, DOC_BODY.as_bytes());
    assert_eq!(check(&good(), DOC_TS), Ok(()));
    let with_auth = |from: &str, to: &str| {
        let mut r = good();
        let auth = order.split_once(" Authorization: ").unwrap().1;
        let changed = auth.replace(from, to);
        assert_ne!(changed, auth, "{from}");
        r.headers.insert("authorization", changed.parse().unwrap());
        r
    };
    let mut cases: Vec<(&str, Req, u64)> = vec![
        ("ts", with_auth("1343811600", "1343811601"), DOC_TS),
        (
            "nonce",
            with_auth(NONCE, "nQnNaSNyubfPErjRO55yaaEYo9YZfKHn"),
            DOC_TS,
        ),
        ("mac", with_auth("ohPt7", "ohPt8"), DOC_TS),
    ];
    let mut r = good();
    r.method = Method::PUT;
    cases.push(("method", r, DOC_TS));
    let mut r = good();
    r.uri = "/rest/v1/spot/2/order".parse().unwrap();
    cases.push(("uri", r, DOC_TS));
    let mut r = good();
    r.uri = "/rest/v1/spot/1/order?x=1".parse().unwrap();
    cases.push(("query", r, DOC_TS));
    let mut r = good();
    r.headers
        .insert("host", "wallet.paysera.lt".parse().unwrap());
    cases.push(("host", r, DOC_TS));
    let mut r = good();
    r.headers
        .insert("host", "wallet.paysera.com:8443".parse().unwrap());
    cases.push(("port", r, DOC_TS));
    // Another body, with the ext that body would need: the mac (over ext) no longer matches.
    let other = br#"{"transaction_key": "x"}"#;
    let mut r = with_auth(
        "CGmZSkySf2IjkLaY8h1isHhIfV0s4zB45DtYKGYG1Ds%3D",
        ext_for_body(other).strip_prefix("body_hash=").unwrap(),
    );
    r.body = other.to_vec();
    cases.push(("ext", r, DOC_TS));
    let mut r = good();
    r.body = DOC_BODY_PRINTED.as_bytes().to_vec();
    cases.push(("body", r, DOC_TS));
    let mut r = good();
    r.body.clear();
    cases.push(("no body but an ext", r, DOC_TS));
    let r = parse(POS_DOCUMENT[2], DOC_BODY.as_bytes());
    cases.push(("a body but no ext", r, DOC_TS));
    cases.push(("stale", good(), DOC_TS + 301));
    for (what, req, now) in cases {
        assert!(check(&req, now).is_err(), "{what} changed, still accepted");
    }
    let wrong_key = Verifier::new(Secret::new("k"), None, 300, 443);
    let r = good();
    assert!(wrong_key
        .verify(&r.method, &r.uri, &r.headers, &r.body, DOC_TS)
        .is_err());
}

/// A mac made by hand over a given normalized string, for signers the document rules out.
fn mac_over(text: &str) -> String {
    let mut m = HmacSha256::new_from_slice(KEY.as_bytes()).unwrap();
    m.update(text.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
}

/// Signers that get the document's rule wrong in one way each, signing the document's POST
/// order example with the right key: the replica refuses every one. (The old replica used the
/// client's own functions to verify, so a client built like any of these was accepted.)
#[test]
fn signers_that_differ_from_the_document_are_refused() {
    let b64_hash = "CGmZSkySf2IjkLaY8h1isHhIfV0s4zB45DtYKGYG1Ds=";
    let ext = "body_hash=CGmZSkySf2IjkLaY8h1isHhIfV0s4zB45DtYKGYG1Ds%3D";
    let hex_hash = "0869994a4c927f622390b698f21d62b078487d5d2ce33078e43b58286606d43b";
    let printed_ext = ext_for_body(DOC_BODY_PRINTED.as_bytes());
    let lines = |host: &str, port: &str, ext: &str| {
        format!("{DOC_TS}\n{NONCE}\nPOST\n/rest/v1/spot/1/order\n{host}\n{port}\n{ext}\n")
    };
    let h = "wallet.paysera.com";
    let not_url_encoded = format!("body_hash={b64_hash}");
    let hex = format!("body_hash={hex_hash}");
    // (what, normalized string signed, ext sent)
    let signers: Vec<(&str, String, &str)> = vec![
        ("the document's own rule", lines(h, "443", ext), ext),
        (
            "ext not form-url-encoded",
            lines(h, "443", &not_url_encoded),
            &not_url_encoded,
        ),
        ("body hash in hex", lines(h, "443", &hex), &hex),
        (
            "hash of the printed one-line body",
            lines(h, "443", &printed_ext),
            &printed_ext,
        ),
        ("host and port lines swapped", lines("443", h, ext), ext),
        (
            "port with the host",
            lines("wallet.paysera.com:443", "443", ext),
            ext,
        ),
        (
            "port line left out",
            lines(h, "443", ext).replace("\n443\n", "\n"),
            ext,
        ),
        (
            "last line not ended",
            lines(h, "443", ext).trim_end().to_owned(),
            ext,
        ),
        ("ext not signed", lines(h, "443", ""), ext),
        (
            "method lower-case",
            lines(h, "443", ext).replace("POST", "post"),
            ext,
        ),
        (
            "lines in another order",
            lines(h, "443", ext).replacen(
                &format!("{DOC_TS}\n{NONCE}"),
                &format!("{NONCE}\n{DOC_TS}"),
                1,
            ),
            ext,
        ),
    ];
    assert_eq!(signers[0].1.lines().count(), 7);
    for (i, (what, text, ext)) in signers.iter().enumerate() {
        let printed = format!(
            r#"POST /rest/v1/spot/1/order HTTP/1.1 Host: {h} Authorization: MAC id="wkVd93h2uS", ts="{DOC_TS}", nonce="{NONCE}", mac="{}", ext="{ext}""#,
            mac_over(text)
        );
        let got = check(&parse(&printed, DOC_BODY.as_bytes()), DOC_TS);
        if i == 0 {
            assert_eq!(got, Ok(()), "{what}: the document's rule must verify");
            assert_eq!(
                printed, POS_DOCUMENT[7],
                "the hand-made signer is the document's"
            );
        } else {
            assert!(got.is_err(), "{what}: accepted");
        }
    }
}

#[test]
fn the_host_header_gives_host_and_port() {
    assert_eq!(host_and_port("a.b", 443), Ok(("a.b", 443)));
    assert_eq!(host_and_port("127.0.0.1:4000", 80), Ok(("127.0.0.1", 4000)));
    assert_eq!(host_and_port("[::1]:4000", 80), Ok(("[::1]", 4000)));
    assert_eq!(host_and_port("[::1]", 80), Ok(("[::1]", 80)));
    assert!(host_and_port("a.b:x", 80).is_err());
    assert_eq!(form_urlencode("a+/= ~*"), "a%2B%2F%3D+%7E%2A");
}

/// The client's signer and this verifier agree on a loopback request (the replica's everyday
/// traffic), and the verifier's own rules: stale ts, replayed nonce, foreign key, changed body.
fn signed(verifier_key: &str, ts: u64, nonce: &str, body: &[u8]) -> HeaderMap {
    let ext = if body.is_empty() {
        String::new()
    } else {
        sign::paysera_body_hash_ext(body)
    };
    let parts = sign::PayseraMacParts {
        ts,
        nonce,
        method: "POST",
        uri: "/rest/v1/spot/7/order?x=1",
        host: "127.0.0.1",
        port: 4000,
        ext: &ext,
    };
    let mac = sign::paysera_mac(verifier_key, &parts);
    let mut h = HeaderMap::new();
    let auth = sign::paysera_authorization_header("cid", ts, nonce, &mac, &ext);
    h.insert("authorization", auth.parse().unwrap());
    h.insert("host", "127.0.0.1:4000".parse().unwrap());
    h
}

#[test]
fn accepts_good_and_refuses_forged_stale_and_replayed() {
    let v = Verifier::new(Secret::new("k"), Some("cid".into()), 300, 80);
    let uri: Uri = "/rest/v1/spot/7/order?x=1".parse().unwrap();
    let body = br#"{"a":1}"#;
    let check = |h: &HeaderMap, b: &[u8], now| v.verify(&Method::POST, &uri, h, b, now);
    assert_eq!(check(&signed("k", 1000, "n1", body), body, 1000), Ok(()));
    let replay = check(&signed("k", 1000, "n1", body), body, 1001).unwrap_err();
    assert!(replay.contains("nonce"), "{replay}");
    let forged = check(&signed("other", 1000, "n2", body), body, 1000).unwrap_err();
    assert!(forged.contains("mac"), "{forged}");
    let tampered = check(&signed("k", 1000, "n3", body), b"{\"a\":2}", 1000).unwrap_err();
    assert!(tampered.contains("body_hash"), "{tampered}");
    let stale = check(&signed("k", 1000, "n4", body), body, 1400).unwrap_err();
    assert!(stale.contains("stale"), "{stale}");
    // A forged request did not use up its nonce.
    assert_eq!(check(&signed("k", 1000, "n2", body), body, 1000), Ok(()));
}
