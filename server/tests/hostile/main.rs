//! Hostile input against the running reference server: the real binary, started on loopback
//! ports with authentication (two users, alice and bob) and its embedded store, probed over
//! HTTP and raw TCP as an attacker would. Each input is asserted to be refused exactly as it
//! should be, and after each the data directory is checked: nothing stored, read or deleted
//! outside the caller's prefix. Grows with every finding (see the README's security section).

// Shared with tests/restart.rs; each test binary uses part of it.
#[allow(dead_code)]
mod harness;

use harness::{ALICE, BOB, Server, file};
use serde_json::json;

/// Keys a page may ask for through the JSON API, each refused with 400 and the rule's reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requested_keys_that_could_climb_or_confuse_are_refused() {
    let server = Server::start(&[]).await;
    let long = "a".repeat(600);
    let cases: &[(&str, &str)] = &[
        ("../bob/report.txt", "'..'"),
        ("a/../../x", "'..'"),
        ("..", "'..'"),
        ("./a", "'.'"),
        ("a/.", "'.'"),
        ("/etc/passwd", "relative"),
        ("a//b", "empty"),
        ("a/", "empty"),
        ("a\\..\\b", "'/' separators"),
        ("a\nb", "control"),
        ("a\u{0}b", "control"),
        ("a\u{7f}", "control"),
        ("", "empty"),
        (&long, "at most 512"),
    ];
    for (key, why) in cases {
        for path in ["/put", "/post", "/multipart"] {
            let mut body = file(6 << 20);
            body["key"] = json!(key);
            let (status, answer) = server.api(Some(ALICE), path, body).await;
            assert_eq!(status, 400, "{path} {key:?}: {answer}");
            let message = answer["error"].as_str().unwrap_or_default();
            assert!(message.contains(why), "{path} {key:?}: {message}");
        }
        server.assert_nothing_outside_prefixes();
    }
    // Percent signs are only characters in a key: the literal name lands inside the prefix.
    let mut body = file(5);
    body["key"] = json!("%2E%2E/x");
    let (status, answer) = server.api(Some(ALICE), "/put", body).await;
    assert_eq!((status, answer["key"].as_str()), (200, Some("uploads/alice/%2E%2E/x")), "{answer}");
    let put = server.put_signed(&answer, b"hello".to_vec()).await;
    assert_eq!(put.status, 200, "{put:?}");
    assert_eq!(std::fs::read(server.bucket_dir.join("uploads/alice/%2E%2E/x")).unwrap(), b"hello");
    // The embedded store keeps objects as files: a key that is the folder of another object, or
    // lies under one, is a clear 400 and not a 500 retried in vain.
    for key in ["%2E%2E", "%2E%2E/x/y"] {
        let mut body = file(5);
        body["key"] = json!(key);
        let (_, signed) = server.api(Some(ALICE), "/put", body.clone()).await;
        let put = server.put_signed(&signed, b"hello".to_vec()).await;
        assert!(put.status == 400 && put.body.contains("InvalidArgument"), "{key}: {put:?}");
        let (status, created) = server.api(Some(ALICE), "/multipart", body).await;
        assert_eq!(status, 400, "{key}: {created}");
        assert!(created["error"].as_str().unwrap().contains("InvalidArgument"), "{created}");
    }
    server.assert_nothing_outside_prefixes();
}

