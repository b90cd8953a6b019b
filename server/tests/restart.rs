//! The reference server's state survives a crash: the real binary, killed with SIGKILL mid-upload
//! and started again on the same data directory, still signs and completes the upload begun
//! before, still counts the quota used before, and keeps its state in its database.

// The hostile suite's harness (the binary as a child process); this test uses part of it.
#[path = "hostile/harness.rs"]
#[allow(dead_code)]
mod harness;

use harness::{ALICE, Server, file};
use serde_json::json;

const MIB: usize = 1 << 20;

/// Sends one part's bytes with PUT; its ETag.
async fn put_part(client: &reqwest::Client, signed: &serde_json::Value, bytes: Vec<u8>) -> String {
    let response = client.put(signed["url"].as_str().unwrap()).body(bytes).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    response.headers()["etag"].to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loses_neither_open_uploads_nor_quotas() {
    let mut server = Server::start(&["--quota-uploads", "3"]).await;
    let client = reqwest::Client::new();
    let bytes: Vec<u8> = (0..12 * MIB).map(|i| (i * 31 % 251) as u8).collect();
    let (status, upload) = server.api(Some(ALICE), "/multipart", file(bytes.len() as u64)).await;
    assert_eq!(status, 200, "{upload}");
    let upload = json!({ "key": upload["key"], "uploadId": upload["uploadId"] });
    let parts = server.sign_parts(ALICE, &upload, &[1]).await;
    let first = put_part(&client, &parts[0], bytes[..5 * MIB].to_vec()).await;
    let (status, _) = server.api(Some(ALICE), "/put", file(10)).await;
    assert_eq!(status, 200, "a second upload counts against the quota");

    server.crash_and_restart().await;

    // The upload begun before the crash goes on: its other parts are signed, and it completes.
    let parts = server.sign_parts(ALICE, &upload, &[2, 3]).await;
    let second = put_part(&client, &parts[0], bytes[5 * MIB..10 * MIB].to_vec()).await;
    let third = put_part(&client, &parts[1], bytes[10 * MIB..].to_vec()).await;
    let mut complete = upload.clone();
    complete["parts"] = json!([
        { "partNumber": 1, "etag": first },
        { "partNumber": 2, "etag": second },
        { "partNumber": 3, "etag": third },
    ]);
    let (status, answer) = server.api(Some(ALICE), "/multipart/complete", complete).await;
    assert_eq!(status, 200, "{answer}");
    let stored = std::fs::read(server.bucket_dir.join(upload["key"].as_str().unwrap())).unwrap();
    assert!(stored == bytes, "the object stored after the crash is the file, byte for byte");

    // Two of three uploads were counted before the crash: one more is admitted, then none.
    let (status, _) = server.api(Some(ALICE), "/put", file(10)).await;
    assert_eq!(status, 200);
    let (status, answer) = server.api(Some(ALICE), "/put", file(10)).await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("3 uploads"), "{answer}");
    assert!(server.data_dir.join("state.sqlite3").exists(), "the state is in the database");
}
