//! The token flow end to end, and every way a token or a credential can be wrong: each is a
//! 401 (or 400 for a malformed token request) in problem+json, and nothing changes.
//!
//! The JWT attack set of issue 23 (item 4), where each is tried: `alg: none`, HS256 signed
//! with the public key, expired, not yet valid (`nbf` ahead), wrong audience, wrong issuer,
//! unknown `kid`, no `kid`, a foreign key reusing our `kid`, a tampered payload:
//! [`bad_tokens_change_nothing`]; a revoked client and a suspended tenant:
//! [`revocation_and_suspension`]; another tenant's ids (404 like a missing id, on every
//! endpoint that takes one): `isolation.rs` `foreign_ids_look_missing`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::common::{Res, TestServer};
use crate::on_each_backend;

on_each_backend!(token_flow, token_flow);
on_each_backend!(token_request_errors, token_request_errors);
on_each_backend!(bad_tokens_change_nothing, bad_tokens_change_nothing);
on_each_backend!(
    revocation_and_suspension_act_at_once,
    revocation_and_suspension
);
on_each_backend!(secret_rotation_overlap, secret_rotation);

async fn token_flow(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let r = s
        .token_request(&s.platform.client_id, &s.platform.secret)
        .await;
    let body = r.ok(200);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(r.headers["cache-control"], "no-store");
    let token = body["access_token"].as_str().unwrap().to_owned();

    // The token names a key published in the JWKS, and its claims say who the caller is.
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    let jwks = TestServer::read(
        s.http
            .get(format!("{}/.well-known/jwks.json", s.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let keys = jwks.ok(200)["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kid"].as_str(), header.kid.as_deref());
    assert_eq!(keys[0]["kty"], "OKP");
    assert!(
        keys[0].get("d").is_none(),
        "the private key must never be published"
    );
    let claims = payload(&token);
    assert_eq!(claims["tenant_id"], s.platform.tenant_id.to_string());
    assert_eq!(claims["tenant_kind"], "platform");
    assert_eq!(claims["role"], "admin");
    assert_eq!(claims["sub"], s.platform.client_id);
    assert_eq!(claims["aud"], "wrap-api");
    assert_eq!(claims["iss"], "wrapd");

    let tenants = s.get(&token, "/v1/tenants").await;
    let items = tenants.ok(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["kind"], "platform");

    // HTTP Basic client authentication works too (RFC 6749 section 2.3.1).
    let r = TestServer::read(
        s.http
            .post(format!("{}/oauth/token", s.base))
            .basic_auth(&s.platform.client_id, Some(&s.platform.secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(r.ok(200)["access_token"].is_string());
    s.stop().await;
}

fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

async fn token_request_errors(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let url = format!("{}/oauth/token", s.base);
    let form = |pairs: &[(&str, &str)]| {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let http = s.http.clone();
        let url = url.clone();
        async move { TestServer::read(http.post(url).form(&pairs).send().await.unwrap()).await }
    };

    // Wrong secret and unknown client: the same 401 invalid_client, nothing said about which.
    let wrong = s
        .token_request(&s.platform.client_id, "not-the-secret")
        .await;
    let unknown = s.token_request("cli_nobody", "whatever").await;
    for r in [&wrong, &unknown] {
        let p = r.problem(401);
        assert_eq!(p["error"], "invalid_client");
        assert!(r.headers.contains_key("www-authenticate"));
    }
    assert_eq!(wrong.body, unknown.body);

    let r = form(&[
        ("client_id", &s.platform.client_id),
        ("client_secret", &s.platform.secret),
    ])
    .await;
    assert_eq!(r.problem(400)["error"], "invalid_request");
    assert!(r.body["detail"].as_str().unwrap().contains("grant_type"));

    let r = form(&[
        ("grant_type", "password"),
        ("client_id", &s.platform.client_id),
        ("client_secret", &s.platform.secret),
    ])
    .await;
    assert_eq!(r.problem(400)["error"], "unsupported_grant_type");

    let r = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", &s.platform.client_id),
        ("client_id", &s.platform.client_id),
        ("client_secret", &s.platform.secret),
    ])
    .await;
    assert_eq!(r.problem(400)["error"], "invalid_request");

    let r = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", &s.platform.client_id),
    ])
    .await;
    assert!(
        r.problem(400)["detail"]
            .as_str()
            .unwrap()
            .contains("client_secret")
    );

    // Credentials two ways at once.
    let r = TestServer::read(
        s.http
            .post(&url)
            .basic_auth(&s.platform.client_id, Some(&s.platform.secret))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", s.platform.client_id.as_str()),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.problem(400)["error"], "invalid_request");

    // JSON is not what the token endpoint reads.
    let r = TestServer::read(
        s.http
            .post(&url)
            .json(&json!({"grant_type": "client_credentials"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.problem(415);

    // GET is not a token request.
    let r = TestServer::read(s.http.get(&url).send().await.unwrap()).await;
    r.problem(405);
    s.stop().await;
}

/// Signs `claims` with `pem` (Ed25519), `kid` in the header.
fn sign(pem: &str, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_ed_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

async fn bad_tokens_change_nothing(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let good = s.token(&s.platform).await;
    let header = jsonwebtoken::decode_header(&good).unwrap();
    let kid = header.kid.clone().unwrap();
    let claims = payload(&good);
    let now = chrono::Utc::now().timestamp();
    let with = |patch: Value| {
        let mut c = claims.clone();
        for (k, v) in patch.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };

    let foreign_key = tenants::jwt::generate_dev_key().unwrap();
    let mut tampered = good.split('.').map(str::to_owned).collect::<Vec<_>>();
    tampered[1] = URL_SAFE_NO_PAD.encode(
        serde_json::to_vec(&with(
            json!({"tenant_id": uuid::Uuid::now_v7().to_string()}),
        ))
        .unwrap(),
    );
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","typ":"JWT","kid":"{kid}"}}"#)),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
    );
    let no_kid = jsonwebtoken::encode(
        &Header::new(Algorithm::EdDSA),
        &claims,
        &EncodingKey::from_ed_pem(s.key_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    // HS256 keyed with the published public key: the algorithm-confusion attack.
    let public_x = {
        let jwks = TestServer::read(
            s.http
                .get(format!("{}/.well-known/jwks.json", s.base))
                .send()
                .await
                .unwrap(),
        )
        .await;
        jwks.body["keys"][0]["x"].as_str().unwrap().to_owned()
    };
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some(kid.clone());
    let confused =
        jsonwebtoken::encode(&hs, &claims, &EncodingKey::from_secret(public_x.as_bytes())).unwrap();

    let cases: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("not a JWT", Some("garbage".to_owned())),
        (
            "expired",
            Some(sign(
                &s.key_pem,
                &kid,
                &with(json!({"iat": now - 3600, "exp": now - 60})),
            )),
        ),
        (
            "unknown key",
            Some(sign(&foreign_key, "other-kid", &claims)),
        ),
        (
            "foreign key reusing our kid",
            Some(sign(&foreign_key, &kid, &claims)),
        ),
        (
            "not yet valid (nbf in the future)",
            Some(sign(
                &s.key_pem,
                &kid,
                &with(json!({"nbf": now + 600, "exp": now + 900})),
            )),
        ),
        ("no kid", Some(no_kid)),
        ("alg none", Some(alg_none)),
        ("HS256 with the public key", Some(confused)),
        ("tampered payload", Some(tampered.join("."))),
        (
            "wrong audience",
            Some(sign(&s.key_pem, &kid, &with(json!({"aud": "another-api"})))),
        ),
        (
            "wrong issuer",
            Some(sign(
                &s.key_pem,
                &kid,
                &with(json!({"iss": "someone-else"})),
            )),
        ),
    ];
    let audit_before = s.audit_count().await;
    for (what, token) in &cases {
        let mut req = s
            .http
            .post(format!("{}/v1/tenants", s.base))
            .json(&json!({"kind": "distributor", "name": format!("Bank {what}"), "contact_email": "a@b.example"}));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r: Res = TestServer::read(req.send().await.unwrap()).await;
        assert_eq!(r.status, 401, "{what}: {}", r.text);
        r.problem(401);
        assert!(
            r.headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer"),
            "{what}"
        );
    }
    // Nothing was created, nothing recorded.
    let list = s.get(&good, "/v1/tenants").await;
    assert_eq!(list.ok(200)["items"].as_array().unwrap().len(), 1);
    assert_eq!(s.audit_count().await, audit_before);
    // The good token still works, signed the same way as the forged ones: the test can fail.
    let fresh = sign(
        &s.key_pem,
        &kid,
        &with(json!({"iat": now, "exp": now + 60})),
    );
    s.get(&fresh, "/v1/tenants").await.ok(200);
    s.stop().await;
}

async fn revocation_and_suspension(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let root = s.token(&s.platform).await;
    let bank = s.make_tenant(&root, "distributor", "Mizuho Wraps").await;
    let admin = s.make_client(&root, bank, "admin").await;
    let viewer = s.make_client(&root, bank, "viewer").await;
    let admin_token = s.token(&admin).await;
    let viewer_token = s.token(&viewer).await;
    let own = format!("/v1/tenants/{bank}");
    s.get(&admin_token, &own).await.ok(200);
    s.get(&viewer_token, &own).await.ok(200);

    // Revoking the admin client: its live token and its secret stop working at once.
    let r = s
        .post(
            &root,
            &format!("/v1/tenants/{bank}/clients/{}/revoke", admin.id),
            None,
        )
        .await;
    assert_eq!(r.ok(200)["status"], "revoked");
    s.get(&admin_token, &own).await.problem(401);
    assert_eq!(
        s.token_request(&admin.client_id, &admin.secret)
            .await
            .problem(401)["error"],
        "invalid_client"
    );
    s.get(&viewer_token, &own).await.ok(200);

    // Suspending the tenant: every token of it stops, and no new one is issued.
    let r = s
        .post(&root, &format!("/v1/tenants/{bank}/suspend"), None)
        .await;
    assert_eq!(r.ok(200)["status"], "suspended");
    s.get(&viewer_token, &own).await.problem(401);
    s.token_request(&viewer.client_id, &viewer.secret)
        .await
        .problem(401);

    // Resuming brings the unrevoked client back.
    s.post(&root, &format!("/v1/tenants/{bank}/resume"), None)
        .await
        .ok(200);
    s.get(&viewer_token, &own).await.ok(200);
    s.token(&viewer).await;
    s.stop().await;
}

async fn secret_rotation(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let root = s.token(&s.platform).await;
    let bank = s.make_tenant(&root, "manager", "Nomura AM").await;
    let admin = s.make_client(&root, bank, "admin").await;
    let admin_token = s.token(&admin).await;
    let path = format!("/v1/tenants/{bank}/clients/{}/rotate", admin.id);

    // With the default overlap the old secret keeps working beside the new one.
    let r = s.post(&admin_token, &path, None).await;
    let body = r.ok(200).clone();
    let new_secret = body["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, admin.secret);
    assert!(body["previous_secret_valid_until"].is_string(), "{body}");
    s.token_request(&admin.client_id, &admin.secret)
        .await
        .ok(200);
    s.token_request(&admin.client_id, &new_secret).await.ok(200);

    // Overlap 0: the secret before retires at once.
    let r = s
        .post(&admin_token, &path, Some(json!({"overlap_seconds": 0})))
        .await;
    let newest = r.ok(200)["client_secret"].as_str().unwrap().to_owned();
    s.token_request(&admin.client_id, &new_secret)
        .await
        .problem(401);
    s.token_request(&admin.client_id, &newest).await.ok(200);

    // Out of range, or a stray field: refused, nothing rotated.
    let r = s
        .post(
            &admin_token,
            &path,
            Some(json!({"overlap_seconds": 99_999_999})),
        )
        .await;
    assert_eq!(r.problem(422)["errors"][0]["field"], "overlap_seconds");
    let r = s
        .post(&admin_token, &path, Some(json!({"overlap": 10})))
        .await;
    r.problem(422);
    s.token_request(&admin.client_id, &newest).await.ok(200);
    s.stop().await;
}