/// Requests signed with alice's temporary credentials, sent raw (no client normalises `..`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_reach_nothing_outside_their_prefix_and_delete_nothing() {
    let server = Server::start(&[]).await;
    server.plant_bobs_report().await;
    let (_, grant) = server.api(Some(ALICE), "/credentials", json!({})).await;
    let cases: &[(&str, &str, u16, &str)] = &[
        ("PUT", "uploads/alice/../bob/report.txt", 403, "AccessDenied"),
        ("PUT", "uploads/alice/%2E%2E/bob/report.txt", 403, "AccessDenied"),
        ("PUT", "uploads/alice/%2e%2e/%2e%2e/%2e%2e/x", 403, "AccessDenied"),
        ("PUT", "uploads/alice/..%2Fbob%2Freport.txt", 403, "AccessDenied"),
        ("PUT", "uploads/alice/a%5C..%5C..%5Cb", 403, "AccessDenied"),
        ("PUT", "uploads/bob/report.txt", 403, "AccessDenied"),
        ("PUT", "uploads/alicex/a", 403, "AccessDenied"),
        ("GET", "uploads/alice/../bob/report.txt", 403, "AccessDenied"),
        ("GET", "uploads/alice/../../../open-uploads.jsonl", 403, "AccessDenied"),
        ("GET", "uploads/alice/../../.upload_id-x", 403, "AccessDenied"),
        ("GET", "uploads/bob/report.txt", 403, "AccessDenied"),
        ("HEAD", "uploads/bob/report.txt", 403, ""),
        ("DELETE", "uploads/bob/report.txt", 403, "AccessDenied"),
        ("DELETE", "uploads/alice/../bob/report.txt", 403, "AccessDenied"),
        ("DELETE", "uploads/alice/own.txt", 403, "may not DeleteObject"),
        ("POST", "uploads/alice/../bob/x?uploads", 403, "AccessDenied"),
        ("GET", "?list-type=2", 403, "AccessDenied"),
    ];
    assert_eq!(server.with_grant(&grant, "PUT", "uploads/alice/own.txt", b"mine").await.status, 200);
    for (method, path, status, code) in cases {
        let outcome = server.with_grant(&grant, method, path, b"planted by alice").await;
        assert_eq!(outcome.status, *status, "{method} {path}: {outcome:?}");
        assert!(outcome.body.contains(code), "{method} {path}: {outcome:?}");
        assert!(!outcome.body.contains("bob's report"), "{method} {path} read bob's file");
        server.assert_nothing_outside_prefixes();
        server.assert_bobs_report_intact();
    }
    assert!(server.bucket_dir.join("uploads/alice/own.txt").exists(), "the grant deleted nothing");
    let forged = server.with_grant_token(&grant, "PUT", "uploads/alice/b.txt", b"x", Some("forged")).await;
    assert!(forged.status == 400 && forged.body.contains("InvalidToken"), "{forged:?}");
    let tokenless = server.with_grant_token(&grant, "PUT", "uploads/alice/c.txt", b"x", Some("")).await;
    assert!(tokenless.status == 400 && tokenless.body.contains("InvalidToken"), "{tokenless:?}");
}

/// HTML-form uploads: under a policy the server signed for alice, and under one her grant
/// signed, with keys that climb.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_cannot_climb_out_of_their_prefix_or_past_their_size() {
    let server = Server::start(&[]).await;
    server.plant_bobs_report().await;
    let (status, signed) = server.api(Some(ALICE), "/post", file(10)).await;
    assert_eq!(status, 200, "{signed}");
    let climbing = [
        "uploads/alice/../bob/report.txt",
        "uploads/alice/../../../x",
        "uploads/alice/../../open-uploads.jsonl",
        "uploads/alice/a/../../bob/x",
        "uploads/alice/${filename}",
    ];
    // The server's policy admits exactly the key it chose.
    for key in climbing {
        let outcome = server.post_form(&signed, &[("key", key)], b"0123456789", "../bob/report.txt").await;
        assert_eq!(outcome.status, 400, "{key}: {outcome:?}");
        assert!(outcome.body.contains("InvalidPolicyDocument") && outcome.body.contains("key"), "{key}: {outcome:?}");
        server.assert_nothing_outside_prefixes();
        server.assert_bobs_report_intact();
    }
    let longer = server.post_form(&signed, &[], b"0123456789+", "a").await;
    assert!(longer.status == 400 && longer.body.contains("EntityTooLarge"), "one byte over: {longer:?}");
    let shorter = server.post_form(&signed, &[], b"012345678", "a").await;
    assert!(shorter.status == 400 && shorter.body.contains("EntityTooSmall"), "one byte short: {shorter:?}");
    let other_user = server.post_form(&signed, &[("key", "uploads/bob/x")], b"0123456789", "a").await;
    assert!(matches!(other_user.status, 400 | 403) && other_user.body.contains("key"), "{other_user:?}");
    // The same policy with a wider size range, not signed by the server.
    let policy = harness::unbase64(signed["fields"]["Policy"].as_str().unwrap());
    let widened = String::from_utf8(policy)
        .unwrap()
        .replace("[\"content-length-range\",10,10]", "[\"content-length-range\",0,1000000]");
    assert!(widened.contains("1000000"), "{widened}");
    let mut tampered = signed.clone();
    tampered["fields"]["Policy"] = json!(harness::base64(widened.as_bytes()));
    let outcome = server.post_form(&tampered, &[], &[7; 1000], "a").await;
    assert!(outcome.status == 403 && outcome.body.contains("SignatureDoesNotMatch"), "unsigned policy: {outcome:?}");
    server.assert_nothing_outside_prefixes();

    // A policy the page signs with a grant names any key it likes: the store's key rule and the
    // grant's prefix stop it.
    let (_, grant) = server.api(Some(ALICE), "/credentials", json!({})).await;
    for (key, status, code) in [
        ("uploads/alice/../bob/report.txt", 400, "InvalidArgument"),
        ("uploads/alice/../../../x", 400, "InvalidArgument"),
        ("uploads/alice/a/../../bob/x", 400, "InvalidArgument"),
        ("uploads/bob/x", 403, "AccessDenied"),
    ] {
        let outcome = server.form_with_grant(&grant, key, b"planted").await;
        assert!(outcome.status == status && outcome.body.contains(code), "{key}: {outcome:?}");
        server.assert_bobs_report_intact();
    }
    server.assert_nothing_outside_prefixes();
}

