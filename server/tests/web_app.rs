//! `--web-root`: the web app's files at `/`, its `index.html` at `/r/ROOM`, caching, and nothing
//! outside the root.

use std::path::Path;
use videoroom_server::Config;
use videoroom_testkit::*;

/// A web root shaped like `ui/dist`: `index.html` and a hashed asset.
fn web_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("index.html"),
        "<!doctype html><title>Videoroom</title><script type=module src=/assets/app-1a2b.js></script>",
    )
    .expect("test setup");
    std::fs::create_dir(dir.path().join("assets")).expect("test setup");
    std::fs::write(dir.path().join("assets/app-1a2b.js"), "console.log(1)").expect("test setup");
    dir
}

fn config(root: &Path) -> Config {
    Config {
        web_root: Some(root.to_path_buf()),
        ..test_config()
    }
}

async fn get(url: String) -> (u16, reqwest::header::HeaderMap, String) {
    let response = reqwest::get(url).await.expect("answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.expect("body"))
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test]
async fn the_lobby_and_room_links_serve_the_app() {
    let root = web_root();
    let server = start_server(config(root.path())).await;
    let base = format!("http://{}", server.local_addr());
    for path in ["/", "/r/team-sync", "/r/Team%20sync", "/r/"] {
        let (status, h, body) = get(format!("{base}{path}")).await;
        assert_eq!(status, 200, "{path}");
        assert!(body.contains("<title>Videoroom</title>"), "{path}: {body}");
        assert!(
            header(&h, "content-type").starts_with("text/html"),
            "{path}"
        );
        assert_eq!(header(&h, "cache-control"), "no-cache", "{path}");
        assert!(
            header(&h, "content-security-policy").contains("script-src 'self';"),
            "{path}"
        );
    }
    let (status, h, body) = get(format!("{base}/assets/app-1a2b.js")).await;
    assert_eq!(status, 200);
    assert_eq!(body, "console.log(1)");
    assert!(header(&h, "content-type").contains("javascript"));
    assert!(header(&h, "cache-control").contains("immutable"));
    // The signaling and health endpoints keep their routes.
    let (status, _, body) = get(format!("{base}/healthz")).await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
}

#[tokio::test]
async fn nothing_outside_the_root_is_served() {
    let root = web_root();
    let secret = root
        .path()
        .parent()
        .expect("test setup")
        .join("outside-secret.txt");
    std::fs::write(&secret, "secret").expect("test setup");
    let server = start_server(config(root.path())).await;
    let addr = server.local_addr();
    for path in [
        "/../outside-secret.txt",
        "/%2e%2e/outside-secret.txt",
        "/assets/..%2f..%2foutside-secret.txt",
        "/no-such-file.js",
    ] {
        // Raw request: an HTTP client would normalise the dots away.
        let response = raw_get(addr, path).await;
        assert!(
            response.starts_with("HTTP/1.1 404") || response.starts_with("HTTP/1.1 400"),
            "{path}: {response}"
        );
        assert!(!response.contains("secret"), "{path}: {response}");
    }
    let _ = std::fs::remove_file(secret);
}

#[tokio::test]
async fn without_a_web_root_there_is_no_page() {
    let server = start_server(test_config()).await;
    let (status, _, _) = get(format!("http://{}/", server.local_addr())).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_web_root_without_index_is_refused_at_start() {
    let empty = tempfile::tempdir().expect("test setup");
    let Err(error) = videoroom_server::start(config(empty.path())).await else {
        panic!("started without an index.html");
    };
    assert!(
        error.to_string().contains("no index.html"),
        "unclear error: {error}"
    );
}

async fn raw_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("test setup");
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("test setup");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response).await;
    response
}