/// The size a page declares is the size stored, and the quota counts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_sizes_are_what_the_store_accepts() {
    let server = Server::start(&["--max-size", "10000000"]).await;
    // A single PUT signed for 1 byte, sent 2 MiB; then one signed for 1000, sent 1001.
    for (declared, sent) in [(1u64, 2usize << 20), (1000, 1001), (1000, 999), (1000, 0)] {
        let (status, signed) = server.api(Some(ALICE), "/put", file(declared)).await;
        assert_eq!(status, 200, "{signed}");
        let outcome = server.put_signed(&signed, vec![b'x'; sent]).await;
        assert_eq!(outcome.status, 403, "declared {declared}, sent {sent}: {outcome:?}");
        assert!(outcome.body.contains("SignatureDoesNotMatch"), "{outcome:?}");
        assert!(!server.bucket_dir.join(signed["key"].as_str().unwrap()).exists(), "nothing stored");
    }
    let (status, answer) = server.api(Some(ALICE), "/put", file(10_000_001)).await;
    assert_eq!(status, 413, "over --max-size: {answer}");

    // Parts: each signed with its exact length.
    let mut declared = file(6 << 20);
    declared["partSize"] = json!(5 << 20);
    let (status, created) = server.api(Some(BOB), "/multipart", declared).await;
    assert_eq!(status, 200, "{created}");
    let upload = json!({ "key": created["key"], "uploadId": created["uploadId"] });
    let signed = server.sign_parts(BOB, &upload, &[1, 2]).await;
    let second_as_first = server.put_signed(&signed[1], vec![0; 5 << 20]).await;
    assert_eq!(second_as_first.status, 403, "the 1 MiB last part sent 5 MiB: {second_as_first:?}");
    let first_short = server.put_signed(&signed[0], vec![0; 1 << 20]).await;
    assert_eq!(first_short.status, 403, "{first_short:?}");
    assert_eq!(server.put_signed(&signed[0], vec![1; 5 << 20]).await.status, 200);
    let mut beyond = upload.clone();
    beyond["partNumbers"] = json!([3]);
    let (status, answer) = server.api(Some(BOB), "/multipart/sign", beyond).await;
    assert!(status == 400 && answer["error"].as_str().unwrap().contains("1..=2"), "{answer}");

    // A 1-byte multipart declaration holds one 1-byte part, not 20 MiB.
    let (status, tiny) = server.api(Some(BOB), "/multipart", file(1)).await;
    assert_eq!(status, 200, "{tiny}");
    let tiny_ref = json!({ "key": tiny["key"], "uploadId": tiny["uploadId"] });
    let part = &server.sign_parts(BOB, &tiny_ref, &[1]).await[0];
    assert_eq!(server.put_signed(part, vec![0; 20 << 20]).await.status, 403);

    for (size, part_size, why) in [
        (0u64, None, "1 to"),
        (6 << 20, Some(1u64 << 20), "partSize"),
        (6 << 20, Some(6u64 << 30), "partSize"),
        (900_000, Some(5u64 << 20), ""),
    ] {
        let mut body = file(size);
        body["partSize"] = json!(part_size);
        let (status, answer) = server.api(Some(ALICE), "/multipart", body).await;
        if why.is_empty() {
            assert_eq!(status, 200, "{size} in {part_size:?}: {answer}");
        } else {
            assert_eq!(status, 400, "{size} in {part_size:?}: {answer}");
            assert!(answer["error"].as_str().unwrap().contains(why), "{answer}");
        }
    }
    // Sizes that are not byte counts.
    for size in [json!(-1), json!(1.5), json!("100"), json!(u64::MAX), json!(null)] {
        let mut body = file(1);
        body["size"] = size.clone();
        let (status, answer) = server.api(Some(ALICE), "/put", body).await;
        assert!(matches!(status, 400 | 413 | 422), "{size}: {status}");
        assert!(answer["error"].is_string(), "{size}: a JSON refusal the page can show: {answer}");
    }
    server.assert_nothing_outside_prefixes();
}

/// Metadata the store would refuse or misread never gets signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_is_checked_before_it_is_signed() {
    let server = Server::start(&[]).await;
    let megabyte = "v".repeat(1 << 20);
    let cases = [
        (json!({ "a": megabyte }), "2048"),
        (json!({ "a": "v".repeat(2000), "b": "v".repeat(100) }), "2048"),
        (json!({ "Foo": "1", "foo": "2" }), "twice"),
        (json!({ "a b": "1" }), "names may hold"),
        (json!({ "": "1" }), "names may hold"),
        (json!({ "a": "x\r\nx-amz-acl: public-read" }), "names may hold"),
        (json!({ "a": "é" }), "names may hold"),
        (json!({ "a": 1 }), "metadata"),
    ];
    for (metadata, why) in cases {
        for path in ["/put", "/post", "/multipart"] {
            let mut body = file(6 << 20);
            body["metadata"] = metadata.clone();
            let (status, answer) = server.api(Some(ALICE), path, body).await;
            assert!(matches!(status, 400 | 422), "{path} {metadata:.60}: {status} {answer}");
            assert!(answer["error"].as_str().unwrap_or_default().contains(why), "{path}: {answer}");
        }
    }
}

/// Who may call, and on which uploads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_valid_bearer_token_is_a_user_and_only_of_their_own_uploads() {
    let server = Server::start(&[]).await;
    let headers: &[&[(&str, &str)]] = &[
        &[],
        &[("authorization", "Bearer")],
        &[("authorization", "Bearer ")],
        &[("authorization", "bearer alice-token-0123456789")],
        &[("authorization", "Basic YWxpY2U6cGFzcw==")],
        &[("authorization", "Bearer alice-token-0123456789 bob-token-0123456789")],
        &[("authorization", "Bearer  alice-token-0123456789")],
        &[("authorization", "Bearer alice-token-012345678")],
        &[("authorization", "Bearer alice-token-0123456789"), ("authorization", "Bearer bob-token-0123456789")],
    ];
    for sent in headers {
        let outcome = server.api_with_headers(sent, "/put", file(1)).await;
        assert_eq!(outcome.status, 401, "{sent:?}: {outcome:?}");
        assert!(outcome.body.contains("\"error\""), "{outcome:?}");
    }
    let (_, created) = server.api(Some(ALICE), "/multipart", file(6 << 20)).await;
    let mine = json!({ "key": created["key"], "uploadId": created["uploadId"] });
    let wrong_key = json!({ "key": "uploads/alice/other", "uploadId": created["uploadId"] });
    let wrong_id = json!({ "key": created["key"], "uploadId": "not-an-upload" });
    for (who, body) in [(BOB, &mine), (ALICE, &wrong_key), (ALICE, &wrong_id)] {
        for path in ["/multipart/list", "/multipart/abort"] {
            let (status, answer) = server.api(Some(who), path, body.clone()).await;
            assert_eq!(status, 404, "{path} {body}: {answer}");
        }
    }
    assert_eq!(server.api(Some(ALICE), "/multipart/abort", mine).await.0, 200);
}

/// Bodies the API cannot read come back as JSON errors that say why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_requests_are_refused_as_json_errors() {
    let server = Server::start(&[]).await;
    let big = format!("{{\"filename\":\"{}\"}}", "a".repeat(5 << 20));
    let cases: &[(&str, &str, u16)] = &[
        ("application/json", "{not json", 400),
        ("application/json", "{\"filename\":\"a\"}", 422),
        ("application/json", "[]", 422),
        ("text/plain", "{}", 415),
        ("application/json", &big, 413),
    ];
    for (content_type, body, status) in cases {
        let outcome = server.api_raw_body(ALICE, "/put", content_type, body.as_bytes()).await;
        assert_eq!(outcome.status, *status, "{content_type} {:.40}: {outcome:?}", body);
        let answer: serde_json::Value = serde_json::from_str(&outcome.body).unwrap_or_default();
        assert!(!answer["error"].as_str().unwrap_or_default().is_empty(), "{outcome:?}");
    }
}

/// One user cannot lock the others out, and parallel creations cannot overshoot their limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_uploads_are_limited_per_user_even_in_parallel() {
    let server = Server::start(&["--max-open-uploads", "3"]).await;
    let attempts = (0..12).map(|_| server.api(Some(ALICE), "/multipart", file(6 << 20)));
    let outcomes = futures::future::join_all(attempts).await;
    let admitted = outcomes.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!(admitted, 3, "{outcomes:?}");
    for (status, answer) in outcomes.iter().filter(|(status, _)| *status != 200) {
        assert_eq!(*status, 403, "not 429, which clients retry: {answer}");
        assert!(answer["error"].as_str().unwrap().contains("open uploads"), "{answer}");
    }
    assert_eq!(server.api(Some(BOB), "/multipart", file(6 << 20)).await.0, 200, "bob has his own limit");
    let (_, first) = outcomes.iter().find(|(status, _)| *status == 200).unwrap();
    let first = json!({ "key": first["key"], "uploadId": first["uploadId"] });
    assert_eq!(server.api(Some(ALICE), "/multipart/abort", first).await.0, 200);
    assert_eq!(server.api(Some(ALICE), "/multipart", file(6 << 20)).await.0, 200, "an aborted upload frees its place");
}

/// The API answers CORS only for the origins it is configured with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_websites_cannot_drive_the_api_from_a_visitors_browser() {
    let closed = Server::start(&[]).await;
    let open = Server::start(&["--api-origins", "https://app.example"]).await;
    for (server, origin, allowed) in [
        (&closed, "https://evil.example", false),
        (&closed, "null", false),
        (&open, "https://evil.example", false),
        (&open, "https://app.example.evil.example", false),
        (&open, "https://app.example", true),
    ] {
        let answer = server.preflight(origin).await;
        assert_eq!(answer.as_deref() == Some(origin), allowed, "{origin}: {answer:?}");
    }
}

/// Unsigned bodies are refused before they are read: the server's peak memory does not grow
/// with them (up to 64 MiB of a refused body is read and thrown away, so browsers see the
/// refusal; the rest never is).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsigned_gigabyte_leaves_the_servers_memory_where_it_was() {
    let server = Server::start(&[]).await;
    let (_, created) = server.api(Some(ALICE), "/multipart", file(6 << 20)).await;
    let id = created["uploadId"].as_str().unwrap();
    let key = created["key"].as_str().unwrap();
    let before = server.peak_resident_bytes();
    let mut refused = Vec::new();
    for head in [
        format!(
            "PUT /direct-uploads/{key}?partNumber=1&uploadId={id} HTTP/1.1\r\ncontent-md5: AAAAAAAAAAAAAAAAAAAAAA==\r\n"
        ),
        format!("POST /direct-uploads/{key}?uploadId={id} HTTP/1.1\r\n"),
        format!("PUT /direct-uploads/{key} HTTP/1.1\r\n"),
    ] {
        let outcome = server.send_gigabyte_to_store(&head).await;
        refused.push(outcome.clone());
        assert!(matches!(outcome.status, 400 | 403), "{head}: {outcome:?}");
    }
    // Signed or not, nothing larger than S3's largest single upload is taken.
    let (_, grant) = server.api(Some(ALICE), "/credentials", json!({})).await;
    let huge = server.with_grant_declaring(&grant, "uploads/alice/huge.bin", 6 << 30).await;
    assert!(huge.status == 400 && huge.body.contains("EntityTooLarge"), "6 GiB declared: {huge:?}");
    let after = server.peak_resident_bytes();
    eprintln!(
        "peak resident memory: {} MiB before, {} MiB after three unsigned 1 GiB bodies",
        before >> 20,
        after >> 20
    );
    assert!(after < before + (64 << 20), "the peak grew from {before} to {after} bytes: {refused:?}");
    server.assert_nothing_outside_prefixes();
}

/// Connections that send nothing, or headers a byte at a time, are closed by the timeouts; and
/// no more than the limit are served at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_are_closed_and_counted() {
    let server = Server::start(&["--idle-timeout", "1", "--header-timeout", "2", "--max-connections", "1100"]).await;
    for address in [server.app_address(), server.store_address()] {
        let idle = harness::open_idle_connections(&address, 1000).await;
        let closed = harness::count_closed_within(idle, std::time::Duration::from_secs(5)).await;
        assert_eq!(closed, 1000, "{address}: idle connections closed by the idle timeout");
    }
    let dripped = harness::drip_headers(&server.app_address(), std::time::Duration::from_millis(400)).await;
    assert!(dripped < std::time::Duration::from_secs(4), "a header a byte at a time: open for {dripped:?}");

    let limited = Server::start(&["--max-connections", "20"]).await;
    let held = harness::open_idle_connections(&limited.app_address(), 20).await;
    let waiting = limited.api(Some(ALICE), "/put", file(1));
    let waited = tokio::time::timeout(std::time::Duration::from_millis(700), waiting).await;
    assert!(waited.is_err(), "a 21st connection waits while 20 are open");
    drop(held);
    assert_eq!(limited.api(Some(ALICE), "/put", file(1)).await.0, 200, "and is served once one closes");
}
